"""The two-stage Lighthouse recipe in the Hugging Face Trainer; every checkpoint is a plain
transformers model.

    python examples/hf_trainer.py                         # CPU, a few seconds
    python examples/hf_trainer.py --max-steps 2000 --dense-from-step 1600 --seq-len 1024 ...
    python examples/hf_trainer.py --resume                # continue from the last checkpoint

1. A small LlamaForCausalLM built from a config (no download), byte-level vocabulary, trained
   on a text file (default: this repository's README.md and docs/SPEC.md) in random windows.
2. `lighthouse.hf.enable(model, ...)`: Lighthouse in place; the model stays a
   LlamaForCausalLM, so the Trainer sees its forward signature and saves plain checkpoints.
3. `LighthouseCallback(dense_from_step=...)`: the steps after `--dense-from-step` run dense
   (stage 2), also after `--resume` (the mode follows the restored step count).
4. The last checkpoint is loaded with plain transformers (`AutoModelForCausalLM`) and its
   logits compared with the trained model's.
"""

from __future__ import annotations

import argparse
import pathlib

import torch
import transformers

import lighthouse
import lighthouse.hf
from lighthouse.hf import LighthouseCallback

REPO = pathlib.Path(__file__).resolve().parents[1]
BOS, EOS, PAD, VOCAB = 256, 257, 258, 259


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", type=pathlib.Path, nargs="*",
                    default=[REPO / "README.md", REPO / "docs" / "SPEC.md"],
                    help="text files to train on (bytes)")
    ap.add_argument("--max-steps", type=int, default=12, help="total optimizer steps")
    ap.add_argument("--dense-from-step", type=int, default=8,
                    help="optimizer steps in Lighthouse mode; the rest run dense")
    ap.add_argument("--save-steps", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--pool-ratios", type=float, nargs="+", default=[0.5, 0.25],
                    help="token fraction of each pooled level (levels = len + 1)")
    ap.add_argument("--select-topk", type=int, default=16, help="entries kept per coarse level")
    ap.add_argument("--tile-topk", type=int, default=8)
    ap.add_argument("--output-dir", type=pathlib.Path, default=pathlib.Path("runs/hf_trainer"))
    ap.add_argument("--resume", action="store_true", help="resume from the last checkpoint")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not 0 <= args.dense_from_step <= args.max_steps:
        ap.error(f"--dense-from-step must be in [0, --max-steps = {args.max_steps}], got "
                 f"{args.dense_from_step}")
    return args


class ByteWindows(torch.utils.data.Dataset):
    """Random windows of a byte stream, each starting with bos: {input_ids, labels}."""

    def __init__(self, paths: list[pathlib.Path], seq_len: int, count: int, seed: int) -> None:
        data = b"\n\n".join(p.read_bytes() for p in paths)
        if len(data) < seq_len + 2:
            raise SystemExit(f"--text: {len(data)} bytes is shorter than --seq-len {seq_len} + 2")
        self.data = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()  # [T]
        g = torch.Generator().manual_seed(seed)
        self.starts = torch.randint(0, len(data) - seq_len, (count,), generator=g).tolist()
        self.seq_len = seq_len

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.starts[i]
        ids = torch.cat([torch.tensor([BOS]), self.data[s:s + self.seq_len - 1]])  # [seq_len]
        return {"input_ids": ids, "labels": ids.clone()}


class PrintSteps(transformers.TrainerCallback):
    """One line per logged step: loss and the attention mode the step ran in."""

    def __init__(self) -> None:
        self.mode = "?"

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.mode = lighthouse.hf.get_mode(model)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            print(f"step {state.global_step:3d}/{state.max_steps}  {self.mode:10s}  "
                  f"loss {logs['loss']:.3f}", flush=True)


def small_llama(seed: int) -> transformers.LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=160, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, tie_word_embeddings=False)
    return transformers.LlamaForCausalLM(cfg)


def main() -> None:
    args = parse_args()
    cfg = lighthouse.LighthouseConfig.from_pool_ratios(
        args.pool_ratios, args.select_topk, tile_topk=args.tile_topk)
    model = small_llama(args.seed)
    lighthouse.hf.enable(model, cfg, dense_layers=(0, -1))  # layers 1, 2: Lighthouse
    print(f"lighthouse {lighthouse.__version__}: {cfg}, dense layers "
          f"{lighthouse.hf.inplace.dense_layers(model)}")
    train = ByteWindows(args.text, args.seq_len, args.max_steps * args.batch, args.seed)
    targs = transformers.TrainingArguments(
        output_dir=str(args.output_dir), max_steps=args.max_steps,
        per_device_train_batch_size=args.batch, learning_rate=args.lr, weight_decay=0.1,
        lr_scheduler_type="cosine", warmup_steps=max(1, args.max_steps // 10), logging_steps=1,
        save_steps=args.save_steps, report_to=[], use_cpu=not torch.cuda.is_available(),
        seed=args.seed, disable_tqdm=True, dataloader_num_workers=0)
    trainer = transformers.Trainer(
        model=model, args=targs, train_dataset=train,
        callbacks=[LighthouseCallback(dense_from_step=args.dense_from_step), PrintSteps()])
    trainer.train(resume_from_checkpoint=True if args.resume else None)

    last = max(args.output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    plain = transformers.AutoModelForCausalLM.from_pretrained(last).eval()
    lighthouse.hf.disable(model)  # the trained model as plain transformers would run it
    probe = train[0]["input_ids"][None].to(model.device)  # [1, seq_len]
    with torch.no_grad():
        err = (model.eval()(probe).logits.cpu() - plain(probe.cpu()).logits).abs().max().item()
    print(f"{last}: loaded with plain transformers ({type(plain).__name__}); max logits "
          f"difference to the trained model {err:.1e}")


if __name__ == "__main__":
    main()
