"""Lighthouse enabled in place on a transformers model: `enable`, `disable`, `set_mode`.

The model stays the same `PreTrainedModel` object: its class, forward signature, parameters,
state_dict keys, `save_pretrained` output and `config.json` are untouched (transformers never
serializes the attention implementation), so every checkpoint written while Lighthouse is on
loads with plain `from_pretrained`. What `enable` sets, and `disable` removes:

- `config._attn_implementation = "lighthouse"` on every config of the model (dense mode:
  transformers' "sdpa"; `disable` restores what the model had);
- a `Route` attribute on each attention module (its layer, dense or not, the op's config);
- a state attribute and a forward pre-hook on the base model (`model.base_model`): in
  Lighthouse mode a forward defaults to `use_cache=False`, refuses a KV cache and torch's
  context-parallel SDPA dispatch (before any layer runs), and under
  torch.compile a given `attention_mask` / `position_ids` is checked inside the graph (padding
  and packed sequences raise) so that no mask is built for the Lighthouse layers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

import torch
from torch import Tensor
from transformers import PreTrainedModel
from transformers.utils import logging

from .._context_parallel import check_not_context_parallel
from ..config import LighthouseConfig
from .attention import ATTN_IMPLEMENTATION, NO_CACHE, PADDING, ROUTE, Route

logger = logging.get_logger(__name__)

MODES = ("lighthouse", "dense")
DEFAULT_DENSE_LAYERS = (0, 1, -2, -1)
_STATE = "_lighthouse_state"  # attribute of the base model while enabled


@dataclasses.dataclass
class _State:
    config: LighthouseConfig
    dense_layers: tuple[int, ...]
    attention: list[torch.nn.Module]
    saved: list[tuple[Any, Any]]  # (config object, its attention implementation at enable)
    hook: Any
    mode: str = "lighthouse"

    @property
    def any_lighthouse(self) -> bool:
        return len(self.dense_layers) < len(self.attention)


def resolve_config(config: LighthouseConfig | None, pool_ratios: Sequence[float] | None,
                   select_topk: int | None) -> LighthouseConfig:
    """`config` (default `LighthouseConfig()`) with the seed articles' `pool_ratios` /
    `select_topk` applied where given (see `LighthouseConfig.from_pool_ratios`)."""
    if config is None:
        config = LighthouseConfig()
    if not isinstance(config, LighthouseConfig):
        raise TypeError(f"config must be a lighthouse.LighthouseConfig, got "
                        f"{type(config).__name__}")
    if pool_ratios is None and select_topk is None:
        return config
    return config.with_ratios(pool_ratios=pool_ratios, select_topk=select_topk)


def enable(model: PreTrainedModel, config: LighthouseConfig | None = None,
           dense_layers: Iterable[int] = DEFAULT_DENSE_LAYERS, *,
           pool_ratios: Sequence[float] | None = None,
           select_topk: int | None = None) -> PreTrainedModel:
    """Routes the model's attention through Lighthouse, in place; adds no parameters.

    Args:
        model: a `PreTrainedModel` whose attention uses transformers' AttentionInterface
            (Llama, Mistral and Qwen2 without sliding windows, ...).
        config: the op's parameters (default `LighthouseConfig()`).
        dense_layers: layer indices (negative from the end) that always run stock SDPA.
        pool_ratios, select_topk: the seed articles' spelling of `levels`/`pool` and `topk`;
            where given they replace those fields of `config` (`LighthouseConfig.from_pool_ratios`).

    Returns:
        The same model object, in Lighthouse mode.

    Raises:
        TypeError / ValueError naming the argument (a model that cannot be routed, attention
        dropout, sliding windows, bad layer indices, a model already enabled).
    """
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"model must be a transformers PreTrainedModel, got "
                        f"{type(model).__name__}")
    config = resolve_config(config, pool_ratios, select_topk)
    base = model.base_model
    if hasattr(base, _STATE):
        raise ValueError("model already has Lighthouse enabled (lighthouse.hf.enable or a "
                         "LighthouseWrapper): disable(model) first")
    attn = _attention_modules(model)
    dense = _resolve_layers(dense_layers, len(attn))
    dropout = getattr(model.config, "attention_dropout", 0.0) or 0.0
    if dropout:
        raise ValueError(f"model.config.attention_dropout = {dropout}: Lighthouse attention "
                         "has no attention dropout; set it to 0.0")
    for m in attn:  # per layer (Qwen2) or per model (Mistral)
        window = getattr(m, "sliding_window", getattr(m.config, "sliding_window", None))
        if window is not None:
            raise ValueError(f"layer {m.layer_idx} uses sliding_window = {window}: "
                             "Lighthouse attention serves full causal attention only")
    configs = {id(m.config): m.config for m in model.modules()
               if isinstance(m, PreTrainedModel)}
    saved = [(c, c._attn_implementation_internal) for c in configs.values()]
    for m in attn:
        setattr(m, ROUTE, Route(config, m.layer_idx, m.layer_idx in dense))
    hook = base.register_forward_pre_hook(_input_hook, with_kwargs=True)
    state = _State(config, tuple(sorted(dense)), attn, saved, hook)
    setattr(base, _STATE, state)
    if not state.any_lighthouse:
        logger.warning_once(
            f"lighthouse: dense_layers {state.dense_layers} cover all {len(attn)} layers of "
            f"{type(model).__name__}: Lighthouse mode runs stock SDPA everywhere")
    set_mode(model, "lighthouse")
    return model


def disable(model: PreTrainedModel) -> PreTrainedModel:
    """Removes everything `enable` set: the original attention implementation, no routes, no
    hook. Parameters and optimizer state are untouched. Returns the same model object."""
    state = _state(model, "disable")
    for cfg, impl in state.saved:
        cfg._attn_implementation_internal = impl
    for m in state.attention:
        if hasattr(m, ROUTE):
            delattr(m, ROUTE)
    state.hook.remove()
    delattr(model.base_model, _STATE)
    return model


def set_mode(model: PreTrainedModel, mode: str) -> None:
    """Switches the stage: "lighthouse" (the non-dense layers run the op) or "dense" (stock
    SDPA everywhere, transformers' "sdpa"). Parameters and optimizer state are untouched."""
    state = _state(model, "set_mode")
    if mode not in MODES:
        raise ValueError(f"mode must be \"lighthouse\" or \"dense\", got {mode!r}")
    impl = ATTN_IMPLEMENTATION if mode == "lighthouse" and state.any_lighthouse else "sdpa"
    model.set_attn_implementation(impl)
    state.mode = mode


def get_mode(model: PreTrainedModel) -> str | None:
    """"lighthouse" or "dense" while enabled, None otherwise."""
    state = getattr(getattr(model, "base_model", None), _STATE, None)
    return state.mode if state is not None else None


def lighthouse_config(model: PreTrainedModel) -> LighthouseConfig:
    """The op's parameters `enable` was given."""
    return _state(model, "lighthouse_config").config


def dense_layers(model: PreTrainedModel) -> tuple[int, ...]:
    """The layers that always run stock SDPA (non-negative, sorted)."""
    return _state(model, "dense_layers").dense_layers


def _state(model: Any, what: str) -> _State:
    state = getattr(getattr(model, "base_model", None), _STATE, None)
    if state is None:
        raise ValueError(f"{what}: Lighthouse is not enabled on this "
                         f"{type(model).__name__}: call lighthouse.hf.enable(model, ...) first")
    return state


def _input_hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
                ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """The base model's forward pre-hook (see the module docstring)."""
    state = getattr(module, _STATE, None)
    if state is None or state.mode != "lighthouse" or not state.any_lighthouse:
        return None
    check_not_context_parallel(f"{type(module).__name__} in Lighthouse mode")
    if kwargs.get("use_cache"):
        raise ValueError(NO_CACHE)
    if kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None:
        raise ValueError(NO_CACHE)
    kwargs["use_cache"] = False
    if torch.compiler.is_compiling():
        mask, pos = kwargs.get("attention_mask"), kwargs.get("position_ids")
        if mask is not None and mask.dim() != 2:
            mask = None  # a prepared 4D mask reaches the layers, which refuse it
        if mask is not None or pos is not None:
            args, kwargs = _checked_inputs(args, kwargs, mask, pos)
            if mask is not None:
                kwargs["attention_mask"] = None
    return args, kwargs


def _checked_inputs(args: tuple[Any, ...], kwargs: dict[str, Any], mask: Tensor | None,
                    pos: Tensor | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The forward's first tensor input replaced by its copy from `check_unpacked`, so the check
    is part of the compiled graph and runs before the model reads the input."""
    for key in ("input_ids", "inputs_embeds"):
        if kwargs.get(key) is not None:
            kwargs[key] = torch.ops.lighthouse_hf.check_unpacked(kwargs[key], mask, pos)
            return args, kwargs
    if args and isinstance(args[0], Tensor):
        return (torch.ops.lighthouse_hf.check_unpacked(args[0], mask, pos), *args[1:]), kwargs
    raise ValueError("input_ids / inputs_embeds: Lighthouse mode under torch.compile needs one "
                     "of them as a tensor to check attention_mask / position_ids against")


@torch.library.custom_op("lighthouse_hf::check_unpacked", mutates_args=())
def check_unpacked(x: Tensor, attention_mask: Tensor | None, position_ids: Tensor | None
                   ) -> Tensor:
    """A copy of x, after checking that `attention_mask` pads nothing and `position_ids` hold
    one sequence per row (no restart). Raises ValueError naming the argument."""
    if attention_mask is not None and not bool(attention_mask.all()):
        raise ValueError(PADDING)
    if position_ids is not None and position_ids.shape[-1] > 1:
        if not bool((position_ids.diff(dim=-1) == 1).all()):
            raise ValueError(
                "position_ids: Lighthouse attention serves one causal sequence per row; these "
                "restart inside a row (packed sequences). Unpack the batch, or "
                "set_mode(model, \"dense\")")
    return x.clone()


@check_unpacked.register_fake
def _(x: Tensor, attention_mask: Tensor | None, position_ids: Tensor | None) -> Tensor:
    return torch.empty_like(x)


check_unpacked.register_autograd(lambda ctx, grad: (grad, None, None))


def _attention_modules(model: PreTrainedModel) -> list[torch.nn.Module]:
    """The attention modules, one per layer in layer order."""
    if not model._can_set_attn_implementation():
        raise ValueError(f"model: {type(model).__name__} does not use transformers' "
                         "AttentionInterface, so its attention cannot be routed")
    found = [m for m in model.modules()
             if isinstance(getattr(m, "layer_idx", None), int)
             and hasattr(m, "num_key_value_groups")
             and type(m).__name__.endswith("Attention")]
    if not found:
        raise ValueError(f"model: found no attention modules (with layer_idx and "
                         f"num_key_value_groups) in {type(model).__name__}")
    for m in found:
        if hasattr(m, ROUTE):
            raise ValueError("model already has Lighthouse enabled (lighthouse.hf.enable or a "
                             "LighthouseWrapper): disable(model) first")
    found.sort(key=lambda m: m.layer_idx)
    if [m.layer_idx for m in found] != list(range(len(found))):
        raise ValueError(f"model: attention layer indices {[m.layer_idx for m in found]} are "
                         "not 0..n-1")
    return found


def _resolve_layers(dense_layers: Iterable[int], n: int) -> set[int]:
    try:
        layers = list(dense_layers)
    except TypeError:
        raise TypeError(f"dense_layers must be an iterable of ints, got "
                        f"{type(dense_layers).__name__}") from None
    out = set()
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"dense_layers entries must be ints, got {i!r}")
        if not -n <= i < n:
            raise ValueError(f"dense_layers entry {i} is out of range for {n} layers "
                             f"(expected -{n} <= i < {n})")
        out.add(i % n)
    return out
