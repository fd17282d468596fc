"""Needle-in-a-haystack prompts in a run's own tokenizer (docs/eval.md, "NIAH prompt files").

    python -m lighthouse.eval.niah_prompts --tokenizer DIR_OR_FILE --out FILE \\
        --contexts 1K,2K [--depths 0,15,30,50,70,85,100] [--trials 10] [--seed 0] [--eos TOKEN]

The built-in NIAH of `lighthouse eval` writes its prompts as byte tokens; a model trained on
another tokenizer's shards needs them in its own ids, which only Python's tokenizers can make.
Each prompt follows the built-in template (SPEC.md §9, docs/eval.md):

    <filler>\\nfact: the code of the pass key is D.\\n<filler>\\nrecall: the code of the pass key is D

with random lowercase words as filler (no digits) and D a random digit. The template's own
special prefix (a Llama 3 tokenizer's <|begin_of_text|>), the filler, the needle, and the query
with its answer are encoded separately and concatenated, so every prompt is exactly `context`
ids; the needle starts at the filler word boundary nearest depth x (filler tokens). The query
and the answer are encoded together, so the answer span is what the tokenizer makes of
"... is D" (e.g. one token " 7"); the model is right when greedy decoding after the prompt
reproduces the span.

The file is JSON Lines: a header, then one object per prompt (src/eval/niah_prompts.h).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

from ..data.tokenize import Progress, load_tokenizer, resolve_bos, resolve_eos, special_prefix

FORMAT = "lighthouse-niah-prompts"
NEEDLE = "\nfact: the code of the pass key is {}.\n"
QUERY = "\nrecall: the code of the pass key is "
DEPTHS = (0, 15, 30, 50, 70, 85, 100)
MIN_FILLER = 16


def parse_sizes(text: str, flag: str) -> list[int]:
    """"1K,2048" -> [1024, 2048]; K / M suffixes multiply by 1024 / 1048576."""
    out = []
    for item in text.split(","):
        item = item.strip()
        mult = {"k": 1024, "m": 1 << 20}.get(item[-1:].lower(), 1)
        body = item[:-1] if mult > 1 else item
        if not body.isdigit():
            raise SystemExit(f"{flag}: expected non-negative integers separated by commas "
                             f"(K/M suffixes allowed), got {text!r}")
        out.append(int(body) * mult)
    return out


def trial_rng(seed: int, context: int, depth: int, trial: int) -> random.Random:
    return random.Random(f"{seed}/{context}/{depth}/{trial}")


def filler_text(rng: random.Random, chars: int) -> str:
    words = []
    n = 0
    while n < chars:
        w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        words.append(w)
        n += len(w) + 1
    return " ".join(words) + " "


def word_starts(text: str, offsets) -> list[int]:
    """Token indices that open a filler word (the token holds the word's first letter, alone
    or after its space)."""
    out = []
    for i, (a, b) in enumerate(offsets):
        if a >= b:
            continue
        first = a + 1 if text[a] == " " else a
        if first < b and (first == 0 or text[first - 1] == " "):
            out.append(i)
    return out


def make_prompt(tok, prefix: list[int], context: int, depth: int, rng: random.Random) -> dict:
    passkey = rng.randrange(10)
    needle = tok.encode(NEEDLE.format(passkey), add_special_tokens=False).ids
    qa_text = QUERY + str(passkey)
    qa = tok.encode(qa_text, add_special_tokens=False)
    answer_char = len(QUERY)
    first = next(i for i, (_, b) in enumerate(qa.offsets) if b > answer_char)
    answer = qa.ids[first:]
    fixed = len(prefix) + len(needle) + len(qa.ids)
    F = context - fixed
    if F < MIN_FILLER:
        raise SystemExit(f"--contexts: {context} is too short for the prompt (at least "
                         f"{fixed + MIN_FILLER} tokens with this tokenizer)")
    chars = 3 * F + 64
    while True:
        text = filler_text(rng, chars)
        enc = tok.encode(text, add_special_tokens=False)
        if len(enc.ids) >= F:
            break
        chars *= 2
    filler = enc.ids[:F]
    bounds = [i for i in word_starts(text, enc.offsets[:F])] + [F]
    target = depth / 100.0 * F
    at = min(bounds, key=lambda b: (abs(b - target), b))
    tokens = prefix + filler[:at] + needle + filler[at:] + qa.ids
    assert len(tokens) == context
    return {"context": context, "depth": depth, "answer": str(passkey),
            "needle_pos": len(prefix) + at, "answer_start": context - len(answer),
            "tokens": tokens}


def write_prompts(tokenizer: str, out: str, contexts: list[int], depths=DEPTHS, trials: int = 10,
                  seed: int = 0, eos: str | None = None, progress: bool = True) -> dict:
    """Writes the prompt file; returns its header."""
    if trials < 1:
        raise SystemExit(f"--trials: must be >= 1, got {trials}")
    if not contexts:
        raise SystemExit("--contexts: expected at least one context")
    for d in depths:
        if not 0 <= d <= 100:
            raise SystemExit(f"--depths: must be in [0, 100] (percent), got {d}")
    out_path = Path(out)
    if not out_path.parent.is_dir():
        raise SystemExit(f"--out: the directory {out_path.parent} does not exist")
    tok = load_tokenizer(tokenizer)
    prefix = special_prefix(tok)
    total = len(contexts) * len(depths) * trials
    header = {"format": FORMAT, "version": 1, "tokenizer": str(Path(tokenizer).resolve()),
              "vocab_size": tok.get_vocab_size(with_added_tokens=True),
              "eos_id": resolve_eos(tok, eos, tokenizer), "bos_id": resolve_bos(tok, tokenizer),
              "template": "<filler>" + NEEDLE.format("<D>") + "<filler>" + QUERY + "<D>",
              "contexts": contexts, "depths": list(depths), "trials": trials, "seed": seed,
              "prompts": total}
    bar = Progress(total, progress, label="niah prompts", unit="prompts")
    tmp = out_path.with_name(out_path.name + ".tmp")
    done = 0
    with open(tmp, "w") as f:
        f.write(json.dumps(header) + "\n")
        for c in contexts:
            for d in depths:
                for t in range(trials):
                    p = make_prompt(tok, prefix, c, d, trial_rng(seed, c, d, t))
                    p["trial"] = t
                    f.write(json.dumps(p, separators=(",", ":")) + "\n")
                    done += 1
                    bar.update(done)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out_path)
    bar.update(done, final=True)
    return header


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lighthouse.eval.niah_prompts",
                                 description="Write NIAH prompts in a run's tokenizer.")
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json or a tokenizer directory")
    ap.add_argument("--out", required=True, help="prompt file to write (JSON Lines)")
    ap.add_argument("--contexts", required=True, help="prompt lengths in tokens, e.g. 4K,8K")
    ap.add_argument("--depths", default=",".join(map(str, DEPTHS)),
                    help="needle depths in percent")
    ap.add_argument("--trials", type=int, default=10, help="prompts per (context, depth)")
    ap.add_argument("--seed", type=int, default=0, help="seed of fillers and passkeys")
    ap.add_argument("--eos", default=None, help="end-of-document token or id (as for tokenize)")
    ap.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    a = ap.parse_args(argv)
    if a.seed < 0:
        raise SystemExit(f"--seed: must be >= 0, got {a.seed}")
    try:
        h = write_prompts(a.tokenizer, a.out, parse_sizes(a.contexts, "--contexts"),
                          parse_sizes(a.depths, "--depths"), a.trials, a.seed, a.eos,
                          not a.no_progress)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}")
    print(f"wrote {h['prompts']} prompts (contexts {h['contexts']}, depths {h['depths']}, "
          f"{h['trials']} trials; vocab_size {h['vocab_size']}) to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
