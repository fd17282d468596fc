"""Token shards, the format `lighthouse train` memory-maps (docs/data.md; the C++ side is
src/train/shards.cpp).

A dataset is a directory with `manifest.json` and `shard-NNNNNN.bin` files. A shard is a
64-byte little-endian header -- magic b"LHTOKENS", u32 version (1), u32 token width in bytes
(2 = uint16, 4 = uint32), u64 vocab_size, u64 token count, u64 document count (EOS ids in the
shard), u64 eos_id, 16 zero bytes -- then the token ids. The shards concatenated in manifest
order are the stream "doc EOS doc EOS ..." (a document may continue into the next shard). The
manifest lists every shard's name, token and document counts and the CRC-32 (zlib) of its ids,
the tokenizer that made the ids and its BOS id (null when it has none), which `lighthouse
export` writes into the model's config.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np

MAGIC = b"LHTOKENS"
VERSION = 1
HEADER_BYTES = 64
MANIFEST = "manifest.json"
_HEADER = struct.Struct("<8sIIQQQQ16x")
assert _HEADER.size == HEADER_BYTES


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65536), else uint32."""
    return np.dtype("<u2") if vocab_size <= 65536 else np.dtype("<u4")


def _commit(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)


class ShardWriter:
    """Writes documents into shards of at most `shard_tokens` ids, then `manifest.json`.

    Shards and the manifest are written under temporary names and renamed when complete."""

    def __init__(self, out: str | os.PathLike, vocab_size: int, eos_id: int, tokenizer: str = "",
                 shard_tokens: int = 1 << 28, bos_id: int | None = None):
        if not 1 <= vocab_size <= 1 << 32:
            raise ValueError(f"vocab_size: must be in [1, 2^32], got {vocab_size}")
        if not 0 <= eos_id < vocab_size:
            raise ValueError(f"eos_id: {eos_id} is outside [0, vocab_size = {vocab_size})")
        if bos_id is not None and not 0 <= bos_id < vocab_size:
            raise ValueError(f"bos_id: {bos_id} is outside [0, vocab_size = {vocab_size})")
        if shard_tokens < 1:
            raise ValueError(f"--shard-tokens: must be positive, got {shard_tokens}")
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.vocab_size, self.eos_id, self.tokenizer = vocab_size, eos_id, tokenizer
        self.bos_id = bos_id
        self.dtype = token_dtype(vocab_size)
        self.shard_tokens = shard_tokens
        self.shards: list[dict] = []
        self._file = None
        self.tokens = 0

    def _open(self) -> None:
        name = f"shard-{len(self.shards):06d}.bin"
        self._tmp = self.out / (name + ".tmp")
        self._file = open(self._tmp, "wb")
        self._file.write(b"\0" * HEADER_BYTES)
        self._cur = {"name": name, "tokens": 0, "documents": 0, "crc32": 0}

    def _close(self) -> None:
        c = self._cur
        header = _HEADER.pack(MAGIC, VERSION, self.dtype.itemsize, self.vocab_size, c["tokens"],
                              c["documents"], self.eos_id)
        self._file.seek(0)
        self._file.write(header)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        _commit(self._tmp, self.out / c["name"])
        self.shards.append(c)

    def append(self, ids) -> None:
        """Appends token ids (of a document, or part of one); EOS ids count as document ends."""
        a = np.asarray(ids, dtype=np.int64)
        if a.size and (a.min() < 0 or a.max() >= self.vocab_size):
            bad = a[(a < 0) | (a >= self.vocab_size)][0]
            raise ValueError(f"token id {bad} is outside [0, vocab_size = {self.vocab_size})")
        a = a.astype(self.dtype)
        while a.size:
            if self._file is None:
                self._open()
            take = min(a.size, self.shard_tokens - self._cur["tokens"])
            part, a = a[:take], a[take:]
            data = part.tobytes()
            self._file.write(data)
            self._cur["crc32"] = zlib.crc32(data, self._cur["crc32"])
            self._cur["tokens"] += int(part.size)
            self._cur["documents"] += int(np.count_nonzero(part == self.eos_id))
            self.tokens += int(part.size)
            if self._cur["tokens"] == self.shard_tokens:
                self._close()

    def end_document(self) -> None:
        self.append([self.eos_id])

    def finish(self, source: str = "") -> dict:
        """Writes the last shard and manifest.json; returns the manifest."""
        if self._file is not None:
            self._close()
        manifest = {
            "format": "lighthouse-tokens", "version": VERSION,
            "dtype": "uint16" if self.dtype.itemsize == 2 else "uint32",
            "vocab_size": self.vocab_size, "eos_id": self.eos_id, "bos_id": self.bos_id,
            "tokenizer": self.tokenizer,
            "tokens": sum(s["tokens"] for s in self.shards),
            "documents": sum(s["documents"] for s in self.shards),
            "source": source, "shards": self.shards,
        }
        tmp = self.out / (MANIFEST + ".tmp")
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        _commit(tmp, self.out / MANIFEST)
        return manifest


def read_manifest(directory: str | os.PathLike) -> dict:
    with open(Path(directory) / MANIFEST) as f:
        return json.load(f)


def read_tokens(directory: str | os.PathLike) -> np.ndarray:
    """The whole token stream of a dataset (memory-mapped shards concatenated), as int64."""
    m = read_manifest(directory)
    dtype = np.dtype("<u2") if m["dtype"] == "uint16" else np.dtype("<u4")
    parts = []
    for s in m["shards"]:
        path = Path(directory) / s["name"]
        magic, version, width, vocab, tokens, docs, eos = _HEADER.unpack(
            path.read_bytes()[:HEADER_BYTES])
        if magic != MAGIC or version != VERSION or tokens != s["tokens"]:
            raise ValueError(f"{path}: header does not match the manifest")
        parts.append(np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES,
                               shape=(s["tokens"],)).astype(np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)
