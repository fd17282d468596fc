"""Text to token shards through a Hugging Face fast tokenizer (docs/data.md).

    python -m lighthouse.data.tokenize --tokenizer DIR_OR_FILE --input PATH... --out DIR \\
        [--text-key text] [--eos TOKEN_OR_ID] [--workers N] [--shard-tokens N]

--tokenizer is a tokenizer.json file or a directory (its tokenizer.json, else what
transformers' AutoTokenizer loads from it). --input takes files and directories: *.txt / *.text
/ *.md are one document each, *.jsonl / *.json hold one document per line in --text-key, each
optionally gzip-compressed; directories are walked in sorted path order, hidden entries
skipped (the same rules as `lighthouse train`'s data.source). Every document is encoded with
the tokenizer's own special tokens (a Llama 3 tokenizer prepends <|begin_of_text|>) and
followed by the EOS id. The manifest records the EOS id, the BOS id (when the tokenizer has one)
and the tokenizer's absolute path, which `lighthouse export` copies beside the model. Workers encode batches of documents in order, so the output does not
depend on --workers; input is streamed, so memory stays flat whatever the corpus size.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

from .shards import ShardWriter

_TEXT = (".txt", ".text", ".md")
_JSONL = (".jsonl", ".json")


def _kind(path: Path) -> str | None:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith(_JSONL):
        return "jsonl"
    if name.endswith(_TEXT):
        return "text"
    return None


def list_files(inputs: list[str]) -> list[Path]:
    """The document files of every input, each input's files in sorted path order."""
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            found = []
            for root, dirs, files in os.walk(p):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found += [Path(root) / f for f in files
                          if not f.startswith(".") and _kind(Path(f))]
            if not found:
                raise SystemExit(f"--input: no .txt/.text/.md/.jsonl/.json(.gz) files under {p}")
            out += sorted(found, key=str)
        else:
            raise SystemExit(f"--input: no such file or directory: {p}")
    return out


def _open(path: Path):
    if path.name.endswith(".gz"):
        with open(path, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                raise SystemExit(f"--input: {path} is not gzip data (the name ends in .gz, the "
                                 "file does not start with the gzip magic bytes 1f 8b)")
        return gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape")
    return open(path, "rt", encoding="utf-8", errors="surrogateescape")


def documents(files: list[Path], text_key: str, on_file_done=None):
    """Yields every document's text, file by file; JSON Lines one line at a time."""
    for path in files:
        with _open(path) as f:
            if _kind(path) == "jsonl":
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise SystemExit(f"--input: {path}:{lineno}: invalid JSON ({e})")
                    if not isinstance(obj, dict) or not isinstance(obj.get(text_key), str):
                        raise SystemExit(f"--text-key: {path}:{lineno}: no string field "
                                         f"\"{text_key}\"")
                    yield obj[text_key]
            else:
                yield f.read()
        if on_file_done:
            on_file_done(path)


def load_tokenizer(spec: str):
    """A `tokenizers.Tokenizer` from a tokenizer.json file or a directory."""
    from tokenizers import Tokenizer
    p = Path(spec)
    if p.is_file():
        return Tokenizer.from_file(str(p))
    if (p / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(p / "tokenizer.json"))
    if p.is_dir():
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(p), use_fast=True)
        if not getattr(tok, "is_fast", False):
            raise SystemExit(f"--tokenizer: {p} has no fast tokenizer (tokenizer.json)")
        return tok.backend_tokenizer
    raise SystemExit(f"--tokenizer: no such file or directory: {p}")


def resolve_eos(tokenizer, spec: str | None, tokenizer_path: str) -> int:
    """--eos as an id or a token; else the directory's configured EOS, else a usual name."""
    if spec is not None:
        if spec.isdigit():
            return int(spec)
        i = tokenizer.token_to_id(spec)
        if i is None:
            raise SystemExit(f"--eos: the tokenizer has no token {spec!r}")
        return i
    cfg = Path(tokenizer_path) / "tokenizer_config.json"
    if cfg.is_file():
        eos = json.loads(cfg.read_text()).get("eos_token")
        if isinstance(eos, dict):
            eos = eos.get("content")
        if isinstance(eos, str) and tokenizer.token_to_id(eos) is not None:
            return tokenizer.token_to_id(eos)
    for name in ("<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "[EOS]"):
        if tokenizer.token_to_id(name) is not None:
            return tokenizer.token_to_id(name)
    raise SystemExit("--eos: the tokenizer names no end-of-document token; give one "
                     "(--eos '</s>' or --eos ID)")


def special_prefix(tokenizer) -> list[int]:
    """The ids the tokenizer's own template puts before a document's text (a Llama 3
    tokenizer: [<|begin_of_text|>]; none for a bare BPE)."""
    plain = tokenizer.encode("a", add_special_tokens=False).ids
    full = tokenizer.encode("a", add_special_tokens=True).ids
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start]
    return []


def resolve_bos(tokenizer, tokenizer_path: str) -> int | None:
    """The BOS id: the directory's tokenizer_config.json `bos_token`, else the last id the
    template puts before a document, else None (the tokenizer has no BOS)."""
    cfg = Path(tokenizer_path) / "tokenizer_config.json"
    if cfg.is_file():
        bos = json.loads(cfg.read_text()).get("bos_token")
        if isinstance(bos, dict):
            bos = bos.get("content")
        if isinstance(bos, str) and tokenizer.token_to_id(bos) is not None:
            return tokenizer.token_to_id(bos)
    prefix = special_prefix(tokenizer)
    return prefix[-1] if prefix else None


_worker_tokenizer = None


def _init_worker(spec: str) -> None:
    global _worker_tokenizer
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker_tokenizer = load_tokenizer(spec)


def _encode(batch: list[str]) -> list[list[int]]:
    return [e.ids for e in _worker_tokenizer.encode_batch(batch, add_special_tokens=True)]


def _bounded(pool, batches, window: int):
    """pool's _encode of every batch, in order, with at most `window` batches in flight."""
    pending = []
    for batch in batches:
        pending.append(pool.apply_async(_encode, (batch,)))
        if len(pending) >= window:
            yield pending.pop(0).get()
    for r in pending:
        yield r.get()


class Progress:
    """The progress line of src/cli/progress.h: redrawn on a terminal, plain lines every 10 s
    (and at the end) without control characters elsewhere. `unit` counts `done`; `tokens`,
    when given, is shown beside it."""

    def __init__(self, total: int, enabled: bool, stream=sys.stderr, label: str = "tokenize",
                 unit: str = "B"):
        self.total, self.enabled, self.stream = max(total, 1), enabled, stream
        self.label, self.unit = label, unit
        self.tty = stream.isatty()
        self.start = self.last = time.monotonic()

    @staticmethod
    def _count(x: float) -> str:
        for suffix in ("", "k", "M", "G"):
            if x < 1000:
                return f"{x:.3g}{suffix}"
            x /= 1000
        return f"{x:.3g}T"

    def update(self, done: int, tokens: int | None = None, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self.last < (0.1 if self.tty else 10.0):
            return
        self.last = now
        el = now - self.start
        rate = done / el if el > 0 else 0.0
        eta = "" if final or rate <= 0 else f"  ETA {(self.total - done) / rate:.0f}s"
        extra = "" if tokens is None else f"  {self._count(tokens)} tokens"
        text = (f"[{self.label}] {self._count(done)}/{self._count(self.total)} {self.unit}  "
                f"{self._count(rate)} {self.unit}/s{extra}  elapsed {el:.0f}s{eta}")
        if self.tty:
            self.stream.write("\r" + text + "\033[K" + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def tokenize(tokenizer: str, inputs: list[str], out: str, text_key: str = "text",
             eos: str | None = None, workers: int = 1, shard_tokens: int = 1 << 28,
             batch_docs: int = 256, progress: bool = True) -> dict:
    """Writes the shards of every document of `inputs`; returns the manifest."""
    if workers < 1:
        raise SystemExit(f"--workers: must be positive, got {workers}")
    tok = load_tokenizer(tokenizer)
    eos_id = resolve_eos(tok, eos, tokenizer)
    bos_id = resolve_bos(tok, tokenizer)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    files = list_files(inputs)
    sizes = {p: p.stat().st_size for p in files}
    bar = Progress(sum(sizes.values()), progress)
    done_bytes = [0]

    def file_done(p: Path) -> None:
        done_bytes[0] += sizes[p]

    # The tokenizer's absolute path: `lighthouse export` copies its files beside the model.
    writer = ShardWriter(out, vocab, eos_id, tokenizer=str(Path(tokenizer).resolve()),
                         shard_tokens=shard_tokens, bos_id=bos_id)
    docs = documents(files, text_key, file_done)
    batches = iter(lambda: list(itertools.islice(docs, batch_docs)), [])
    if workers == 1:
        _init_worker(tokenizer)
        encoded, pool = map(_encode, batches), None
    else:  # at most 2 x workers batches in flight, results in input order: memory stays flat
        pool = mp.get_context("fork").Pool(workers, _init_worker, (tokenizer,))
        encoded = _bounded(pool, batches, 2 * workers)
    try:
        for ids_list in encoded:
            for ids in ids_list:
                writer.append(ids)
                writer.end_document()
            bar.update(done_bytes[0], writer.tokens)
    finally:
        if pool is not None:
            pool.terminate()
    manifest = writer.finish()
    bar.update(done_bytes[0], writer.tokens, final=True)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lighthouse.data.tokenize",
                                 description="Tokenize text into lighthouse token shards.")
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json or a tokenizer directory")
    ap.add_argument("--input", required=True, nargs="+", help="files and directories")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--text-key", default="text", help="JSON Lines field with the text")
    ap.add_argument("--eos", default=None, help="end-of-document token or id")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    ap.add_argument("--shard-tokens", type=int, default=1 << 28, help="tokens per shard")
    ap.add_argument("--batch-docs", type=int, default=256, help="documents per worker task")
    ap.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    a = ap.parse_args(argv)
    if Path(a.out).exists() and not Path(a.out).is_dir():
        raise SystemExit(f"--out: {a.out} is an existing file, expected a directory")
    try:
        m = tokenize(a.tokenizer, a.input, a.out, a.text_key, a.eos, a.workers, a.shard_tokens,
                     a.batch_docs, not a.no_progress)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}")
    print(f"wrote {len(m['shards'])} shards, {m['documents']} documents, {m['tokens']} tokens "
          f"(vocab_size {m['vocab_size']}, eos_id {m['eos_id']}, bos_id {m['bos_id']}) to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
