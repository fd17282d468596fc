"""LighthouseConfig: the op's parameters (SPEC.md §2) with the defaults of the C++
`lighthouse::Config`, validated when built so a bad field fails where it is written."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch

SCORERS = ("norm", "dilated")
SDPA_BACKENDS = ("auto", "cudnn", "flash", "efficient", "math")
SELECTIONS = ("stratified", "causal")


@dataclasses.dataclass(frozen=True)
class LighthouseConfig:
    """Parameters of Lighthouse attention.

    Attributes:
        levels: pyramid levels L, in [2, 16].
        pool: pooling factor p, a power of two in [2, 16].
        topk: entries kept per coarse level k, a positive multiple of ``tile_topk``.
        tile_topk: entries kept per tile m, even and >= 2.
        scorer: selection score, ``"norm"`` (norms of q and k) or ``"dilated"`` (norms of
            causal attention outputs inside ``dilation`` strided sub-sequences; SPEC.md §4).
        sdpa: stock SDPA kernel on CUDA: ``"auto"``, ``"cudnn"``, ``"flash"``,
            ``"efficient"`` or ``"math"`` (CPU always lets torch choose).
        dilation: the dilated scorer's δ, >= 1 (unused by ``"norm"``).
        selection: per-tile selection rule, ``"causal"`` (the default; SPEC.md §12: outputs
            never depend on later tokens, the plan included) or ``"stratified"`` (the
            published top-m/2, SPEC.md §5).

    Any sequence length N >= 1 is served (a last, shorter tile and a level-0 tail; SPEC.md
    §2); :meth:`check_seq_len` asks the op itself.
    Raises ValueError / TypeError naming the field.
    """

    levels: int = 3
    pool: int = 4
    topk: int = 2048
    tile_topk: int = 128
    scorer: str = "norm"
    sdpa: str = "auto"
    dilation: int = 4
    selection: str = "causal"

    def __post_init__(self) -> None:
        for name in ("levels", "pool", "topk", "tile_topk", "dilation"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"LighthouseConfig.{name} must be an int, got "
                                f"{type(value).__name__} {value!r}")
        for name in ("scorer", "sdpa", "selection"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"LighthouseConfig.{name} must be a str, got "
                                f"{type(getattr(self, name)).__name__}")
        # The rules of lighthouse::validate (src/core/config.cpp), in its order and words;
        # tests/python/test_package.py checks that the op agrees on every one.
        if not 2 <= self.levels <= 16:
            raise ValueError(f"LighthouseConfig.levels (L) must be in [2, 16], got {self.levels}")
        p = self.pool
        if not (2 <= p <= 16 and p & (p - 1) == 0):
            raise ValueError(
                f"LighthouseConfig.pool (p) must be a power of two in [2, 16], got {p}")
        if self.tile_topk < 2 or self.tile_topk % 2:
            raise ValueError(
                f"LighthouseConfig.tile_topk (m) must be even and >= 2, got {self.tile_topk}")
        if self.topk < self.tile_topk or self.topk % self.tile_topk:
            raise ValueError(
                f"LighthouseConfig.topk (k) must be a positive multiple of tile_topk (m) = "
                f"{self.tile_topk}, got {self.topk}")
        if self.dilation < 1:
            raise ValueError(
                f"LighthouseConfig.dilation (delta) must be >= 1, got {self.dilation}")
        if self.scorer not in SCORERS:
            raise ValueError(
                f'LighthouseConfig.scorer must be "norm" or "dilated", got "{self.scorer}"')
        if self.sdpa not in SDPA_BACKENDS:
            raise ValueError(f"LighthouseConfig.sdpa must be one of {'|'.join(SDPA_BACKENDS)}, "
                             f'got "{self.sdpa}"')
        if self.selection not in SELECTIONS:
            raise ValueError(f'LighthouseConfig.selection must be "stratified" or "causal", '
                             f'got "{self.selection}"')

    def op_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`lighthouse.attention` for this config."""
        return {"levels": self.levels, "pool": self.pool, "topk": self.topk,
                "tile_topk": self.tile_topk, "scorer": self.scorer, "sdpa": self.sdpa,
                "dilation": self.dilation, "selection": self.selection}

    def check_seq_len(self, n: int, name: str = "sequence length") -> None:
        """Raises ValueError naming ``name`` when this config cannot tile a sequence of n
        tokens. The rule is the op's own: it is asked on shape-only (meta) tensors."""
        err = _tiling_error(self, int(n))
        if err:
            raise ValueError(f"{name} = {n} cannot be served by {self}: {err}")


@functools.lru_cache(maxsize=256)
def _tiling_error(cfg: LighthouseConfig, n: int) -> str:
    if n <= 0:
        return "it must be positive"
    x = torch.empty(1, n, 1, 2, device="meta")  # [B, N, H, D], shapes only
    try:
        torch.ops.lighthouse.plan(x, x, cfg.levels, cfg.pool, cfg.topk, cfg.tile_topk, cfg.scorer,
                                  x, cfg.dilation, cfg.selection)
    except ValueError as e:
        return str(e).splitlines()[0]
    return ""
