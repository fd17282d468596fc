"""Refuses Lighthouse under torch's context-parallel SDPA dispatch.

`torch.distributed.tensor.experimental.context_parallel` (what accelerate's
`ParallelismConfig(cp_size=...)` and torchtitan's context parallelism enter) shards every
sequence across ranks and patches `torch.nn.functional.scaled_dot_product_attention` (or the
DTensor dispatcher) so that SDPA sees the whole sequence through ring exchanges. The Lighthouse
ops run inside C++ and never pass through that patch: each rank would compute Lighthouse on its
own shard only, silently. This module detects the patch so the ops can refuse instead.
"""

from __future__ import annotations

import sys

import torch

_CP_MODULE = "torch.distributed.tensor.experimental._context_parallel._attention"

SETTING = ("torch.distributed.tensor.experimental.context_parallel (accelerate's "
           "ParallelismConfig(cp_size > 1), torchtitan's context_parallel_degree > 1)")


def context_parallel_active() -> bool:
    """Whether torch's context-parallel SDPA dispatch is on in this process (torch.compile
    traces it: a compiled graph is guarded on the state it saw)."""
    cp = sys.modules.get(_CP_MODULE)
    if cp is None:  # never imported: cannot be on
        return False
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if sdpa in getattr(cp, "_replaced_functions", {}):  # the monkey-patch mode
        return True
    from torch.distributed.tensor import DTensor  # the DTensor-dispatcher mode
    handlers = DTensor._op_dispatcher._custom_op_handlers
    return any(handlers.get(op) is fn for op, fn in getattr(cp, "custom_ops", {}).items())


def check_not_context_parallel(op: str) -> None:
    """Raises RuntimeError naming the setting when context-parallel SDPA dispatch is on."""
    if context_parallel_active():
        raise RuntimeError(
            f"{op}: Lighthouse attention cannot run under {SETTING}: the sequence is sharded "
            "across ranks and that dispatch only reaches scaled_dot_product_attention, so each "
            "rank would select and attend within its own shard. Turn context parallelism off "
            "(cp_size = 1) and split heads instead (DeepSpeed Ulysses: each rank holds the whole "
            "sequence for a subset of heads; docs/python.md), or use the project's own context "
            "parallelism (lighthouse train with dist.cp > 1; docs/training.md)")
