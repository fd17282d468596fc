"""Lighthouse inside a Hugging Face `transformers` model: `LighthouseWrapper`.

    model = LlamaForCausalLM(config)                       # or from_pretrained(...)
    model = LighthouseWrapper(model, config=LighthouseConfig(topk=256))
    ...train (stage 1, Lighthouse)...; model.set_mode("dense"); ...train (stage 2)...
    model = model.unwrap()                                 # the original model object
    model.save_pretrained(out)                             # a plain transformers checkpoint

The wrapper registers the attention function "lighthouse" in transformers'
`AttentionInterface` (and sdpa's mask function under the same name, so no mask tensor is
built for unpadded causal batches) and points the model's `_attn_implementation` at it.
Each attention module gets a route (a plain attribute, not a parameter): layers listed in
`dense_layers` run stock SDPA, the others run `lighthouse.attention` on the model's post-RoPE
q/k with its own GQA (K/V heads not repeated). Dense mode is the model's stock "sdpa".
Models served: those whose attention modules call `ALL_ATTENTION_FUNCTIONS` (Llama, Mistral
and Qwen2 without sliding windows, ...).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

import torch
from torch import Tensor
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from . import functional as F
from .config import LighthouseConfig

ATTN_IMPLEMENTATION = "lighthouse"
MODES = ("lighthouse", "dense")
_ROUTE = "_lighthouse_route"  # attribute of each routed attention module while wrapped
_NO_CACHE = ("use_cache / past_key_values: Lighthouse mode is for training and serves no KV "
             "cache or generation; call model.unwrap() (or model.set_mode(\"dense\")) first, "
             "or pass use_cache=False to a training forward")


@dataclasses.dataclass(frozen=True)
class _Route:
    config: LighthouseConfig
    layer: int
    dense: bool


def lighthouse_attention_forward(module: torch.nn.Module, query: Tensor, key: Tensor,
                                 value: Tensor, attention_mask: Tensor | None,
                                 dropout: float = 0.0, scaling: float | None = None,
                                 is_causal: bool | None = None, **kwargs: Any
                                 ) -> tuple[Tensor, None]:
    """The "lighthouse" entry of transformers' AttentionInterface.

    Args:
        module: the model's attention module (carries the wrapper's route).
        query: [B, H, N, D] post-RoPE; key, value: [B, Hkv, N, D], not repeated.
        attention_mask: must be None (no padding, no packed sequences) on Lighthouse layers.

    Returns:
        (attn_output [B, N, H, D], None): attention weights are never materialized.
    """
    route = getattr(module, _ROUTE, None)
    if route is None:
        raise RuntimeError(
            f"{type(module).__name__} has attn_implementation=\"lighthouse\" but is not "
            "wrapped: use lighthouse.hf.LighthouseWrapper(model, ...)")
    if route.dense:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, is_causal=is_causal,
                                      **kwargs)
    _check_call(module, route, query, key, attention_mask, dropout, scaling, is_causal, kwargs)
    out = F.attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                      **route.config.op_kwargs())  # [B, N, H, D]
    return out, None


def _check_call(module: torch.nn.Module, route: _Route, query: Tensor, key: Tensor,
                attention_mask: Tensor | None, dropout: float, scaling: float | None,
                is_causal: bool | None, kwargs: dict[str, Any]) -> None:
    """Raises ValueError naming the argument Lighthouse cannot serve."""
    where = f"layer {route.layer} (Lighthouse)"
    if kwargs.get("use_cache") or query.shape[2] != key.shape[2]:
        raise ValueError(f"{where}: {_NO_CACHE}")
    if attention_mask is not None:
        raise ValueError(
            f"{where}: attention_mask: Lighthouse attention serves causal batches without "
            "padding; got a mask (a padding attention_mask that is not all ones, or packed "
            "sequences). Pass attention_mask=None or all ones, or set_mode(\"dense\")")
    if dropout:
        raise ValueError(f"{where}: dropout = {dropout}: Lighthouse attention has no attention "
                         "dropout; set the model config's attention_dropout = 0.0")
    head_dim = query.shape[-1]
    if scaling is not None and not math.isclose(scaling, head_dim ** -0.5, rel_tol=1e-6):
        raise ValueError(f"{where}: scaling = {scaling}: Lighthouse attention uses "
                         f"1/sqrt(head_dim) = {head_dim ** -0.5}")
    if is_causal is False or not getattr(module, "is_causal", True):
        raise ValueError(f"{where}: is_causal: Lighthouse attention is causal only")
    for name in ("sliding_window", "softcap", "s_aux", "position_bias"):
        if kwargs.get(name) is not None:
            raise ValueError(f"{where}: {name} = {kwargs[name]!r} is not supported by "
                             "Lighthouse attention")
    if kwargs.get("output_attentions"):
        raise ValueError(f"{where}: output_attentions=True: Lighthouse attention never "
                         "materializes attention weights")
    if not torch.compiler.is_compiling():  # compiled code gets the op's own message
        route.config.check_seq_len(query.shape[2], "sequence length (input_ids.shape[1])")


AttentionInterface.register(ATTN_IMPLEMENTATION, lighthouse_attention_forward)
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sdpa_mask)


class LighthouseWrapper(torch.nn.Module):
    """Routes a transformers model's attention through Lighthouse; adds no parameters.

    Args:
        model: a `PreTrainedModel` whose attention uses transformers' AttentionInterface.
        config: the op's parameters.
        dense_layers: layer indices (negative from the end) that always run stock SDPA.

    Calls (`forward`, attribute access such as `.config`) go to the wrapped model, available
    as `.module`; the Lighthouse parameters are `.lighthouse_config`.
    """

    def __init__(self, model: PreTrainedModel,
                 config: LighthouseConfig = LighthouseConfig(),
                 dense_layers: Iterable[int] = (0, 1, -2, -1)) -> None:
        super().__init__()
        if not isinstance(model, PreTrainedModel):
            raise TypeError(f"model must be a transformers PreTrainedModel, got "
                            f"{type(model).__name__}")
        if not isinstance(config, LighthouseConfig):
            raise TypeError(f"config must be a lighthouse.LighthouseConfig, got "
                            f"{type(config).__name__}")
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
        self.module = model
        self.lighthouse_config = config
        self.dense_layers = tuple(sorted(dense))
        # Restored by unwrap(): each distinct config's attention implementation and use_cache.
        configs = {id(m.config): m.config for m in model.modules()
                   if isinstance(m, PreTrainedModel)}
        self._saved = [(c, c._attn_implementation_internal, getattr(c, "use_cache", None))
                       for c in configs.values()]
        for m in attn:
            setattr(m, _ROUTE, _Route(config, m.layer_idx, m.layer_idx in dense))
        self._attn = attn
        self._mode = ""
        self.set_mode("lighthouse")

    @property
    def mode(self) -> str:
        """"lighthouse" (non-dense layers run the op) or "dense" (stock SDPA everywhere)."""
        return self._mode

    def set_mode(self, mode: str) -> None:
        """Switches the stage; parameters and optimizer state are untouched."""
        self._check_wrapped()
        if mode not in MODES:
            raise ValueError(f"mode must be \"lighthouse\" or \"dense\", got {mode!r}")
        model = self.module
        model.set_attn_implementation(ATTN_IMPLEMENTATION if mode == "lighthouse" else "sdpa")
        for cfg, _, use_cache in self._saved:
            if use_cache is not None:  # Lighthouse never builds a KV cache
                cfg.use_cache = False if mode == "lighthouse" else use_cache
        self._mode = mode

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self._check_wrapped()
        return self.module(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """The model's generate() in dense mode; refused in Lighthouse mode."""
        self._check_wrapped()
        if self._mode == "lighthouse":
            raise ValueError(f"generate(): {_NO_CACHE}")
        return self.module.generate(*args, **kwargs)

    def save_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        """Saves the model as its original self (attention implementation, use_cache)."""
        self._check_wrapped()
        mode = self._mode
        self._restore()
        try:
            return self.module.save_pretrained(*args, **kwargs)
        finally:
            self.set_mode(mode)

    def unwrap(self) -> PreTrainedModel:
        """Returns the original model object, its attention implementation and use_cache
        restored and its weights untouched; this wrapper is unusable afterwards."""
        self._check_wrapped()
        model = self.module
        self._restore()
        for m in self._attn:
            delattr(m, _ROUTE)
        del self._modules["module"]
        self._attn = []
        self._mode = "unwrapped"
        return model

    def _restore(self) -> None:
        for cfg, impl, use_cache in self._saved:
            cfg._attn_implementation_internal = impl
            if use_cache is not None:
                cfg.use_cache = use_cache

    def _check_wrapped(self) -> None:
        if "module" not in self._modules:
            raise RuntimeError("this LighthouseWrapper was unwrapped: use the model unwrap() "
                               "returned")

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            model = self.__dict__["_modules"].get("module")
            if model is None:
                raise
            return getattr(model, name)

    def extra_repr(self) -> str:
        return (f"mode={self._mode!r}, dense_layers={self.dense_layers}, "
                f"config={self.lighthouse_config}")


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
        if hasattr(m, _ROUTE):
            raise ValueError("model is already wrapped by a LighthouseWrapper")
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
