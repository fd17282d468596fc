"""Lighthouse inside a Hugging Face `transformers` model (needs `transformers`; the Trainer
callback needs `accelerate` too).

In place, the model staying the same `PreTrainedModel` (signature, saving, loading):

    model = LlamaForCausalLM(config)                       # or from_pretrained(...)
    lighthouse.hf.enable(model, LighthouseConfig(topk=256), dense_layers=(0, 1, -2, -1))
    ...train (stage 1, Lighthouse)...
    lighthouse.hf.set_mode(model, "dense"); ...train (stage 2)...
    lighthouse.hf.disable(model)                           # or keep it: checkpoints are plain
    model.save_pretrained(out)

In the HF Trainer: `callbacks=[lighthouse.hf.LighthouseCallback(dense_from_step=...)]`.
The seed articles' wrapper: `LighthouseWrapper(model, pool_ratios=[0.5, 0.25, 0.125],
select_topk=1024)` ... `model = model.unwrap()`.

`enable` registers the attention function "lighthouse" in transformers' AttentionInterface
(and a mask function under the same name) and points the model's `_attn_implementation` at
it. Layers in `dense_layers` run stock SDPA; the others run `lighthouse.attention` on the
model's post-RoPE q/k with its own GQA (K/V heads not repeated). Dense mode is the model's
stock "sdpa". Models served: those whose attention modules call `ALL_ATTENTION_FUNCTIONS`
(Llama, Mistral and Qwen2 without sliding windows, ...).
"""

from __future__ import annotations

from typing import Any

from .attention import ATTN_IMPLEMENTATION, lighthouse_attention_forward
from .inplace import MODES, disable, enable, get_mode, set_mode
from .wrapper import LighthouseWrapper


def __getattr__(name: str) -> Any:
    """`LighthouseCallback` on first use (it imports the Trainer's modules)."""
    if name == "LighthouseCallback":
        from .trainer import LighthouseCallback
        return LighthouseCallback
    raise AttributeError(f"module 'lighthouse.hf' has no attribute {name!r}")


__all__ = [
    "ATTN_IMPLEMENTATION",
    "MODES",
    "LighthouseCallback",
    "LighthouseWrapper",
    "disable",
    "enable",
    "get_mode",
    "lighthouse_attention_forward",
    "set_mode",
]
