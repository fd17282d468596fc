"""The tokenize tool on text it did not write (docs/trust.md): invalid UTF-8 in a .txt or a
.jsonl and lone surrogate escapes in JSON are errors naming the file and line (not a
tokenizer TypeError); a text file is read in bounded pieces (a .gz expanding far past memory
streams) whose ids equal the whole document's; a JSON Lines line past --max-document-bytes is
an error naming the flag."""

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from lighthouse.data import shards
from lighthouse.data import tokenize as tk
from test_shards_tokenize import corpus_docs, train_bpe


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return train_bpe(tmp_path_factory.mktemp("bpe") / "tokenizer.json", corpus_docs(200))


def run_tool(tok, *args):
    return subprocess.run([sys.executable, "-m", "lighthouse.data.tokenize", "--tokenizer",
                           str(tok), "--eos", "<eos>", "--no-progress", "--workers", "1", *args],
                          capture_output=True, text=True)


def test_invalid_utf8_names_the_file_and_line(tok, tmp_path):
    bad_txt = tmp_path / "a.txt"
    bad_txt.write_bytes(b"alpha beta\ngamma\ndelta \xff\xfe lamp\n")
    r = run_tool(tok, "--input", str(bad_txt), "--out", str(tmp_path / "o1"))
    assert r.returncode != 0 and f"--input: {bad_txt}:3: invalid UTF-8" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    bad_jsonl = tmp_path / "b.jsonl.gz"
    with gzip.open(bad_jsonl, "wb") as f:
        f.write(b'{"text": "fine"}\n{"text": "bro\xc3ken"}\n')
    r = run_tool(tok, "--input", str(bad_jsonl), "--out", str(tmp_path / "o2"))
    assert r.returncode != 0 and f"--input: {bad_jsonl}:2: invalid UTF-8" in r.stderr, r.stderr
    surrogate = tmp_path / "c.jsonl"
    surrogate.write_text('{"text": "ok"}\n{"text": "x \\udc80 y"}\n')
    r = run_tool(tok, "--input", str(surrogate), "--out", str(tmp_path / "o3"))
    assert r.returncode != 0 and f"--input: {surrogate}:2: " in r.stderr, r.stderr
    assert "lone surrogate" in r.stderr


def test_text_is_read_in_bounded_pieces_with_the_whole_documents_ids(tok, tmp_path, monkeypatch):
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(str(tok))
    text = "\n".join(corpus_docs(60, seed=3)) + "\n"
    path = tmp_path / "big.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write(text)
    reads = []
    real_open = tk._open

    def spy_open(p):  # records every read size: none may ask for the whole file
        f = real_open(p)
        read = f.read
        f.read = lambda n=-1: (reads.append(n), read(n))[1]
        return f

    monkeypatch.setattr(tk, "_open", spy_open)
    monkeypatch.setattr(tk, "PIECE_BYTES", 1024)  # longer than any line: cuts at newlines
    m = tk.tokenize(str(tok), [str(path)], str(tmp_path / "o"), eos="<eos>", progress=False)
    assert reads and all(0 < n <= 1024 for n in reads), reads[:5]
    assert m["documents"] == 1
    want = t.encode(text).ids + [t.token_to_id("<eos>")]
    np.testing.assert_array_equal(shards.read_tokens(tmp_path / "o"), np.array(want))


def test_a_json_lines_line_past_the_bound_is_an_error_naming_the_flag(tok, tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"text": "short"}) + "\n" + json.dumps({"text": "x" * 5000}) + "\n")
    r = run_tool(tok, "--input", str(path), "--out", str(tmp_path / "o"),
                 "--max-document-bytes", "1000")
    assert r.returncode != 0, r.stderr
    assert f"--max-document-bytes: {path}:2: " in r.stderr and "1000 bytes" in r.stderr
    assert run_tool(tok, "--input", str(path), "--out", str(tmp_path / "o2")).returncode == 0
