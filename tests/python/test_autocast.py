"""The public ops under torch.autocast (src/ops/autocast.cpp): inputs cast to the autocast dtype
as scaled_dot_product_attention's are, so mixed q/k/v dtypes (RoPE promotes q and k to fp32
under autocast, v stays bf16) run, and a wrapped fp32 model trains under autocast as it does
with stock SDPA.

LIGHTHOUSE_TEST_DEVICE=cuda runs the same tests on CUDA (CTest python.test_autocast_cuda,
label gpu); the default is the CPU (label cpu), whose autocast dtype is bf16 too.
"""

import os

import pytest
import torch
import torch.nn.functional as TF
import transformers

import lighthouse
import lighthouse.hf

DEVICE = os.environ.get("LIGHTHOUSE_TEST_DEVICE", "cpu")
LOW = torch.bfloat16
OPS = dict(levels=3, pool=2, topk=8, tile_topk=4)


def qkv(n=128, h=4, hkv=2, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, n, heads, d, generator=g).to(DEVICE) for heads in (h, hkv, hkv))
    return q, k, v.to(LOW)  # q, k fp32 (as RoPE leaves them under autocast), v bf16


def autocast():
    return torch.autocast(DEVICE, dtype=LOW)


def test_mixed_dtypes_fail_without_autocast_and_are_cast_under_it():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="v dtype must equal q dtype"):
        lighthouse.attention(q, k, v, **OPS)
    with autocast():
        o = lighthouse.attention(q, k, v, **OPS)
        od = lighthouse.dense_attention(q, k, v)
        kr, vr = (x.transpose(1, 2).repeat_interleave(2, 1) for x in (k, v))
        ref = TF.scaled_dot_product_attention(q.transpose(1, 2), kr, vr, is_causal=True)
    assert o.dtype == od.dtype == ref.dtype == LOW  # the dtype stock SDPA gives under autocast
    ql, kl = q.to(LOW), k.to(LOW)
    assert torch.equal(o, lighthouse.attention(ql, kl, v, **OPS))
    assert torch.equal(od, lighthouse.dense_attention(ql, kl, v))


def test_every_public_op_casts():
    q, k, v = qkv()
    ql, kl = q.to(LOW), k.to(LOW)
    want_plan = lighthouse.plan(ql, kl, **OPS)
    with autocast():
        plan = lighthouse.plan(q, k, **OPS)
        o = lighthouse.attention_with_plan(q, k, v, plan, levels=3, pool=2)
        qt, kt, vt = torch.ops.lighthouse.gather_subsequence(q, k, v, *plan, 3, 2)
        back = torch.ops.lighthouse.scatter_subsequence(qt.float(), *plan, 3, 2)
    assert all(torch.equal(a, b) for a, b in zip(plan, want_plan))
    assert torch.equal(o, lighthouse.attention_with_plan(ql, kl, v, want_plan, levels=3, pool=2))
    assert qt.dtype == kt.dtype == vt.dtype == back.dtype == LOW
    assert torch.equal(qt, torch.ops.lighthouse.gather_subsequence(ql, kl, v, *want_plan, 3, 2)[0])
    # float64 stays float64 (the reference path), as autocast leaves it for SDPA
    q64, k64, v64 = (x.double() for x in (q, k, v))
    with autocast():
        assert lighthouse.attention(q64, k64, v64, **OPS).dtype == torch.float64


def test_gradients_reach_fp32_inputs_in_fp32():
    q, k, v = qkv()
    q.requires_grad_(), k.requires_grad_(), v.requires_grad_()
    with autocast():
        o = lighthouse.attention(q, k, v, **OPS)
    o.float().square().sum().backward()
    assert q.grad.dtype == k.grad.dtype == torch.float32 and v.grad.dtype == LOW
    ql, kl = (x.detach().to(LOW).requires_grad_() for x in (q, k))
    lighthouse.attention(ql, kl, v.detach(), **OPS).float().square().sum().backward()
    assert torch.equal(q.grad, ql.grad.float()) and torch.equal(k.grad, kl.grad.float())


def test_an_fp32_llama_trains_under_autocast_as_with_stock_sdpa():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=4, num_attention_heads=4,
                                   num_key_value_heads=2)
    model = transformers.LlamaForCausalLM(cfg).to(DEVICE)
    ids = torch.randint(0, 97, (2, 64), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    lighthouse.hf.enable(model, lighthouse.LighthouseConfig(**OPS), dense_layers=(0, -1))
    fp32 = model(ids, labels=ids).loss
    for mode in ("lighthouse", "dense"):
        lighthouse.hf.set_mode(model, mode)
        model.zero_grad()
        with autocast():
            out = model(ids, labels=ids)
        out.loss.backward()
        assert out.logits.dtype == LOW or out.logits.dtype == torch.float32
        grad = model.model.layers[1].self_attn.q_proj.weight.grad
        assert grad.dtype == torch.float32 and grad.abs().sum() > 0
        if mode == "lighthouse":
            assert abs(out.loss.item() - fp32.item()) < 2e-2 * fp32.item()
