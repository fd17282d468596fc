"""Lighthouse Attention for PyTorch: the C++/CUDA ops of this repository from Python.

    import lighthouse
    # q [B, N, H, D], k and v [B, N, Hkv, D] -> [B, N, H, D]
    o = lighthouse.attention(q, k, v, levels=3, pool=4, topk=256)

- `lighthouse.attention`, `plan`, `attention_with_plan`, `dense_attention`: the functional API
  (thin wrappers over `torch.ops.lighthouse`, autograd in C++).
- `lighthouse.LighthouseConfig`: the op's parameters, validated.
- `lighthouse.nn.LighthouseAttention`: an `nn.Module` holding a config.
- `lighthouse.hf`: Lighthouse inside a Hugging Face `transformers` model, in place
  (`enable`, `set_mode`, `disable`, `LighthouseCallback` for the Trainer) or as the seed
  articles' `LighthouseWrapper` (also `lighthouse.LighthouseWrapper`); imported on demand,
  needs `transformers`.
"""

from ._version import __version__, torch_version as _built_for_torch
from ._library import load as _load

_load(_built_for_torch)

from .config import LighthouseConfig  # noqa: E402
from .functional import Plan, attention, attention_with_plan, dense_attention, plan  # noqa: E402
from . import nn  # noqa: E402


def __getattr__(name: str):
    """`lighthouse.hf` and `lighthouse.LighthouseWrapper` on first use (they import
    transformers)."""
    if name in ("hf", "LighthouseWrapper"):
        import importlib
        hf = importlib.import_module(".hf", __name__)
        return hf if name == "hf" else hf.LighthouseWrapper
    raise AttributeError(f"module 'lighthouse' has no attribute {name!r}")


__all__ = [
    "__version__",
    "LighthouseConfig",
    "LighthouseWrapper",
    "Plan",
    "attention",
    "attention_with_plan",
    "dense_attention",
    "plan",
    "nn",
]
