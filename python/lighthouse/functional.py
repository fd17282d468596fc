"""The functional API in flash-attn's layout: q [B, N, H, D], k and v [B, N, Hkv, D] with
H % Hkv == 0 (GQA without repeating K/V heads), output [B, N, H, D] in q's dtype.

Each function is one call of the matching `torch.ops.lighthouse` op (src/ops/schema.cpp):
kernels, validation, autograd and autocast are the C++ ones, and `torch.compile` traces them
without graph breaks. The attention functions first refuse torch's context-parallel SDPA
dispatch (_context_parallel.py), which would otherwise leave each rank its own shard.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._context_parallel import check_not_context_parallel


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _check_int64(**values: int) -> None:
    """The op's integer arguments are int64: a Python int beyond that range is a ValueError
    naming the argument (torch's own message names neither it nor the range)."""
    for name, value in values.items():
        if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"{name} must fit in a signed 64-bit integer, got {value}")


class Plan(NamedTuple):
    """A Lighthouse selection (SPEC.md §4-§5) for one input."""

    slots: Tensor    # [B, H, S] int64: pyramid index of every slot, in slot order
    inverse: Tensor  # [B, H, P] int64: slot of every pyramid index, -1 if not selected


def attention(q: Tensor, k: Tensor, v: Tensor, *, levels: int = 3, pool: int = 4,
              topk: int = 2048, tile_topk: int = 128, scorer: str = "norm",
              sdpa: str = "auto", dilation: int = 4,
              selection: str = "causal") -> Tensor:
    """Lighthouse attention: select a causal sub-sequence from the pooled pyramid, run stock
    SDPA on it, scatter back. Differentiable in q, k and v (not through the selection).

    Args:
        q: [B, N, H, D] queries (post-RoPE).
        k: [B, N, Hkv, D] keys (post-RoPE), H % Hkv == 0.
        v: [B, N, Hkv, D] values.
        levels, pool, topk, tile_topk, scorer, sdpa, dilation, selection: see
            :class:`lighthouse.LighthouseConfig`.

    Returns:
        [B, N, H, D] in q's dtype.

    Raises RuntimeError under torch's context-parallel SDPA dispatch, which the op cannot
    join (see ``lighthouse._context_parallel``).
    """
    check_not_context_parallel("lighthouse.attention")
    _check_int64(levels=levels, pool=pool, topk=topk, tile_topk=tile_topk, dilation=dilation)
    return torch.ops.lighthouse.attention(q, k, v, levels, pool, topk, tile_topk, scorer, sdpa,
                                          dilation, selection)


def plan(q: Tensor, k: Tensor, *, levels: int = 3, pool: int = 4, topk: int = 2048,
         tile_topk: int = 128, scorer: str = "norm", v: Tensor | None = None,
         dilation: int = 4, selection: str = "causal") -> Plan:
    """The selection only (no gradient): q [B, N, H, D], k [B, N, Hkv, D] -> :class:`Plan`
    with slots [B, H, S] and inverse [B, H, P], S = N / p^(L-1) + (L-1) p k and
    P = sum_l N / p^l. The dilated scorer also reads v [B, N, Hkv, D] (required then)."""
    _check_int64(levels=levels, pool=pool, topk=topk, tile_topk=tile_topk, dilation=dilation)
    slots, inverse = torch.ops.lighthouse.plan(q, k, levels, pool, topk, tile_topk, scorer, v,
                                               dilation, selection)
    return Plan(slots, inverse)


def attention_with_plan(q: Tensor, k: Tensor, v: Tensor, plan: Plan | tuple[Tensor, Tensor],
                        *, levels: int = 3, pool: int = 4, sdpa: str = "auto") -> Tensor:
    """Lighthouse attention with a fixed selection (a :class:`Plan` or a (slots, inverse)
    pair made for the same N, levels and pool; user plans are validated by the op).

    Args:
        q: [B, N, H, D]; k, v: [B, N, Hkv, D].
        plan: slots [B, H, S] and inverse [B, H, P], int64 on q's device.

    Returns:
        [B, N, H, D]; gradients flow to q, k and v.
    """
    check_not_context_parallel("lighthouse.attention_with_plan")
    slots, inverse = plan
    _check_int64(levels=levels, pool=pool)
    return torch.ops.lighthouse.attention_with_plan(q, k, v, slots, inverse, levels, pool, sdpa)


def dense_attention(q: Tensor, k: Tensor, v: Tensor, *, sdpa: str = "auto") -> Tensor:
    """Causal stock SDPA on the full sequence in the same layout (dense layers, baselines):
    q [B, N, H, D], k/v [B, N, Hkv, D] -> [B, N, H, D]."""
    return torch.ops.lighthouse.dense_attention(q, k, v, sdpa)
