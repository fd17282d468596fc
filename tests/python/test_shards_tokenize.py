"""Token shards from Python: a tiny BPE tokenizer trained here (no download) -> the tokenize
tool (JSONL.gz, text, directories; workers) -> shards the C++ trainer reads; its loss falls.
Then a transformers LlamaForCausalLM (GQA, tied embeddings, llama3 rope_scaling, bf16, sharded
safetensors with an index) imported with model.init: the trainer's step-0 loss equals
transformers' loss on the same batch.

Needs LIGHTHOUSE_BIN (the lighthouse binary) and PYTHONPATH with the staged package."""

import gzip
import json
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from lighthouse.data import shards
from lighthouse.data.tokenize import tokenize

BIN = os.environ.get("LIGHTHOUSE_BIN", "")
WORDS = ("alpha beta gamma delta lamp river stone cloud seven green quiet window "
         "market silver orbit candle").split()


def corpus_docs(n: int, seed: int = 0) -> list[str]:
    """Documents with local structure (a repeated per-document phrase) a model can learn."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        phrase = " ".join(rng.choice(WORDS) for _ in range(4))
        docs.append(" . ".join(phrase for _ in range(rng.randint(6, 12))))
    return docs


def train_bpe(path: Path, docs: list[str], vocab: int = 300) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<unk>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer)
    tok.save(str(path))
    return path


def lighthouse(*args, check=True):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"lighthouse {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r


def step_losses(run_dir: Path) -> list[float]:
    return [json.loads(l)["loss"] for l in (run_dir / "metrics.jsonl").read_text().splitlines()
            if json.loads(l)["type"] == "step"]


DENSE = ["--set", "run.threads=1", "--set", "model.dense_layers=[]",
         "--set", "train.attention=dense", "--set", "train.stage1_steps=0",
         "--set", "log.progress=false", "--set", "checkpoint.every=0"]
TINY = DENSE + ["--set", "model.d_model=32", "--set", "model.n_layers=2",
                "--set", "model.n_heads=2", "--set", "model.n_kv_heads=1",
                "--set", "model.head_dim=16", "--set", "model.ffn_hidden=64"]


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    d = tmp_path_factory.mktemp("bpe")
    docs = corpus_docs(300)
    tok = train_bpe(d / "tokenizer.json", docs)
    inp = d / "in"
    (inp / "sub").mkdir(parents=True)
    with gzip.open(inp / "a.jsonl.gz", "wt") as f:
        for doc in docs[:200]:
            f.write(json.dumps({"body": doc}) + "\n")
    for i, doc in enumerate(docs[200:]):
        (inp / "sub" / f"{i:03d}.txt").write_text(doc)
    (inp / ".hidden.txt").write_text("never read")
    return d, tok, docs


def test_tokenize_tool_writes_the_tokenizers_ids_with_eos(bpe, tmp_path):
    d, tok, docs = bpe
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(str(tok))
    eos = t.token_to_id("<eos>")
    m1 = tokenize(str(tok), [str(d / "in")], str(tmp_path / "w1"), text_key="body",
                  eos="<eos>", workers=1, shard_tokens=2000, progress=False)
    m2 = tokenize(str(tok), [str(d / "in")], str(tmp_path / "w2"), text_key="body",
                  eos="<eos>", workers=2, shard_tokens=2000, batch_docs=7, progress=False)
    assert m1["vocab_size"] == t.get_vocab_size() and m1["eos_id"] == eos
    assert len(m1["shards"]) > 2 and m1["documents"] == 300
    ids = shards.read_tokens(tmp_path / "w1")
    want = []
    for doc in docs:  # the JSONL file first, then sub/000.txt ... in sorted order
        want += t.encode(doc).ids + [eos]
    np.testing.assert_array_equal(ids, np.array(want))
    np.testing.assert_array_equal(shards.read_tokens(tmp_path / "w2"), ids)  # workers: same
    for s in m1["shards"]:  # the checksum the C++ reader verifies
        data = (tmp_path / "w1" / s["name"]).read_bytes()[shards.HEADER_BYTES:]
        assert zlib.crc32(data) == s["crc32"]


def test_tokenize_cli_errors_name_the_flag(bpe, tmp_path):
    d, tok, _ = bpe
    r = subprocess.run([sys.executable, "-m", "lighthouse.data.tokenize", "--tokenizer", str(tok),
                        "--input", str(d / "in"), "--out", str(tmp_path / "o"),
                        "--text-key", "missing", "--eos", "<eos>", "--no-progress"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--text-key" in r.stderr and "missing" in r.stderr
    r = subprocess.run([sys.executable, "-m", "lighthouse.data.tokenize", "--tokenizer", str(tok),
                        "--input", str(d / "in"), "--out", str(tmp_path / "o"),
                        "--eos", "<nope>", "--no-progress"], capture_output=True, text=True)
    assert r.returncode != 0 and "--eos" in r.stderr


@pytest.mark.skipif(not BIN, reason="needs LIGHTHOUSE_BIN")
def test_bpe_shards_train_and_loss_falls(bpe, tmp_path):
    d, tok, _ = bpe
    tokenize(str(tok), [str(d / "in")], str(tmp_path / "ds"), text_key="body", eos="<eos>",
             workers=2, shard_tokens=3000, progress=False)
    run = tmp_path / "run"
    r = lighthouse("train", *TINY, "--set", f"data.source={tmp_path / 'ds'}",
                   "--set", "train.context=64", "--set", "train.batch_size=4",
                   "--set", "train.steps=40", "--set", "schedule.warmup_steps=4",
                   "--set", "optim.lr=1e-2", "--set", "val.every=20", "--set", "val.batches=1",
                   "--set", "val.modes=[\"dense\"]", "--set", "data.val_fraction=0.05",
                   "--set", f"run.dir={run}")
    losses = step_losses(run)
    assert len(losses) == 40
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < first - 1.0, (first, last, r.stdout)
    cfg = (run / "config.toml").read_text()
    assert "vocab_size = 300" in cfg  # model.vocab_size came from the shards' header


def write_batch_dataset(path: Path, batch: int, context: int, vocab: int, seed: int) -> np.ndarray:
    """A dataset of exactly `batch` training sequences: [batch, context + 1] ids."""
    rng = np.random.default_rng(seed)
    stream = rng.integers(0, vocab - 1, size=batch * context + 1)
    w = shards.ShardWriter(path, vocab, vocab - 1, tokenizer="random", shard_tokens=100)
    w.append(stream)
    w.finish()
    idx = np.arange(batch)[:, None] * context + np.arange(context + 1)[None, :]
    return stream[idx]


@pytest.mark.skipif(not BIN, reason="needs LIGHTHOUSE_BIN")
def test_model_init_from_transformers_llama_matches_its_loss(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    vocab, B, N = 320, 4, 64
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=96,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=16, rms_norm_eps=1e-5, tie_word_embeddings=True,
                      max_position_embeddings=256,
                      rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                                       "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 16})
    torch.manual_seed(0)
    hf = LlamaForCausalLM(cfg).to(torch.bfloat16)
    src = tmp_path / "hf"
    hf.save_pretrained(src, max_shard_size="60KB")
    assert (src / "model.safetensors.index.json").is_file()
    batch = write_batch_dataset(tmp_path / "ds", B, N, vocab, seed=1)

    ref = LlamaForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    with torch.no_grad():
        x = torch.from_numpy(batch)
        logits = ref(x[:, :-1]).logits
        want = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab).double(),
                                                 x[:, 1:].reshape(-1)).item()

    run = tmp_path / "run"
    lighthouse("train", *DENSE, "--set", f"model.init={src}", "--set", f"data.source={tmp_path / 'ds'}",
               "--set", f"train.context={N}", "--set", f"train.batch_size={B}",
               "--set", "train.steps=1", "--set", "schedule.warmup_steps=0",
               "--set", "val.every=0", "--set", "data.val_fraction=0", "--set", f"run.dir={run}")
    got = step_losses(run)[0]
    assert abs(got - want) <= 1e-5 * abs(want), (got, want)
    cfg_text = (run / "config.toml").read_text()
    assert 'rope_scaling = "llama3"' in cfg_text and "rope_theta = 5e+05" in cfg_text


@pytest.mark.skipif(not BIN, reason="needs LIGHTHOUSE_BIN")
def test_model_init_refuses_unsupported_fields_by_name(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                      attention_bias=True)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "hf")
    write_batch_dataset(tmp_path / "ds", 2, 32, 300, seed=2)
    r = lighthouse("train", *DENSE, "--set", f"model.init={tmp_path / 'hf'}",
                   "--set", f"data.source={tmp_path / 'ds'}", check=False)
    assert r.returncode == 1 and "model.init" in r.stderr and "attention_bias" in r.stderr, r.stderr


@pytest.mark.skipif(not BIN, reason="needs LIGHTHOUSE_BIN")
def test_continue_llama_recipe_runs_at_toy_size_on_cpu(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    root = Path(__file__).resolve().parents[2]
    cfg = LlamaConfig(vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=5,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                      rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                                       "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 64})
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(tmp_path / "hf")
    write_batch_dataset(tmp_path / "ds", 24, 256, 400, seed=3)
    run = tmp_path / "run"
    r = lighthouse("train", "--config", str(root / "configs" / "continue-llama-128k.toml"),
                   "--set", f"model.init={tmp_path / 'hf'}", "--set", f"data.source={tmp_path / 'ds'}",
                   "--set", "run.device=cpu", "--set", "train.precision=fp32",
                   "--set", "train.context=256", "--set", "lighthouse.levels=2",
                   "--set", "lighthouse.topk=16", "--set", "lighthouse.tile_topk=8", "--set", "train.steps=6",
                   "--set", "train.stage1_steps=4", "--set", "schedule.warmup_steps=1",
                   "--set", "train.grad_accum=1", "--set", "val.every=3",
                   "--set", "checkpoint.every=3", "--set", "model.activation_checkpointing=false",
                   "--set", "model.rope_theta=2e6", "--set", "data.val_fraction=0.1",
                   "--set", "val.batches=1", "--set", "run.threads=1",
                   "--set", "log.progress=false", "--set", f"run.dir={run}")
    events = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["type"] == "step"]
    assert [e["attention"] for e in steps] == ["lighthouse"] * 4 + ["dense"] * 2
    assert all(np.isfinite(e["loss"]) for e in steps)
    text = (run / "config.toml").read_text()
    assert "rope_theta = 2e+06" in text and 'rope_scaling = "llama3"' in text  # θ overridden
    assert "vocab_size = 400" in text and "n_layers = 5" in text
