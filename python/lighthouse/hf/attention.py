"""The "lighthouse" entries of transformers' AttentionInterface and AttentionMaskInterface.

Each routed attention module carries a `_Route` (a plain attribute set by `enable`): layers in
`dense_layers` run transformers' own SDPA function, the others run `lighthouse.attention` on
the model's post-RoPE q/k with its own GQA (K/V heads not repeated).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import Tensor
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from .. import functional as F
from ..config import LighthouseConfig

ATTN_IMPLEMENTATION = "lighthouse"
ROUTE = "_lighthouse_route"  # attribute of each routed attention module while enabled
NO_CACHE = ("use_cache / past_key_values: Lighthouse mode is for training and serves no KV "
            "cache or generation; call lighthouse.hf.set_mode(model, \"dense\") (or "
            "disable(model), or the wrapper's unwrap()) first, or pass use_cache=False")
PADDING = ("attention_mask: Lighthouse attention serves causal batches without padding; got a "
           "mask (a padding attention_mask that is not all ones, or packed sequences). Pass "
           "attention_mask=None or all ones, or set_mode(model, \"dense\")")


@dataclasses.dataclass(frozen=True)
class Route:
    """How one attention module runs while Lighthouse is enabled."""

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
        module: the model's attention module (carries the route `enable` set).
        query: [B, H, N, D] post-RoPE; key, value: [B, Hkv, N, D], not repeated.
        attention_mask: must be None (no padding, no packed sequences) on Lighthouse layers.

    Returns:
        (attn_output [B, N, H, D], None): attention weights are never materialized.
    """
    route = getattr(module, ROUTE, None)
    if route is None:
        raise RuntimeError(
            f"{type(module).__name__} has attn_implementation=\"lighthouse\" but Lighthouse is "
            "not enabled on its model: use lighthouse.hf.enable(model, ...)")
    if route.dense:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, is_causal=is_causal,
                                      **kwargs)
    _check_call(module, route, query, key, attention_mask, dropout, scaling, is_causal, kwargs)
    out = F.attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                      **route.config.op_kwargs())  # [B, N, H, D]
    return out, None


def _check_call(module: torch.nn.Module, route: Route, query: Tensor, key: Tensor,
                attention_mask: Tensor | None, dropout: float, scaling: float | None,
                is_causal: bool | None, kwargs: dict[str, Any]) -> None:
    """Raises ValueError naming the argument Lighthouse cannot serve."""
    where = f"layer {route.layer} (Lighthouse)"
    if kwargs.get("use_cache") or query.shape[2] != key.shape[2]:
        raise ValueError(f"{where}: {NO_CACHE}")
    if attention_mask is not None:
        raise ValueError(f"{where}: {PADDING}")
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


def lighthouse_mask(*args: Any, **kwargs: Any) -> Tensor | None:
    """The "lighthouse" entry of AttentionMaskInterface: transformers' sdpa mask, except while
    torch.compile traces an unpadded causal batch, where it returns None (causal SDPA).

    transformers cannot read tensor values while tracing, so it assumes the position ids may
    hold packed sequences and builds a mask for every compiled forward; Lighthouse layers
    would then refuse it. `enable`'s input hook makes that assumption unnecessary: under
    torch.compile it checks the attention_mask and position_ids inside the graph (an op that
    raises on padding or packing) and passes no attention_mask on.
    """
    if torch.compiler.is_compiling() and _unpadded_causal(*args, **kwargs):
        return None
    return sdpa_mask(*args, **kwargs)


def _unpadded_causal(batch_size: int = 0, q_length: int = 0, kv_length: int = 0,
                     q_offset: Any = 0, kv_offset: int = 0, mask_function: Any = None,
                     attention_mask: Tensor | None = None, local_size: int | None = None,
                     use_vmap: bool = False, **_: Any) -> bool:
    # use_vmap: the model composed its own mask pattern (not plain causal) - never skipped
    return (attention_mask is None and local_size is None and not use_vmap
            and q_length == kv_length
            and isinstance(q_offset, int) and q_offset == 0 and kv_offset == 0)


AttentionInterface.register(ATTN_IMPLEMENTATION, lighthouse_attention_forward)
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, lighthouse_mask)
