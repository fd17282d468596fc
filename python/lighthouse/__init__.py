"""Lighthouse Attention for PyTorch: the C++/CUDA ops of this repository from Python.

    import lighthouse
    # q [B, N, H, D], k and v [B, N, Hkv, D] -> [B, N, H, D]
    o = lighthouse.attention(q, k, v, levels=3, pool=4, topk=256)

- `lighthouse.attention`, `plan`, `attention_with_plan`, `dense_attention`: the functional API
  (thin wrappers over `torch.ops.lighthouse`, autograd in C++).
- `lighthouse.LighthouseConfig`: the op's parameters, validated.
- `lighthouse.nn.LighthouseAttention`: an `nn.Module` holding a config.
- `lighthouse.hf.LighthouseWrapper`: Lighthouse inside a Hugging Face `transformers` model
  (imported on demand; needs `transformers`).
"""

from ._version import __version__, torch_version as _built_for_torch
from ._library import load as _load

_load(_built_for_torch)

from .config import LighthouseConfig  # noqa: E402
from .functional import Plan, attention, attention_with_plan, dense_attention, plan  # noqa: E402
from . import nn  # noqa: E402



def __getattr__(name: str):
    """`lighthouse.hf` on first use (it imports transformers)."""
    if name == "hf":
        import importlib
        return importlib.import_module(".hf", __name__)
    raise AttributeError(f"module 'lighthouse' has no attribute {name!r}")


__all__ = [
    "__version__",
    "LighthouseConfig",
    "Plan",
    "attention",
    "attention_with_plan",
    "dense_attention",
    "plan",
    "nn",
]
