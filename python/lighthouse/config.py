"""LighthouseConfig: the op's parameters (SPEC.md §2) with the defaults of the C++
`lighthouse::Config`, validated when built so a bad field fails where it is written."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

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
            if not -(2**63) <= value < 2**63:
                raise ValueError(f"LighthouseConfig.{name} must fit in a signed 64-bit "
                                 f"integer, got {value}")
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

    @property
    def pool_ratios(self) -> tuple[float, ...]:
        """The token fraction of each pooled level, ``(1/p, 1/p^2, ..., 1/p^(L-1))``: the
        seed articles' spelling of ``levels`` and ``pool`` (see :meth:`from_pool_ratios`)."""
        return tuple(float(self.pool) ** -lvl for lvl in range(1, self.levels))

    @classmethod
    def from_pool_ratios(cls, pool_ratios: Sequence[float], select_topk: int | None = None,
                         **fields: Any) -> "LighthouseConfig":
        """The config of the seed articles' arguments.

        Args:
            pool_ratios: the fraction of the N tokens each pooled level keeps, coarser and
                coarser: ``[0.5, 0.25, 0.125]`` is ``pool=2, levels=4`` (level 0 is the tokens
                themselves; level l averages p^l of them, SPEC.md §3). The ratios must be
                successive powers of one factor 1/p, with p a power of two in [2, 16],
                because every level pools p entries of the level below.
            select_topk: ``topk`` (k), the entries kept per coarse level (the selected
                sub-sequence has S = N/p^(L-1) + (L-1)·p·k slots, SPEC.md §4).
            **fields: any other field (``tile_topk``, ``scorer``, ...).

        Raises ValueError / TypeError naming ``pool_ratios`` or ``select_topk``.
        """
        levels, pool = _levels_pool_of(pool_ratios)
        fields.update(levels=levels, pool=pool)
        return _with_topk(cls, fields, select_topk)

    def with_ratios(self, *, pool_ratios: Sequence[float] | None = None,
                select_topk: int | None = None) -> "LighthouseConfig":
        """This config with ``levels``/``pool`` from ``pool_ratios`` and ``topk`` from
        ``select_topk`` where they are given (the other fields kept)."""
        fields = dataclasses.asdict(self)
        if pool_ratios is not None:
            fields["levels"], fields["pool"] = _levels_pool_of(pool_ratios)
        return _with_topk(type(self), fields, select_topk)

    def check_seq_len(self, n: int, name: str = "sequence length") -> None:
        """Raises ValueError naming ``name`` when this config cannot tile a sequence of n
        tokens. The rule is the op's own: it is asked on shape-only (meta) tensors."""
        err = _tiling_error(self, int(n))
        if err:
            raise ValueError(f"{name} = {n} cannot be served by {self}: {err}")


def _levels_pool_of(pool_ratios: Sequence[float]) -> tuple[int, int]:
    """(levels, pool) of the token fractions of the pooled levels, or the error saying why
    there are none."""
    if isinstance(pool_ratios, (str, bytes)) or not isinstance(pool_ratios, Sequence):
        raise TypeError(f"pool_ratios must be a list of floats such as [0.5, 0.25, 0.125], "
                        f"got {type(pool_ratios).__name__}")
    ratios = list(pool_ratios)
    for r in ratios:
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise TypeError(f"pool_ratios entries must be floats, got {r!r}")
    if not 1 <= len(ratios) <= 15:
        raise ValueError(f"pool_ratios must hold 1 to 15 ratios (one per pooled level; "
                         f"levels = len(pool_ratios) + 1 in [2, 16]), got {len(ratios)}")
    first = ratios[0]
    pool = round(1 / first) if 0 < first < 1 else 0
    if pool not in (2, 4, 8, 16) or not math.isclose(first * pool, 1.0, rel_tol=1e-6):
        raise ValueError(
            f"pool_ratios[0] = {first} must be 1/p for a pooling factor p that is a power of two "
            "in [2, 16] (0.5, 0.25, 0.125 or 0.0625): each level averages p entries of the "
            "level below")
    for lvl, r in enumerate(ratios, start=1):
        want = float(pool) ** -lvl
        if not math.isclose(r, want, rel_tol=1e-6):
            raise ValueError(
                f"pool_ratios must be successive powers of one factor 1/p, because every "
                f"level pools p = {pool} entries of the level below (level l keeps N/p^l "
                f"tokens); got {ratios}: pool_ratios[{lvl - 1}] = {r}, expected {want}")
    return len(ratios) + 1, pool


def _with_topk(cls: type, fields: dict[str, Any], select_topk: int | None) -> LighthouseConfig:
    if select_topk is None:
        return cls(**fields)
    if isinstance(select_topk, bool) or not isinstance(select_topk, int):
        raise TypeError(f"select_topk must be an int, got {type(select_topk).__name__} "
                        f"{select_topk!r}")
    fields["topk"] = select_topk
    try:
        return cls(**fields)
    except ValueError as e:
        if "LighthouseConfig.topk" not in str(e):
            raise
        raise ValueError(f"select_topk = {select_topk} (LighthouseConfig.topk): {e}") from None


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
