"""Runs trained on another tokenizer's shards (issue 10): a tiny BPE with a BOS template,
trained here (no download) -> shards -> a run -> `lighthouse export`, `eval` and NIAH.

- the export carries the data's EOS (the shards' header) and BOS (the manifest) in config.json
  and generation_config.json, and the tokenizer, so transformers loads a usable model and
  tokenizer pair;
- `eval --ppl` is the run's own validation split (its shards), equal to transformers' loss on
  those sequences; text given to a BPE run is refused, naming --data;
- NIAH: the built-in byte prompts are refused (naming --niah-prompts); prompts written by
  `python -m lighthouse.eval.niah_prompts` are scored as transformers' greedy decoding says;
- a text data.source with a non-byte model.init is refused, naming data.source.

Needs LIGHTHOUSE_BIN (the lighthouse binary) and PYTHONPATH with the staged package."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lighthouse.data import shards
from lighthouse.data.tokenize import tokenize

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

BIN = os.environ.get("LIGHTHOUSE_BIN", "")
pytestmark = pytest.mark.skipif(not BIN, reason="needs LIGHTHOUSE_BIN")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_shards_tokenize import DENSE, TINY, corpus_docs, lighthouse  # noqa: E402

CONTEXT, VAL_FRACTION = 64, 0.1


def train_bpe_with_bos(path: Path, docs: list[str]) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<eos>", "<bos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[
        ("<bos>", bos)])
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("vocab")
    docs = corpus_docs(160, seed=4)
    tok = train_bpe_with_bos(d / "tokenizer.json", docs)
    (d / "docs.jsonl").write_text("".join(json.dumps({"text": x}) + "\n" for x in docs))
    m = tokenize(str(tok), [str(d / "docs.jsonl")], str(d / "ds"), eos="<eos>", workers=1,
                 shard_tokens=1500, progress=False)
    run_dir = d / "run"
    lighthouse("train", *TINY, "--set", f"data.source={d / 'ds'}",
               "--set", f"train.context={CONTEXT}", "--set", "train.batch_size=4",
               "--set", "train.steps=30", "--set", "schedule.warmup_steps=3",
               "--set", "optim.lr=1e-2", "--set", "val.every=0",
               "--set", f"data.val_fraction={VAL_FRACTION}", "--set", f"run.dir={run_dir}")
    lighthouse("export", "--run", str(run_dir), "--out", str(d / "hf"))
    return {"dir": d, "tok": tok, "docs": docs, "manifest": m, "run": run_dir, "hf": d / "hf"}


def test_export_carries_the_datas_ids_and_a_loadable_tokenizer(run):
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(str(run["tok"]))
    eos, bos = t.token_to_id("<eos>"), t.token_to_id("<bos>")
    m = run["manifest"]
    assert (m["eos_id"], m["bos_id"]) == (eos, bos)  # the tool records the template's BOS
    cfg = json.loads((run["hf"] / "config.json").read_text())
    gen = json.loads((run["hf"] / "generation_config.json").read_text())
    for c in (cfg, gen):
        assert (c["bos_token_id"], c["eos_token_id"], c["pad_token_id"]) == (bos, eos, None)
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(run["hf"]))
    assert (hf_tok.bos_token_id, hf_tok.eos_token_id) == (bos, eos)
    doc = run["docs"][0]
    assert hf_tok(doc)["input_ids"] == t.encode(doc).ids  # [<bos>, ...] as in the shards
    model = transformers.AutoModelForCausalLM.from_pretrained(str(run["hf"]))
    assert model.config.vocab_size == t.get_vocab_size()
    assert model.generation_config.eos_token_id == eos
    out = model.generate(**hf_tok(doc[:40], return_tensors="pt"), max_new_tokens=4,
                         do_sample=False)
    assert out.shape[1] > len(hf_tok(doc[:40])["input_ids"])


def val_sequences(ds: Path) -> np.ndarray:
    """The validation split as the trainer cuts it: [M, CONTEXT + 1] ids."""
    stream = shards.read_tokens(ds)
    total = (len(stream) - 1) // CONTEXT
    val = max(1, math.ceil(VAL_FRACTION * total))
    first = total - val
    idx = (first + np.arange(val))[:, None] * CONTEXT + np.arange(CONTEXT + 1)[None, :]
    return stream[idx]


def eval_json(tmp_path, *args):
    out = tmp_path / f"e{len(list(tmp_path.iterdir()))}.json"
    lighthouse("eval", *args, "--device", "cpu", "--json", str(out))
    return json.loads(out.read_text())


def test_eval_ppl_is_the_runs_own_validation_split(run, tmp_path):
    seqs = torch.from_numpy(val_sequences(run["dir"] / "ds"))
    model = transformers.LlamaForCausalLM.from_pretrained(str(run["hf"]),
                                                          dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(seqs[:, :-1]).logits
        want = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).double(), seqs[:, 1:].reshape(-1)).item()
    from_run = eval_json(tmp_path, "--run", str(run["run"]), "--ppl")
    from_export = eval_json(tmp_path, "--model", str(run["hf"]), "--ppl")
    for j in (from_run, from_export):
        assert str(run["dir"] / "ds") in j["ppl_data"]["source"]
        assert j["ppl"]["dense"]["tokens"] == seqs.shape[0] * CONTEXT
        assert abs(j["ppl"]["dense"]["loss"] - want) <= 1e-5 * want, (j["ppl"], want)
    assert want < math.log(300) - 0.5  # trained: well below a uniform guess


def test_eval_refuses_byte_data_and_byte_niah_for_a_bpe_run(run, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(run["docs"][1] * 20)
    r = lighthouse("eval", "--run", str(run["run"]), "--ppl", "--data", str(text), check=False)
    assert r.returncode != 0 and "--data:" in r.stderr and "bytes" in r.stderr, r.stderr
    assert "lighthouse.data.tokenize" in r.stderr
    r = lighthouse("eval", "--run", str(run["run"]), "--niah", "--niah-contexts", "256",
                   check=False)
    assert r.returncode != 0 and "--niah-prompts:" in r.stderr, r.stderr
    assert "lighthouse.eval.niah_prompts" in r.stderr


def greedy_span(model, tokens: list[int], start: int) -> list[int]:
    """tokens with [start:] replaced by the model's greedy continuation of tokens[:start]."""
    out = list(tokens)
    with torch.no_grad():
        for i in range(start, len(out)):
            logits = model(torch.tensor([out[:i]])).logits[0, -1]
            out[i] = int(logits.argmax())
    return out


def test_niah_prompt_file_is_scored_as_transformers_greedy_decoding(run, tmp_path):
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(str(run["tok"]))
    path = tmp_path / "niah.jsonl"
    r = subprocess.run([sys.executable, "-m", "lighthouse.eval.niah_prompts", "--tokenizer",
                        str(run["tok"]), "--out", str(path), "--contexts", "128,160",
                        "--depths", "0,50,100", "--trials", "2", "--eos", "<eos>",
                        "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = path.read_text().splitlines()
    header, prompts = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    assert header["prompts"] == len(prompts) == 12 and header["vocab_size"] == 300
    for p in prompts:
        ids = p["tokens"]
        assert len(ids) == p["context"] and ids[0] == t.token_to_id("<bos>")
        assert t.decode(ids[p["answer_start"]:]).strip() == p["answer"]
        needle = t.decode(ids[p["needle_pos"]:p["answer_start"]])
        assert needle.startswith(f"\nfact: the code of the pass key is {p['answer']}.\n")
        assert needle.rstrip(" ").endswith("\nrecall: the code of the pass key is")
        filler = t.decode(ids[1:p["needle_pos"]])
        assert not any(ch.isdigit() for ch in filler)
    depth0 = [p for p in prompts if p["depth"] == 0]
    assert all(p["needle_pos"] == 1 for p in depth0)  # right after <bos>

    # Answers the model gets right (its own greedy span) for trial 0, wrong for trial 1.
    model = transformers.LlamaForCausalLM.from_pretrained(str(run["hf"]),
                                                          dtype=torch.float32).eval()
    for p in prompts:
        p["tokens"] = greedy_span(model, p["tokens"], p["answer_start"])
        if p["trial"] == 1:
            p["tokens"][-1] = (p["tokens"][-1] + 1) % 300
    path.write_text("\n".join([json.dumps(header)] + [json.dumps(p) for p in prompts]) + "\n")
    j = eval_json(tmp_path, "--model", str(run["hf"]), "--niah", "--niah-prompts", str(path))
    cells = j["niah"]["cells"]
    assert [(c["context"], c["depth"]) for c in cells] == [
        (c, d) for c in (128, 160) for d in (0, 50, 100)]
    assert all(c["trials"] == 2 and c["accuracy"] == 0.5 for c in cells), cells
    assert j["niah"]["chance"] is None and j["niah"]["prompts"] == str(path)


def test_text_source_with_a_non_byte_model_init_is_refused(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "hf")
    (tmp_path / "t.txt").write_text("some text " * 2000)
    r = lighthouse("train", *DENSE, "--set", f"model.init={tmp_path / 'hf'}",
                   "--set", f"data.source={tmp_path / 't.txt'}", "--set", "train.steps=1",
                   "--set", "schedule.warmup_steps=0",
                   "--set", "train.context=64", check=False)
    assert r.returncode == 1 and "data.source:" in r.stderr, r.stderr
    assert "tokenized as bytes" in r.stderr and "lighthouse.data.tokenize" in r.stderr
    assert "vocab_size 320" in r.stderr
