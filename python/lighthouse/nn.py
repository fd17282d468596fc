"""`lighthouse.nn.LighthouseAttention`: the op as an `nn.Module` holding a LighthouseConfig.
It has no parameters: put it where a causal SDPA call sits, after the projections and RoPE."""

from __future__ import annotations

import torch
from torch import Tensor

from . import functional as F
from .config import LighthouseConfig


class LighthouseAttention(torch.nn.Module):
    """Causal Lighthouse attention, ``forward(q, k, v) -> o``.

    Args:
        config: the op's parameters (default ``LighthouseConfig()``).

    Shapes: q [B, N, H, D], k and v [B, N, Hkv, D] (H % Hkv == 0), output [B, N, H, D].
    """

    def __init__(self, config: LighthouseConfig | None = None) -> None:
        super().__init__()
        if config is None:
            config = LighthouseConfig()
        if not isinstance(config, LighthouseConfig):
            raise TypeError(f"config must be a lighthouse.LighthouseConfig, got "
                            f"{type(config).__name__}")
        self.config = config

    def forward(self, q: Tensor, k: Tensor, v: Tensor, plan: F.Plan | None = None) -> Tensor:
        """q [B, N, H, D], k/v [B, N, Hkv, D] -> [B, N, H, D]; with ``plan`` the selection is
        fixed (see :func:`lighthouse.attention_with_plan`)."""
        c = self.config
        if plan is not None:
            return F.attention_with_plan(q, k, v, plan, levels=c.levels, pool=c.pool, sdpa=c.sdpa)
        return F.attention(q, k, v, levels=c.levels, pool=c.pool, topk=c.topk,
                           tile_topk=c.tile_topk, scorer=c.scorer, sdpa=c.sdpa,
                           dilation=c.dilation, selection=c.selection)

    def plan(self, q: Tensor, k: Tensor, v: Tensor | None = None) -> F.Plan:
        """The selection this module would make for q [B, N, H, D] and k [B, N, Hkv, D]
        (and v [B, N, Hkv, D], which the dilated scorer reads)."""
        c = self.config
        return F.plan(q, k, levels=c.levels, pool=c.pool, topk=c.topk, tile_topk=c.tile_topk,
                      scorer=c.scorer, v=v, dilation=c.dilation, selection=c.selection)

    def extra_repr(self) -> str:
        c = self.config
        return (f"levels={c.levels}, pool={c.pool}, topk={c.topk}, tile_topk={c.tile_topk}, "
                f"scorer={c.scorer!r}, sdpa={c.sdpa!r}, dilation={c.dilation}, "
                f"selection={c.selection!r}")
