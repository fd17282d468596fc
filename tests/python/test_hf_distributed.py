"""Lighthouse on the distributed engines users already run (CPU, 2 Gloo ranks as processes).

- FSDP2 (`fully_shard` per decoder layer and the root) of an enabled Llama: each rank half of
  the batch; the loss and every gradient equal one process on the whole batch.
- DeepSpeed-Ulysses-style sequence parallelism: each rank holds half the sequence, an
  all-to-all gives it the whole sequence for half the heads (and half the KV heads), the
  "lighthouse" attention function runs unchanged, an all-to-all brings the sequence shards
  back: outputs and input gradients equal one process.
- Under torch's context-parallel SDPA dispatch (`context_parallel`, and the DTensor dispatcher
  mode) the ops refuse, naming the setting, instead of attending within each shard.
"""

import os
import pathlib

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import transformers

import lighthouse
import lighthouse.hf
from lighthouse import LighthouseConfig

CFG = LighthouseConfig(levels=3, pool=2, topk=4, tile_topk=2)
WORLD = 2


def tiny_llama():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=4, num_attention_heads=4,
                                   num_key_value_heads=2, tie_word_embeddings=False)
    return lighthouse.hf.enable(transformers.LlamaForCausalLM(cfg), CFG, dense_layers=(0, -1))


def batch():
    return torch.randint(0, 97, (4, 64), generator=torch.Generator().manual_seed(1))


def init(rank, tmp):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank,
                            world_size=WORLD)


def fsdp_rank(rank, tmp):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    init(rank, tmp)
    model = tiny_llama().train()
    mesh = init_device_mesh("cpu", (WORLD,))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    ids = batch().chunk(WORLD)[rank]
    loss = model(ids, labels=ids).loss
    loss.backward()
    losses = [torch.zeros(()) for _ in range(WORLD)]
    dist.all_gather(losses, loss.detach())
    grads = {n: p.grad.full_tensor() for n, p in model.named_parameters()}
    if rank == 0:
        torch.save({"losses": losses, "grads": grads}, f"{tmp}/fsdp.pt")
    dist.destroy_process_group()


def test_fsdp2_equals_one_process(tmp_path):
    mp.spawn(fsdp_rank, args=(str(tmp_path),), nprocs=WORLD, join=True)
    got = torch.load(tmp_path / "fsdp.pt")
    model = tiny_llama().train()
    ids = batch()
    halves = [model(h, labels=h).loss for h in ids.chunk(WORLD)]
    for g, want in zip(got["losses"], halves):
        assert torch.allclose(g, want.detach(), rtol=1e-5), (g, want)
    (sum(halves) / WORLD).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(got["grads"][name], p.grad, rtol=1e-4, atol=1e-6), name
    assert got["grads"]["model.layers.1.self_attn.q_proj.weight"].abs().sum() > 0


def qkv(requires_grad=False):
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, heads, 64, 8, generator=g) for heads in (4, 2, 2))  # [B, H, N, D]
    return [t.requires_grad_(requires_grad) for t in (q, k, v)]


def seq_to_heads(x):
    """[B, H, N/W, D] (this rank's sequence shard) -> [B, H/W, N, D] (whole sequence, this
    rank's heads): DeepSpeed Ulysses' first all-to-all."""
    from torch.distributed.nn.functional import all_to_all
    parts = all_to_all([torch.empty_like(c) for c in x.chunk(WORLD, 1)],
                       [c.contiguous() for c in x.chunk(WORLD, 1)])
    return torch.cat(parts, 2)


def heads_to_seq(x):
    """[B, N, H/W, D] -> [B, N/W, H, D]: the all-to-all back."""
    from torch.distributed.nn.functional import all_to_all
    parts = all_to_all([torch.empty_like(c) for c in x.chunk(WORLD, 1)],
                       [c.contiguous() for c in x.chunk(WORLD, 1)])
    return torch.cat(parts, 2)


def ulysses_rank(rank, tmp):
    from transformers import AttentionInterface
    init(rank, tmp)
    model = tiny_llama()
    attn = model.model.layers[1].self_attn  # a Lighthouse layer
    q, k, v = qkv()
    shard = [t.chunk(WORLD, 2)[rank].clone().requires_grad_() for t in (q, k, v)]
    heads = [seq_to_heads(t) for t in shard]  # [B, H/W, N, D]
    fn = AttentionInterface()["lighthouse"]
    out, _ = fn(attn, *heads, None, scaling=8 ** -0.5)  # [B, N, H/W, D]
    out = heads_to_seq(out)  # [B, N/W, H, D]
    out.square().sum().backward()
    torch.save({"out": out.detach(), "grads": [t.grad for t in shard]}, f"{tmp}/u{rank}.pt")
    dist.destroy_process_group()


def test_ulysses_head_split_equals_one_process(tmp_path):
    mp.spawn(ulysses_rank, args=(str(tmp_path),), nprocs=WORLD, join=True)
    model = tiny_llama()
    q, k, v = qkv(requires_grad=True)
    fn = transformers.AttentionInterface()["lighthouse"]
    want, _ = fn(model.model.layers[1].self_attn, q, k, v, None, scaling=8 ** -0.5)
    want.square().sum().backward()
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"u{rank}.pt")
        assert torch.allclose(got["out"], want.chunk(WORLD, 1)[rank], rtol=1e-5, atol=1e-6)
        for g, t in zip(got["grads"], (q, k, v)):
            assert torch.allclose(g, t.grad.chunk(WORLD, 2)[rank], rtol=1e-4, atol=1e-6)
    dense = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), is_causal=True)
    assert not torch.allclose(want, dense.transpose(1, 2), atol=1e-3)  # the op did run


def test_context_parallel_dispatch_is_refused(tmp_path):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.experimental import context_parallel
    from torch.distributed.tensor.experimental._context_parallel import _attention as cp
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0,
                            world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        model = tiny_llama()
        ids = batch()
        q, k, v = (t.transpose(1, 2) for t in qkv())
        lighthouse.attention(q, k, v, **CFG.op_kwargs())
        msg = (r"Lighthouse attention cannot run under torch.distributed.tensor.experimental."
               r"context_parallel \(accelerate's ParallelismConfig\(cp_size > 1\)")
        with context_parallel(mesh, buffers=[ids], buffer_seq_dims=[1]):
            with pytest.raises(RuntimeError, match="lighthouse.attention: " + msg):
                lighthouse.attention(q, k, v, **CFG.op_kwargs())
            with pytest.raises(RuntimeError, match="LlamaModel in Lighthouse mode: " + msg):
                model(ids)  # refused before any layer runs
        model(ids)
        plan = lighthouse.plan(q, k, levels=3, pool=2, topk=4, tile_topk=2)
        cp._enable_context_parallel_dispatcher()  # the DTensor-dispatcher mode
        try:
            with pytest.raises(RuntimeError, match="lighthouse.attention_with_plan: " + msg):
                lighthouse.attention_with_plan(q, k, v, plan, levels=3, pool=2)
        finally:
            cp._disable_context_parallel_dispatcher()
        lighthouse.attention(q, k, v, **CFG.op_kwargs())
    finally:
        dist.destroy_process_group()
