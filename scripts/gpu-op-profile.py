"""Every kernel of one Lighthouse forward+backward at one N on a CUDA device, beside the same
cuDNN SDPA run alone on the S slots (diagnosis beside `lighthouse bench`: what the time outside
the inner SDPA is made of, kernel by kernel, in one run).

    python3 scripts/gpu-op-profile.py build-gpu/src/liblighthouse_ops.so [N] [iterations]

bf16, B 1, H = Hkv = 8, D 128, L 3, p 4, k 2048, m 128, causal selection (the op sweep's
shapes), fresh random inputs; device time per iteration from torch.profiler, after warm-up.
"""
import torch
from torch.profiler import ProfilerActivity, profile

import gpu_diag


def kernels(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
    rows = {}
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        t, n = rows.get(e.name, (0.0, 0))
        rows[e.name] = (t + e.device_time_total, n + 1)
    return sorted(((t / iters, n / iters, name) for name, (t, n) in rows.items()), reverse=True)


def show(title, rows):
    total = sum(r[0] for r in rows)
    print(f"== {title}: {total / 1000:.3f} ms of kernels per iteration")
    for us, n, name in rows:
        print(f"{us:9.1f} us {n:5.1f}x  {name[:110]}")
    return total


def main():
    N, iters = gpu_diag.setup("gpu-op-profile.py", 65536, "iterations", 10)
    L, p, k, m, H, D = gpu_diag.SHAPE
    S = N // p ** (L - 1) + (L - 1) * p * k
    opts = dict(device="cuda", dtype=torch.bfloat16)
    lh = torch.ops.lighthouse
    q, kk, v = (torch.randn(1, N, H, D, **opts, requires_grad=True) for _ in range(3))
    do = torch.randn(1, N, H, D, **opts)

    def lighthouse():
        q.grad = kk.grad = v.grad = None  # no accumulation kernels in the table
        o = lh.attention(q, kk, v, L, p, k, m, "norm", "cudnn", 4, "causal")
        o.backward(do)

    qs, ks, vs = (torch.randn(1, S, H, D, **opts).transpose(1, 2).requires_grad_()
                  for _ in range(3))
    dos = torch.randn(1, S, H, D, **opts).transpose(1, 2)

    def sdpa_alone():
        qs.grad = ks.grad = vs.grad = None
        o = torch.ops.aten._scaled_dot_product_cudnn_attention(qs, ks, vs, None, True, 0.0, True)[0]
        o.backward(dos)

    print(f"N = {N}, S = {S}, {torch.cuda.get_device_name()}")
    a = show("Lighthouse f+b", kernels(lighthouse, iters))
    b = show(f"cuDNN SDPA alone on S = {S}", kernels(sdpa_alone, iters))
    print(f"kernels outside the inner SDPA: {(a - b) / 1000:.3f} ms per iteration")


if __name__ == "__main__":
    main()
