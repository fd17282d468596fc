"""The lighthouse torch ops from Python: load liblighthouse_ops.so, call the public ops,
compare with a plain-torch reference, gradcheck through attention_with_plan (float64, fixed
plan) and torch.library.opcheck on every op, stage ops included.

Run by CTest (label cpu) with LIGHTHOUSE_OPS_LIB set to the built library.
"""

import math
import os

import pytest
import torch
import torch.nn.functional as F

LIB = os.environ.get("LIGHTHOUSE_OPS_LIB")
assert LIB, "set LIGHTHOUSE_OPS_LIB to the path of liblighthouse_ops.so"
torch.ops.load_library(LIB)
ops = torch.ops.lighthouse

# (B, N, H, Hkv, D, levels, pool, topk, tile_topk)
SHAPES = [
    (2, 256, 4, 2, 16, 3, 2, 16, 8),
    (1, 512, 2, 1, 8, 2, 8, 16, 4),
    (1, 1024, 2, 2, 8, 4, 2, 8, 4),
]
TINY = (1, 64, 2, 1, 4, 3, 2, 4, 2)  # T = 2, C = 8: small enough for gradcheck and opcheck


def inputs(shape, dtype=torch.float64, seed=0, requires_grad=False):
    B, N, H, Hkv, D = shape[:5]
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, N, H, D, generator=g, dtype=torch.float64)
    k = torch.randn(B, N, Hkv, D, generator=g, dtype=torch.float64)
    v = torch.randn(B, N, Hkv, D, generator=g, dtype=torch.float64)
    return [x.to(dtype).requires_grad_(requires_grad) for x in (q, k, v)]


def slot_count(shape):
    _, N, _, _, _, L, p, k, _ = shape
    return N // p ** (L - 1) + (L - 1) * p * k


def pyramid(x, L, p):
    """[B, N, Hx, D] -> [B, P, Hx, D]: level 0, then the window means of every level."""
    B, N, Hx, D = x.shape
    levels = [x] + [x.reshape(B, N // p**l, p**l, Hx, D).mean(2) for l in range(1, L)]
    return torch.cat(levels, 1)


def reference(q, k, v, slots, L, p):
    """Lighthouse attention for a fixed slot table in plain torch (SPEC.md §5-§6)."""
    B, N, H, D = q.shape
    group = H // k.shape[2]
    pq, pk, pv = (pyramid(x, L, p) for x in (q, k, v))
    offs = [sum(N // p**j for j in range(l)) for l in range(L + 1)]
    out = torch.zeros_like(q)
    for b in range(B):
        for h in range(H):
            idx = slots[b, h]
            qt, kt, vt = pq[b, idx, h], pk[b, idx, h // group], pv[b, idx, h // group]
            S = idx.numel()
            logits = (qt @ kt.T / math.sqrt(D)).masked_fill(
                torch.ones(S, S, dtype=torch.bool).triu(1), float("-inf"))
            ot = torch.softmax(logits, -1) @ vt  # [S, D]
            for s, e in enumerate(idx.tolist()):
                l = max(j for j in range(L) if offs[j] <= e)
                i, w = e - offs[l], p**l
                first, last = (i + 1) * w - 1, min((i + 2) * w - 2, N - 1)
                out[b, first:last + 1, h] += ot[s]
    return out


@pytest.mark.parametrize("shape", SHAPES)
def test_plan_is_a_valid_table(shape):
    B, N, H, _, _, L, p, k, m = shape
    q, kk, _ = inputs(shape)
    slots, inverse = ops.plan(q, kk, L, p, k, m)
    S, P = slot_count(shape), sum(N // p**l for l in range(L))
    assert slots.shape == (B, H, S) and slots.dtype == torch.int64
    assert inverse.shape == (B, H, P) and inverse.dtype == torch.int64
    assert torch.equal(inverse.gather(2, slots), torch.arange(S).expand(B, H, S))
    assert int((inverse >= 0).sum()) == B * H * S


@pytest.mark.parametrize("shape", SHAPES)
def test_attention_matches_plain_torch_reference(shape):
    L, p, k, m = shape[5:]
    q, kk, v = inputs(shape, seed=1)
    slots, _ = ops.plan(q, kk, L, p, k, m)
    out = ops.attention(q, kk, v, L, p, k, m)
    want = reference(q, kk, v, slots, L, p)
    assert out.shape == q.shape and out.dtype == q.dtype
    assert (out - want).abs().max() <= 1e-10 * want.abs().max()


def test_attention_equals_attention_with_its_plan():
    L, p, k, m = SHAPES[0][5:]
    q, kk, v = inputs(SHAPES[0], seed=2)
    slots, inverse = ops.plan(q, kk, L, p, k, m)
    assert torch.equal(ops.attention(q, kk, v, L, p, k, m),
                       ops.attention_with_plan(q, kk, v, slots, inverse, L, p))


def test_dense_attention_matches_causal_sdpa():
    q, k, v = inputs(SHAPES[0], seed=3)
    out = ops.dense_attention(q, k, v)
    t = lambda x: x.transpose(1, 2)
    want = t(F.scaled_dot_product_attention(t(q), t(k), t(v), is_causal=True, enable_gqa=True))
    assert out.shape == q.shape
    assert torch.allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_lower_precision_keeps_dtype(dtype):
    L, p, k, m = SHAPES[0][5:]
    q, kk, v = inputs(SHAPES[0], dtype=dtype, seed=4)
    out = ops.attention(q, kk, v, L, p, k, m)
    assert out.dtype == dtype
    slots, inverse = ops.plan(q, kk, L, p, k, m)  # rounding may move near-ties: same plan
    want = ops.attention_with_plan(q.double(), kk.double(), v.double(), slots, inverse, L, p)
    assert (out.double() - want).abs().max() <= 2e-2 * want.abs().max()


def test_backward_from_python():
    L, p, k, m = SHAPES[0][5:]
    q, kk, v = inputs(SHAPES[0], seed=5, requires_grad=True)
    ops.attention(q, kk, v, L, p, k, m).square().sum().backward()
    for x in (q, kk, v):
        assert x.grad.shape == x.shape and torch.isfinite(x.grad).all() and x.grad.abs().max() > 0


def test_gradcheck_attention_with_plan():
    L, p, _, _ = TINY[5:]
    q, k, v = inputs(TINY, seed=6, requires_grad=True)
    slots, inverse = ops.plan(q, k, *TINY[5:])
    fn = lambda q, k, v: ops.attention_with_plan(q, k, v, slots, inverse, L, p)
    assert torch.autograd.gradcheck(fn, (q, k, v), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_errors_name_the_parameter():
    q, k, v = inputs(SHAPES[0])
    with pytest.raises(ValueError, match=r"pool \(p\) must be a power of two"):
        ops.attention(q, k, v, 3, 3, 16, 8)
    with pytest.raises(ValueError, match="tile_topk"):
        ops.plan(q, k, 3, 2, 15, 5)
    with pytest.raises(TypeError, match="k dtype must equal q dtype"):
        ops.attention(q, k.float(), v, 3, 2, 16, 8)
    with pytest.raises(ValueError, match="scorer"):
        ops.attention(q, k, v, 3, 2, 16, 8, "strided")


def dilated_reference(q, k, v, delta):
    """Level-0 dilated scores (SPEC.md §4) in plain torch: masked softmax over s <= t with
    s = t mod delta; sq from Attn(Q, K, V), sk from Attn(K, Q, V), per query head."""
    B, N, H, D = q.shape
    kr, vr = (x.repeat_interleave(H // k.shape[2], 2) for x in (k, v))  # [B, N, H, D]
    t = torch.arange(N)
    allowed = (t[None, :] <= t[:, None]) & (t[None, :] % delta == t[:, None] % delta)  # [N, N]

    def norms(x, y):
        logits = torch.einsum("bthd,bshd->bhts", x, y) / math.sqrt(D)
        w = torch.softmax(logits.masked_fill(~allowed, float("-inf")), -1)
        return torch.einsum("bhts,bshd->bhtd", w, vr).norm(dim=-1)  # [B, H, N]

    return norms(q, kr), norms(kr, q)


@pytest.mark.parametrize("delta", [1, 2, 4])
def test_dilated_scores_and_plan(delta):
    shape = SHAPES[0]
    B, N, H, _, _, L, p, k, m = shape
    q, kk, v = inputs(shape, seed=11)
    sq, sk = ops._dilated_score(q, kk, v, L, p, delta)
    want_q, want_k = dilated_reference(q, kk, v, delta)
    assert sq.shape == sk.shape == (B, H, sum(N // p**l for l in range(L)))
    assert torch.allclose(sq[..., :N].double(), want_q, rtol=1e-6)
    assert torch.allclose(sk[..., :N].double(), want_k, rtol=1e-6)
    assert not torch.allclose(sq, sk)
    assert torch.equal(sq[..., N:N + N // p], sq[..., :N].reshape(B, H, N // p, p).amax(-1))
    slots, inverse = ops.plan(q, kk, L, p, k, m, "dilated", v, delta)
    want_slots, want_inverse = ops._select(sq, sk, L, p, k, m)
    assert torch.equal(slots, want_slots) and torch.equal(inverse, want_inverse)
    out = ops.attention(q, kk, v, L, p, k, m, "dilated", "auto", delta)
    assert torch.allclose(out, reference(q, kk, v, slots, L, p), rtol=1e-9, atol=1e-11)
    with pytest.raises(ValueError, match=r"v must be given for scorer \"dilated\""):
        ops.plan(q, kk, L, p, k, m, "dilated")
    out3 = ops.attention(q, kk, v, L, p, k, m, "dilated", "auto", 3)  # δ need not divide N
    assert out3.shape == q.shape and torch.isfinite(out3).all()


def opcheck_cases():
    """(name, op, args): every public op and every stage op on TINY."""
    L, p, k, m = TINY[5:]
    q, kk, v = inputs(TINY, seed=7, requires_grad=True)
    qd, kd = q.detach(), kk.detach()
    slots, inverse = ops.plan(qd, kd, L, p, k, m)
    vd = v.detach()
    pyr_q, sq = ops._pool_score(qd, L, p)
    pyr_k, sk = ops._pool_score(kd, L, p)
    pyr_v, _ = ops._pool_score(vd, L, p, True, False)
    B, N, H, _, D = TINY[:5]
    S = slots.shape[-1]
    g = torch.Generator().manual_seed(8)
    o_tilde = torch.randn(B, H, S, D, generator=g, dtype=torch.float64, requires_grad=True)
    grad_s = torch.randn(B, H, S, D, generator=g, dtype=torch.float64)
    grad_n = torch.randn(B, N, H, D, generator=g, dtype=torch.float64)
    return [
        ("attention", ops.attention.default, (q, kk, v, L, p, k, m)),
        ("attention_with_plan", ops.attention_with_plan.default, (q, kk, v, slots, inverse, L, p)),
        ("plan", ops.plan.default, (qd, kd, L, p, k, m)),
        ("attention_dilated", ops.attention.default, (q, kk, v, L, p, k, m, "dilated", "auto", 2)),
        ("plan_dilated", ops.plan.default, (qd, kd, L, p, k, m, "dilated", vd, 4)),
        ("_dilated_score", ops._dilated_score.default, (qd, kd, vd, L, p, 4)),
        ("dense_attention", ops.dense_attention.default, (q, kk, v)),
        ("_pool_score", ops._pool_score.default, (qd, L, p)),
        ("_pool_score_scores_only", ops._pool_score.default, (qd, L, p, False, True)),
        ("_pool_score_qkv", ops._pool_score_qkv.default, (qd, kd, vd, L, p)),
        ("_pool_score_qkv_pyramids_only", ops._pool_score_qkv.default, (qd, kd, vd, L, p, False)),
        ("_select", ops._select.default, (sq, sk, L, p, k, m)),
        ("_gather", ops._gather.default, (q, pyr_q, slots, inverse, L, p)),
        ("_gather_backward", ops._gather_backward.default, (grad_s, inverse, L, p, 1)),
        ("_gather_qkv", ops._gather_qkv.default,
         (q, kk, v, pyr_q, pyr_k, pyr_v, slots, inverse, L, p)),
        ("_gather_backward_qkv", ops._gather_backward_qkv.default,
         (grad_s, grad_s * 2, grad_s * 3, inverse, L, p, 1)),
        ("_scatter", ops._scatter.default, (o_tilde, slots, inverse, L, p)),
        ("_scatter_backward", ops._scatter_backward.default, (grad_n, slots, L, p)),
        ("_check_plan", ops._check_plan.default, (slots, inverse)),
        ("gather_subsequence", ops.gather_subsequence.default, (q, kk, v, slots, inverse, L, p)),
        ("scatter_subsequence", ops.scatter_subsequence.default, (o_tilde, slots, inverse, L, p)),
    ]


def test_gather_and_scatter_subsequence_compose_to_attention_with_plan():
    """attention_with_plan == scatter_subsequence(causal SDPA(gather_subsequence)): the two
    halves context parallel runs around its ring attention (src/dist/)."""
    shape = SHAPES[0]
    L, p, k, m = shape[5:]
    q, kk, v = inputs(shape, seed=11, requires_grad=True)
    slots, inverse = ops.plan(q.detach(), kk.detach(), L, p, k, m)
    qt, kt, vt = ops.gather_subsequence(q, kk, v, slots, inverse, L, p)
    assert qt.shape == (shape[0], shape[2], slot_count(shape), shape[4])
    ot = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True)
    out = ops.scatter_subsequence(ot, slots, inverse, L, p)
    want = ops.attention_with_plan(q, kk, v, slots, inverse, L, p)
    assert torch.allclose(out, want, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(out)
    got_grads = torch.autograd.grad(out, (q, kk, v), g)
    want_grads = torch.autograd.grad(want, (q, kk, v), g)
    for a, b in zip(got_grads, want_grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op,args", [pytest.param(o, a, id=n) for n, o, a in opcheck_cases()])
def test_opcheck(op, args):
    result = torch.library.opcheck(op, args)
    assert all(v == "SUCCESS" for v in result.values()), result
