"""`LighthouseCallback`: the two-stage recipe (SPEC.md §1) in the Hugging Face Trainer.

    model = lighthouse.hf.enable(LlamaForCausalLM(cfg), LighthouseConfig(topk=256))
    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      callbacks=[LighthouseCallback(dense_from_step=9000)])
    trainer.train()                                  # or train(resume_from_checkpoint=...)

The mode is a function of the step count only: before every optimizer step the callback sets
dense mode when `state.global_step >= dense_from_step` and Lighthouse mode otherwise. The
Trainer restores `global_step` on `resume_from_checkpoint`, so a resumed run is in the stage
its step says, with nothing of the callback's own to save.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.utils import logging

from . import inplace

logger = logging.get_logger(__name__)


class LighthouseCallback(TrainerCallback):
    """Switches a Lighthouse-enabled model to dense attention from a given optimizer step.

    Args:
        dense_from_step: the number of optimizer steps trained in Lighthouse mode; steps after
            it (``state.global_step >= dense_from_step``) run dense. None: Lighthouse throughout.
    """

    def __init__(self, dense_from_step: int | None = None) -> None:
        if dense_from_step is not None and (isinstance(dense_from_step, bool)
                                            or not isinstance(dense_from_step, int)
                                            or dense_from_step < 0):
            raise ValueError(f"dense_from_step must be an int >= 0 or None, got "
                             f"{dense_from_step!r}")
        self.dense_from_step = dense_from_step

    def mode_at(self, global_step: int) -> str:
        """The mode of the optimizer step that starts after `global_step` completed steps."""
        if self.dense_from_step is not None and global_step >= self.dense_from_step:
            return "dense"
        return "lighthouse"

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, model: torch.nn.Module | None = None,
                       **kwargs: Any) -> None:
        self._apply(state, model)

    def on_step_begin(self, args: TrainingArguments, state: TrainerState,
                      control: TrainerControl, model: torch.nn.Module | None = None,
                      **kwargs: Any) -> None:
        self._apply(state, model)

    def _apply(self, state: TrainerState, model: torch.nn.Module | None) -> None:
        target = _enabled_model(model)
        want = self.mode_at(state.global_step)
        if inplace.get_mode(target) != want:
            inplace.set_mode(target, want)
            logger.info(f"lighthouse: step {state.global_step}: {want} attention")


def _enabled_model(model: torch.nn.Module | None) -> torch.nn.Module:
    """The Lighthouse-enabled PreTrainedModel inside what the Trainer holds (the model itself,
    a LighthouseWrapper, DDP/FSDP's `.module`, torch.compile's `_orig_mod`)."""
    seen = model
    for _ in range(8):
        if seen is None:
            break
        if inplace.get_mode(seen) is not None:
            return seen
        inner = getattr(seen, "_orig_mod", None) or seen._modules.get("module")
        if inner is None:
            break
        seen = inner
    raise ValueError(f"LighthouseCallback: the Trainer's model ({type(model).__name__}) does not "
                     "have Lighthouse enabled: call lighthouse.hf.enable(model, ...) before "
                     "building the Trainer")
