"""Pre-train a small Hugging Face Llama with Lighthouse attention, finish dense, ship a plain
transformers model.

    python examples/hf_pretrain.py                      # CPU: 240 steps, ~5 CPU-minutes
    python examples/hf_pretrain.py --device cuda --steps 1000 --seq-len 1024
    python examples/hf_pretrain.py --text my_corpus.txt

1. A LlamaForCausalLM built from a config (no download), byte-level vocabulary (256 bytes
   + bos/eos/pad), trained on a text file (default: this repository's README.md and
   docs/SPEC.md) in random windows of --seq-len bytes.
2. Stage 1: `LighthouseWrapper` routes the middle layers through Lighthouse attention.
3. Stage 2: `set_mode("dense")` for the last --dense-steps steps (same optimizer state).
4. `unwrap()` gives the original model object back; `save_pretrained`, reload with plain
   transformers, check the logits, generate a sample.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import torch
import transformers

import lighthouse
from lighthouse.hf import LighthouseWrapper

REPO = pathlib.Path(__file__).resolve().parents[1]
BOS, EOS, PAD, VOCAB = 256, 257, 258, 259


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--text", type=pathlib.Path, nargs="*",
                    default=[REPO / "README.md", REPO / "docs" / "SPEC.md"],
                    help="text files to train on (bytes)")
    ap.add_argument("--steps", type=int, default=240, help="total optimizer steps")
    ap.add_argument("--dense-steps", type=int, default=60, help="final steps in dense mode")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--pool", type=int, default=2)
    ap.add_argument("--topk", type=int, default=16)
    ap.add_argument("--tile-topk", type=int, default=8)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/hf_pretrain"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-tokens", type=int, default=120, help="bytes generated at the end")
    args = ap.parse_args()
    if not 0 <= args.dense_steps <= args.steps:
        ap.error(f"--dense-steps must be in [0, --steps = {args.steps}], got {args.dense_steps}")
    return args


def load_bytes(paths: list[pathlib.Path], seq_len: int) -> torch.Tensor:
    data = b"\n\n".join(p.read_bytes() for p in paths)
    if len(data) < seq_len + 2:
        raise SystemExit(f"--text: {len(data)} bytes is shorter than --seq-len {seq_len} + 2")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long()  # [T]


def batches(data: torch.Tensor, batch: int, seq_len: int, gen: torch.Generator):
    """Random windows [batch, seq_len] of the byte stream, each starting with bos."""
    while True:
        start = torch.randint(0, data.numel() - seq_len, (batch, 1), generator=gen)
        ids = data[start + torch.arange(seq_len - 1)]  # [batch, seq_len - 1]
        yield torch.cat([torch.full((batch, 1), BOS), ids], 1)  # [batch, seq_len]


def small_llama(seed: int) -> transformers.LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=128, intermediate_size=320, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        rope_theta=10000.0, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
        tie_word_embeddings=False)
    return transformers.LlamaForCausalLM(cfg)


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    cfg = lighthouse.LighthouseConfig(levels=args.levels, pool=args.pool, topk=args.topk,
                                      tile_topk=args.tile_topk)
    cfg.check_seq_len(args.seq_len, "--seq-len")
    data = load_bytes(args.text, args.seq_len)
    model = small_llama(args.seed).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    model = LighthouseWrapper(model, config=cfg, dense_layers=(0, -1))  # layers 1, 2: Lighthouse
    print(f"lighthouse {lighthouse.__version__}: {n_params / 1e6:.2f}M parameters, "
          f"{data.numel()} bytes of text, {cfg}, dense layers {model.dense_layers}")

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps,
                                                pct_start=0.1)
    gen = torch.Generator().manual_seed(args.seed)
    stream = batches(data, args.batch, args.seq_len, gen)
    model.train()
    t0, seen, smooth = time.perf_counter(), 0, None
    for step in range(1, args.steps + 1):
        if step == args.steps - args.dense_steps + 1:
            model.set_mode("dense")  # stage 2: same parameters, same optimizer state
            print(f"step {step}: switched to dense attention")
        ids = next(stream).to(device)
        loss = model(ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        seen += ids.numel()
        smooth = loss.item() if smooth is None else 0.9 * smooth + 0.1 * loss.item()
        if step % 25 == 0 or step == args.steps:
            dt = time.perf_counter() - t0
            print(f"step {step:4d}/{args.steps}  {model.mode:10s}  loss {smooth:.3f}  "
                  f"{seen / dt:,.0f} tok/s  {dt:.0f} s", flush=True)

    model = model.unwrap()  # the original LlamaForCausalLM, original attention implementation
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    reloaded = transformers.LlamaForCausalLM.from_pretrained(args.out).to(device).eval()
    probe = next(stream)[:1].to(device)
    with torch.no_grad():
        err = (model(probe).logits - reloaded(probe).logits).abs().max().item()
    print(f"saved to {args.out}; reloaded with plain transformers: max logits difference {err:.1e}")

    prompt = b"Lighthouse attention"
    ids = torch.tensor([[BOS, *prompt]], device=device)
    out = reloaded.generate(ids, max_new_tokens=args.sample_tokens, do_sample=True,
                            temperature=0.8, top_k=40, pad_token_id=PAD)
    text = bytes(t for t in out[0, 1:].tolist() if t < 256).decode("utf-8", errors="replace")
    print(f"sample: {text!r}")


if __name__ == "__main__":
    main()
