"""What the GPU diagnosis scripts (gpu-stage-micro.py, gpu-op-profile.py) share: the op sweep's
shape and their command line `SCRIPT LIBLIGHTHOUSE_OPS.so [N] [count]`."""
import sys

import torch

# levels L, pool p, topk k, tile_topk m, heads H (= Hkv), head dim D; bf16, B 1
SHAPE = (3, 4, 2048, 128, 8, 128)


def setup(script, default_n, count_name, default_count):
    """Checks the command line and the device, loads the op library; returns (N, count)."""
    if len(sys.argv) < 2:
        sys.exit(f"usage: {script} LIBLIGHTHOUSE_OPS.so [N] [{count_name}]")
    if not torch.cuda.is_available():
        sys.exit(f"{script}: needs a CUDA device")
    torch.ops.load_library(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else default_n
    count = int(sys.argv[3]) if len(sys.argv) > 3 else default_count
    return n, count
