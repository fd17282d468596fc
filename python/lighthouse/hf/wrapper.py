"""`LighthouseWrapper`: the seed articles' wrapper, a thin module over `enable` (inplace.py).

    model = LighthouseWrapper(base_model, pool_ratios=[0.5, 0.25, 0.125], select_topk=1024)
    ...train...
    model = model.unwrap()          # the original model object, Lighthouse disabled
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from transformers import PreTrainedModel

from ..config import LighthouseConfig
from . import inplace
from .attention import NO_CACHE


class LighthouseWrapper(torch.nn.Module):
    """Routes a transformers model's attention through Lighthouse; adds no parameters.

    Built on :func:`lighthouse.hf.enable`: the wrapped model itself is enabled in place, and
    the wrapper only forwards to it. For the HF Trainer (which reads the model's forward
    signature and saves its state_dict keys) pass the enabled model itself, not a wrapper.

    Args:
        model: a `PreTrainedModel` whose attention uses transformers' AttentionInterface.
        config: the op's parameters (default `LighthouseConfig()`).
        dense_layers: layer indices (negative from the end) that always run stock SDPA.
        pool_ratios, select_topk: the seed articles' spelling of `levels`/`pool` and `topk`
            (see `LighthouseConfig.from_pool_ratios`); where given they replace those fields.

    Calls (`forward`, attribute access such as `.config`) go to the wrapped model, available
    as `.module`; the Lighthouse parameters are `.lighthouse_config`.
    """

    def __init__(self, model: PreTrainedModel, config: LighthouseConfig | None = None,
                 dense_layers: Iterable[int] = inplace.DEFAULT_DENSE_LAYERS, *,
                 pool_ratios: Sequence[float] | None = None,
                 select_topk: int | None = None) -> None:
        super().__init__()
        inplace.enable(model, config, dense_layers, pool_ratios=pool_ratios,
                       select_topk=select_topk)
        self.module = model
        self.lighthouse_config = inplace.lighthouse_config(model)
        self.dense_layers = inplace.dense_layers(model)

    @property
    def mode(self) -> str:
        """"lighthouse", "dense", or "unwrapped" after :meth:`unwrap`."""
        model = self._modules.get("module")
        return inplace.get_mode(model) if model is not None else "unwrapped"

    def set_mode(self, mode: str) -> None:
        """Switches the stage; parameters and optimizer state are untouched."""
        inplace.set_mode(self._model(), mode)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._model()(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """The model's generate() in dense mode; refused in Lighthouse mode."""
        model = self._model()
        if self.mode == "lighthouse":
            raise ValueError(f"generate(): {NO_CACHE}")
        return model.generate(*args, **kwargs)

    def save_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        """The model's save_pretrained: a plain transformers checkpoint."""
        return self._model().save_pretrained(*args, **kwargs)

    def unwrap(self) -> PreTrainedModel:
        """Returns the original model object, Lighthouse disabled (its attention
        implementation restored, weights untouched); this wrapper is unusable afterwards."""
        model = inplace.disable(self._model())
        del self._modules["module"]
        return model

    def _model(self) -> PreTrainedModel:
        model = self._modules.get("module")
        if model is None:
            raise RuntimeError("this LighthouseWrapper was unwrapped: use the model unwrap() "
                               "returned")
        return model

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            model = self.__dict__["_modules"].get("module")
            if model is None:
                raise
            return getattr(model, name)

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, dense_layers={self.dense_layers}, "
                f"config={self.lighthouse_config}")
