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
import codecs
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


# A text file is read in pieces of about this many bytes (cut after a newline when the piece
# holds one); a JSON Lines line (one document, parsed whole) may not be longer than
# --max-document-bytes.
PIECE_BYTES = 1 << 20
MAX_DOCUMENT_BYTES = 1 << 26


def _open(path: Path):
    """The file's bytes, decompressed when it is .gz (streamed: nothing is read whole)."""
    if path.name.endswith(".gz"):
        with open(path, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                raise SystemExit(f"--input: {path} is not gzip data (the name ends in .gz, the "
                                 "file does not start with the gzip magic bytes 1f 8b)")
        return gzip.open(path, "rb")
    return open(path, "rb")


def _utf8(data: bytes, path: Path, line: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SystemExit(f"--input: {path}:{line}: invalid UTF-8 (byte {e.start} of the line: "
                         f"{data[e.start:e.start + 4]!r}); the tokenizer takes UTF-8 text only")


def _pieces(f, path: Path):
    """A text file's content as strings of about PIECE_BYTES, each cut after its last newline
    when it holds one (the tokenizer's pre-tokenizer splits there anyway); at most two pieces
    are held. Invalid UTF-8 is an error naming the file and line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, carry = 1, ""
    while True:
        block = f.read(PIECE_BYTES)
        try:
            text = carry + decoder.decode(block, final=not block)
        except UnicodeDecodeError as e:
            bad = line + carry.count("\n") + block[:e.start].count(b"\n")
            raise SystemExit(f"--input: {path}:{bad}: invalid UTF-8 "
                             f"({e.object[e.start:e.start + 4]!r}); the tokenizer takes UTF-8 "
                             "text only")
        nl = text.rfind("\n") if block else -1
        piece, carry = (text[:nl + 1], text[nl + 1:]) if nl >= 0 else (text, "")
        line += piece.count("\n")
        if piece:
            yield piece
        if not block:
            return


def documents(files: list[Path], text_key: str, on_file_done=None,
              max_document_bytes: int = MAX_DOCUMENT_BYTES):
    """Yields (text, first, last) pieces of every document, file by file: a JSON Lines line
    is one whole document; a text file is one document in pieces of about PIECE_BYTES."""
    for path in files:
        with _open(path) as f:
            if _kind(path) == "jsonl":
                lineno = 0
                while True:
                    raw = f.readline(max_document_bytes + 1)
                    if not raw:
                        break
                    lineno += 1
                    if len(raw) > max_document_bytes:
                        raise SystemExit(f"--max-document-bytes: {path}:{lineno}: a JSON Lines "
                                         f"line (one document) longer than {max_document_bytes} "
                                         "bytes; raise --max-document-bytes or split it")
                    line = _utf8(raw, path, lineno)
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise SystemExit(f"--input: {path}:{lineno}: invalid JSON ({e})")
                    if not isinstance(obj, dict) or not isinstance(obj.get(text_key), str):
                        raise SystemExit(f"--text-key: {path}:{lineno}: no string field "
                                         f"\"{text_key}\"")
                    text = obj[text_key]
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise SystemExit(f"--input: {path}:{lineno}: \"{text_key}\" holds a lone "
                                         "surrogate escape (\\ud800-\\udfff), not UTF-8 text")
                    yield text, True, True
            else:
                first = True
                for piece in _pieces(f, path):
                    yield piece, first, False
                    first = False
                yield "", first, True
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


def _encode(batch: list[tuple[str, bool, bool]]) -> list[tuple[list[int], bool]]:
    """(ids, last) of every (text, first, last) piece: the tokenizer's special tokens only
    around a document's first piece; an empty last piece of a text file adds nothing."""
    out: list[tuple[list[int], bool]] = [([], last) for _, _, last in batch]
    for special in (True, False):
        idx = [i for i, (text, first, _) in enumerate(batch) if first == special and text]
        if special:  # a document's first piece, even an empty one, carries the specials
            idx = [i for i, (_, first, _) in enumerate(batch) if first]
        enc = _worker_tokenizer.encode_batch([batch[i][0] for i in idx],
                                             add_special_tokens=special)
        for i, e in zip(idx, enc):
            out[i] = (e.ids, batch[i][2])
    return out


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
             batch_docs: int = 256, progress: bool = True,
             max_document_bytes: int = MAX_DOCUMENT_BYTES) -> dict:
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
    if max_document_bytes < 1:
        raise SystemExit(f"--max-document-bytes: must be positive, got {max_document_bytes}")
    docs = documents(files, text_key, file_done, max_document_bytes)
    batches = iter(lambda: list(itertools.islice(docs, batch_docs)), [])
    if workers == 1:
        _init_worker(tokenizer)
        encoded, pool = map(_encode, batches), None
    else:  # at most 2 x workers batches in flight, results in input order: memory stays flat
        pool = mp.get_context("fork").Pool(workers, _init_worker, (tokenizer,))
        encoded = _bounded(pool, batches, 2 * workers)
    try:
        for ids_list in encoded:
            for ids, last in ids_list:
                writer.append(ids)
                if last:
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
    ap.add_argument("--max-document-bytes", type=int, default=MAX_DOCUMENT_BYTES,
                    help="longest JSON Lines line (one document, parsed whole)")
    a = ap.parse_args(argv)
    if Path(a.out).exists() and not Path(a.out).is_dir():
        raise SystemExit(f"--out: {a.out} is an existing file, expected a directory")
    try:
        m = tokenize(a.tokenizer, a.input, a.out, a.text_key, a.eos, a.workers, a.shard_tokens,
                     a.batch_docs, not a.no_progress, a.max_document_bytes)
    except (ValueError, OSError, EOFError) as e:  # EOFError: a truncated .gz
        raise SystemExit(f"error: {e}")
    print(f"wrote {len(m['shards'])} shards, {m['documents']} documents, {m['tokens']} tokens "
          f"(vocab_size {m['vocab_size']}, eos_id {m['eos_id']}, bos_id {m['bos_id']}) to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
