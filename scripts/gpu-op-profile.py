"""Every kernel of one Lighthouse forward+backward at one N on a CUDA device, beside the same
cuDNN SDPA run alone on the S slots (diagnosis beside `lighthouse bench`: what the time outside
the inner SDPA is made of, kernel by kernel, in one run), then the idle gaps of the device inside
one call timed as the sweep times it (device idle before the call): where the GPU waits on the
host, named by the kernel that waited and the host op that launched it.

    python3 scripts/gpu-op-profile.py build-gpu/src/liblighthouse_ops.so [N] [iterations]

bf16, B 1, H = Hkv = 8, D 128, L 3, p 4, k 2048, m 128, causal selection (the op sweep's
shapes), fresh random inputs; device time per iteration from torch.profiler, after warm-up.
"""
import json
import os
import tempfile
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile, record_function

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


def trace_events(fn, iters):
    """Chrome-trace events of `iters` calls, each after a device sync and inside a range "call"."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            torch.cuda.synchronize()
            with record_function("call"):
                fn()
        torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            return json.load(f)["traceEvents"]


def short(name):
    name = name.replace("(anonymous namespace)", "").split("(")[0].replace("void ", "")
    return name.split("::")[-1].split("<")[0][:60]


def gaps(fn, iters, min_us=2.0):
    """Per call: span from the call's start on the host to its last kernel's end, the kernels'
    busy time, and the idle gaps above min_us, each named (kernel that waited, host op)."""
    ev = [e for e in trace_events(fn, iters) if e.get("ph") == "X"]
    device = sorted((e for e in ev if e.get("cat") in ("kernel", "gpu_memset", "gpu_memcpy")),
                    key=lambda e: e["ts"])
    launch = {e["args"]["correlation"]: e for e in ev
              if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    ops = [e for e in ev if e.get("cat") == "cpu_op"]
    calls = sorted((e for e in ev if e.get("cat") == "user_annotation" and e["name"] == "call"),
                   key=lambda e: e["ts"])

    def host_op(t, tid):
        inside = [o for o in ops if o["tid"] == tid and o["ts"] <= t <= o["ts"] + o["dur"]]
        if not inside:
            return "?"
        outer = min(inside, key=lambda o: o["ts"])["name"]
        inner = min(inside, key=lambda o: o["dur"])["name"]
        return outer if outer == inner else f"{outer} > {inner}"

    spans, busy, named = [], [], defaultdict(lambda: [0.0, 0])
    for i, c in enumerate(calls):
        stop = calls[i + 1]["ts"] if i + 1 < len(calls) else float("inf")
        mine = [k for k in device if c["ts"] <= k["ts"] < stop]
        if not mine:
            continue
        prev_end = c["ts"]
        for k in mine:
            idle = k["ts"] - prev_end
            if idle > min_us:
                l = launch.get(k.get("args", {}).get("correlation"))
                where = host_op(l["ts"], l["tid"]) if l else "?"
                key = (short(k["name"]), where)
                named[key][0] += idle / len(calls)
                named[key][1] += 1
            prev_end = max(prev_end, k["ts"] + k["dur"])
        spans.append(prev_end - c["ts"])
        busy.append(sum(k["dur"] for k in mine))
    return sorted(spans)[len(spans) // 2], sorted(busy)[len(busy) // 2], named


def show_gaps(title, fn, iters):
    span, busy, named = gaps(fn, iters)
    print(f"== {title}: call {span / 1000:.3f} ms from its start on the host to its last "
          f"kernel, kernels {busy / 1000:.3f} ms, device idle {(span - busy) / 1000:.3f} ms "
          f"(medians of {iters} calls)")
    for (kernel, where), (us, n) in sorted(named.items(), key=lambda kv: -kv[1][0])[:16]:
        print(f"{us:9.1f} us {n / iters:5.1f}x  before {kernel}  [{where[:90]}]")


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
    show_gaps("Lighthouse f+b, device idle before each call", lighthouse, iters)
    show_gaps(f"cuDNN SDPA alone on S = {S}, device idle before each call", sdpa_alone, iters)


if __name__ == "__main__":
    main()
