"""A causal-LM loss that never holds the full fp32 logits: `chunked_causal_lm_loss`.

transformers' `LlamaForCausalLM(ids, labels=ids)` materializes logits [B, N, V] in the model's
dtype and again in fp32 for the cross-entropy (at N = 98,304 and V = 128,256 that is 50 GB in
fp32 alone). Here the lm_head and the cross-entropy run on chunks of tokens: each chunk's
logits exist only while its loss and its gradients (with respect to the hidden states and the
lm_head weight) are computed, in the forward; backward scales the stored gradients.
The result equals transformers' loss (mean over the labels that are not -100, labels shifted
by one) up to rounding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

IGNORE_INDEX = -100


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: Tensor, weight: Tensor, labels: Tensor, chunk: int) -> Tensor:
        # hidden [T, C], weight [V, C], labels [T] (IGNORE_INDEX: no loss)
        valid = labels != IGNORE_INDEX  # [T]
        count = valid.sum().clamp(min=1).to(torch.float32)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden)  # [T, C]
        grad_weight = torch.zeros_like(weight, dtype=torch.float32)  # [V, C]
        for s in range(0, hidden.shape[0], chunk):
            h, y, ok = hidden[s:s + chunk], labels[s:s + chunk], valid[s:s + chunk]
            logits = (h @ weight.t()).float()  # [c, V], as lm_head computes then upcasts
            lse = torch.logsumexp(logits, dim=-1)  # [c]
            target = logits.gather(1, y.clamp(min=0)[:, None])[:, 0]  # [c]
            total += ((lse - target) * ok).sum()
            p = torch.softmax(logits, dim=-1)  # [c, V]: d(loss)/d(logits) = p - onehot
            p[torch.arange(len(y), device=y.device), y.clamp(min=0)] -= 1
            p *= ok[:, None].float() / count
            grad_hidden[s:s + chunk] = (p.to(weight.dtype) @ weight).to(hidden.dtype)
            grad_weight += p.t() @ h.float()
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return total / count

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad.to(grad_hidden.dtype), grad_weight * grad.to(grad_weight.dtype), \
            None, None


def chunked_linear_cross_entropy(hidden: Tensor, weight: Tensor, labels: Tensor,
                                 chunk: int = 4096) -> Tensor:
    """mean cross-entropy of `hidden @ weight.T` against `labels` (IGNORE_INDEX skipped), `chunk`
    tokens of logits at a time.

    Args:
        hidden: [..., C] final hidden states.
        weight: [V, C] the lm_head weight (no bias).
        labels: [...] class indices, -100 for none.
        chunk: tokens per chunk (>= 1).
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
    if hidden.shape[:-1] != labels.shape:
        raise ValueError(f"labels must have shape {tuple(hidden.shape[:-1])} (hidden's without "
                         f"its last dim), got {tuple(labels.shape)}")
    return _ChunkedLinearCrossEntropy.apply(hidden.reshape(-1, hidden.shape[-1]), weight,
                                            labels.reshape(-1), chunk)


def chunked_causal_lm_loss(model: torch.nn.Module, input_ids: Tensor, labels: Tensor,
                           chunk: int = 4096, **kwargs: Any) -> Tensor:
    """transformers' causal-LM loss of `model(input_ids, labels=labels).loss`, without the full
    logits: the base model's hidden states, then `chunked_linear_cross_entropy` with the
    lm_head weight on the labels shifted by one.

    Args:
        model: a `*ForCausalLM` with `base_model` and an `lm_head` without bias (Llama,
            Mistral, Qwen2, ...).
        input_ids: [B, N]; labels: [B, N] (-100: no loss), as transformers takes them.
        chunk: tokens of logits at a time.
        **kwargs: passed to the base model (attention_mask, position_ids, ...).
    """
    head = model.get_output_embeddings()
    if head is None or getattr(head, "bias", None) is not None:
        raise ValueError(f"model: {type(model).__name__} needs an lm_head without bias for the "
                         "chunked loss")
    hidden = model.base_model(input_ids=input_ids, **kwargs).last_hidden_state  # [B, N, C]
    shifted = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[:, 1:]  # [B, N]
    return chunked_linear_cross_entropy(hidden, head.weight, shifted.to(hidden.device), chunk)
