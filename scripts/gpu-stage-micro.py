"""Times the op's data-movement stages alone at one N on a CUDA device (diagnosis beside
`lighthouse bench`, whose stage table times them inside the op): the three single gathers and
the _gather_qkv op, the three single gather backward launches and the fused one, the scatter
and its backward, and a fill and a copy of one [N, H, D] tensor as the device's write and copy
ceilings, all in the same run.

    python3 scripts/gpu-stage-micro.py build-gpu/src/liblighthouse_ops.so [N] [repeats]

bf16, B 1, H = Hkv = 8, D 128, L 3, p 4, k 2048, m 128 (the op sweep's shapes); medians of CUDA
event timings after two warm-up calls, on random inputs and the plan selected from them.
"""
import torch

import gpu_diag


def median_ms(fn, reps):
    for _ in range(2):
        fn()
    ms = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ms.append(a.elapsed_time(b))
    ms.sort()
    return ms[len(ms) // 2]


def main():
    N, reps = gpu_diag.setup("gpu-stage-micro.py", 524288, "repeats", 10)
    L, p, k, m, H, D = gpu_diag.SHAPE
    opts = dict(device="cuda", dtype=torch.bfloat16)
    lh = torch.ops.lighthouse
    q, kk = torch.randn(1, N, H, D, **opts), torch.randn(1, N, H, D, **opts)
    _, sq = lh._pool_score(q, L, p, False, True)
    _, sk = lh._pool_score(kk, L, p, False, True)
    slots, inv = lh._select(sq, sk, L, p, k, m, "causal")
    S = slots.shape[2]
    v = torch.randn(1, N, H, D, **opts)
    pyr = [lh._pool_score(t, L, p, True, False)[0] for t in (q, kk, v)]
    g = [torch.randn(1, H, S, D, **opts) for _ in range(3)]
    do = torch.randn(1, N, H, D, **opts)
    x, y = torch.empty(1, N, H, D, **opts), torch.empty(1, N, H, D, **opts)
    rows = {
        "gather x3": lambda: [lh._gather(t, py, slots, inv, L, p) for t, py in zip((q, kk, v), pyr)],
        "gather_qkv": lambda: lh._gather_qkv(q, kk, v, *pyr, slots, inv, L, p),
        "gather_backward x3": lambda: [lh._gather_backward(t, inv, L, p, H) for t in g],
        "gather_backward_qkv": lambda: lh._gather_backward_qkv(g[0], g[1], g[2], inv, L, p, H),
        "scatter": lambda: lh._scatter(g[0], slots, inv, L, p),
        "scatter_backward": lambda: lh._scatter_backward(do, slots, L, p),
        "fill one [N, H, D]": lambda: x.fill_(1.0),
        "copy one [N, H, D]": lambda: y.copy_(x),
    }
    print(f"N = {N}, S = {S}, {torch.cuda.get_device_name()}")
    for name, fn in rows.items():
        print(f"{name:22s} {median_ms(fn, reps):8.3f} ms")


if __name__ == "__main__":
    main()
