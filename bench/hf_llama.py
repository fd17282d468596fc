"""Training-step time of a paper-width Hugging Face Llama with and without Lighthouse.

    python bench/hf_llama.py                               # CUDA: 32K, 64K, 98K; eager, compiled
    python bench/hf_llama.py --seq-lens 98304 --modes compiled
    python bench/hf_llama.py --device cpu --tiny           # a tiny model, seconds (the CPU test)

One process builds, for every sequence length and mode (eager / torch.compile), a fresh
`LlamaForCausalLM` (hidden 1024, 16 layers, 8 heads x 128, SwiGLU 1536, bf16 weights, gradient
checkpointing, fused AdamW) twice: stock SDPA ("dense") and `lighthouse.hf.enable` (layers
0, 1, -2, -1 dense; L=3, p=4, k=1536, m=128 as configs/paper-530m-98k.toml). Each step is
forward + backward + optimizer step on one sequence of random tokens; the loss is
transformers' own (`--loss hf`, full logits) or `lighthouse.hf.chunked_causal_lm_loss`
(`--loss chunked`, default: no full fp32 logits). Before timing, every variant's first step must
give a finite loss; the Lighthouse variant must differ from dense (the op ran).
Printed: median step time, tokens/s, peak memory, and dense/Lighthouse ratios measured in the
same run; `--json FILE` writes the same rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time

import torch
import transformers

import lighthouse
import lighthouse.hf
from lighthouse.hf.loss import chunked_causal_lm_loss


@dataclasses.dataclass
class Row:
    seq_len: int
    mode: str
    attention: str
    step_s: float
    tokens_per_s: float
    peak_gib: float
    first_loss: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda or cpu")
    ap.add_argument("--tiny", action="store_true",
                    help="hidden 64, 6 layers, 4 heads x 16, N = 256 and 512, fp32 (for CPU)")
    ap.add_argument("--seq-lens", type=int, nargs="+", help="default 32768 65536 98304")
    ap.add_argument("--modes", nargs="+", default=["eager", "compiled"],
                    choices=["eager", "compiled"])
    ap.add_argument("--backend", default="inductor", help="torch.compile backend")
    ap.add_argument("--loss", default="chunked", choices=["chunked", "hf"])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation included)")
    ap.add_argument("--layers", type=int, help="default 16 (6 with --tiny)")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    if args.seq_lens is None:
        args.seq_lens = [256, 512] if args.tiny else [32768, 65536, 98304]
    if args.steps < 1 or args.warmup < 1:
        ap.error("--steps and --warmup must be >= 1 (the first warm-up step is verified)")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device (use --device cpu --tiny)")
    return args


def build(args: argparse.Namespace, lighthouse_on: bool) -> transformers.LlamaForCausalLM:
    torch.manual_seed(0)
    if args.tiny:
        cfg = transformers.LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128,
                                       num_hidden_layers=args.layers or 6, num_attention_heads=4,
                                       num_key_value_heads=4, max_position_embeddings=4096)
        dtype, light = torch.float32, lighthouse.LighthouseConfig(levels=3, pool=4, topk=16,
                                                                 tile_topk=8)
    else:
        cfg = transformers.LlamaConfig(vocab_size=32000, hidden_size=1024,
                                       intermediate_size=1536,
                                       num_hidden_layers=args.layers or 16, num_attention_heads=8,
                                       num_key_value_heads=8, head_dim=128,
                                       max_position_embeddings=max(args.seq_lens),
                                       rope_theta=10000.0, tie_word_embeddings=False)
        dtype, light = torch.bfloat16, lighthouse.LighthouseConfig(levels=3, pool=4, topk=1536,
                                                                  tile_topk=128)
    cfg.use_cache = False
    model = transformers.LlamaForCausalLM(cfg).to(device=args.device, dtype=dtype)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    if lighthouse_on:
        lighthouse.hf.enable(model, light, dense_layers=(0, 1, -2, -1))
    return model


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_variant(args: argparse.Namespace, n: int, mode: str, lighthouse_on: bool,
                ids: torch.Tensor) -> Row:
    model = build(args, lighthouse_on)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    if args.loss == "chunked":
        def loss_fn(x: torch.Tensor) -> torch.Tensor:
            return chunked_causal_lm_loss(model, x, x)
    else:
        def loss_fn(x: torch.Tensor) -> torch.Tensor:
            return model(x, labels=x).loss
    if mode == "compiled":
        torch._dynamo.reset()
        loss_fn = torch.compile(loss_fn, backend=args.backend)

    def step() -> float:
        loss = loss_fn(ids)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    if args.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    first = step()
    if not math.isfinite(first):
        raise SystemExit(f"N = {n} {mode} {'lighthouse' if lighthouse_on else 'dense'}: "
                         f"first loss {first} is not finite")
    for _ in range(args.warmup - 1):
        step()
    times = []
    for _ in range(args.steps):
        sync(args.device)
        t0 = time.perf_counter()
        step()
        sync(args.device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else float("nan")
    med = statistics.median(times)
    del model, opt
    return Row(n, mode, "lighthouse" if lighthouse_on else "dense", med, n / med, peak, first)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"lighthouse {lighthouse.__version__}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}, device "
          f"{torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}, loss {args.loss}",
          flush=True)
    rows = []
    print(f"{'N':>7} {'mode':>8} {'attention':>10} {'step s':>9} {'tokens/s':>10} "
          f"{'peak GiB':>8}  {'speedup':>7}", flush=True)
    for n in args.seq_lens:
        vocab = 256 if args.tiny else 32000
        ids = torch.randint(0, vocab, (1, n), generator=torch.Generator().manual_seed(n))
        ids = ids.to(args.device)
        for mode in args.modes:
            dense = run_variant(args, n, mode, False, ids)
            light = run_variant(args, n, mode, True, ids)
            if light.first_loss == dense.first_loss:
                raise SystemExit(f"N = {n} {mode}: Lighthouse and dense give the same first loss "
                                 f"{dense.first_loss}: the op did not run")
            for r, ratio in ((dense, ""), (light, f"{dense.step_s / light.step_s:.2f}x")):
                print(f"{r.seq_len:7d} {r.mode:>8} {r.attention:>10} {r.step_s:9.4f} "
                      f"{r.tokens_per_s:10.0f} {r.peak_gib:8.2f}  {ratio:>7}", flush=True)
            rows += [dense, light]
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dataclasses.asdict(r) for r in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
