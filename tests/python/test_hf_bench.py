"""bench/hf_llama.py and its chunked causal-LM loss (CPU, fp32).

- `chunked_causal_lm_loss` equals transformers' `model(ids, labels=ids).loss` and its
  gradients (chunks that do not divide the tokens, labels with -100), and refuses bad input.
- The benchmark runs end to end at a tiny size (`--device cpu --tiny`) and prints its table.
"""

import pathlib
import subprocess
import sys

import pytest
import torch
import transformers

import lighthouse
import lighthouse.hf
from lighthouse.hf.loss import chunked_causal_lm_loss, chunked_linear_cross_entropy

REPO = pathlib.Path(__file__).resolve().parents[2]


def tiny_llama():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, tie_word_embeddings=False)
    return transformers.LlamaForCausalLM(cfg)


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_chunked_loss_equals_transformers(chunk):
    model = tiny_llama()
    ids = torch.randint(0, 97, (2, 48), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[0, :5] = -100
    want = model(ids, labels=labels).loss
    want.backward()
    want_g = grads(model)
    model.zero_grad()
    got = chunked_causal_lm_loss(model, ids, labels, chunk=chunk)
    got.backward()
    assert torch.allclose(got, want, rtol=1e-6), (got, want)
    for name, g in grads(model).items():
        assert torch.allclose(g, want_g[name], rtol=1e-4, atol=1e-7), name
    # and with Lighthouse enabled (the base model's hook applies)
    lighthouse.hf.enable(model, lighthouse.LighthouseConfig(levels=3, pool=2, topk=4,
                                                            tile_topk=2), dense_layers=(0,))
    assert torch.allclose(chunked_causal_lm_loss(model, ids, labels, chunk=chunk),
                          model(ids, labels=labels).loss, rtol=1e-6)


def test_chunked_loss_bad_input():
    h, w = torch.randn(2, 8, 4), torch.randn(5, 4)
    with pytest.raises(ValueError, match="chunk must be an int >= 1, got 0"):
        chunked_linear_cross_entropy(h, w, torch.zeros(2, 8, dtype=torch.long), chunk=0)
    with pytest.raises(ValueError, match=r"labels must have shape \(2, 8\)"):
        chunked_linear_cross_entropy(h, w, torch.zeros(2, 7, dtype=torch.long))


def test_bench_runs_tiny_on_cpu(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "bench" / "hf_llama.py"), "--device", "cpu",
                        "--tiny", "--seq-lens", "256", "--modes", "eager", "--steps", "1",
                        "--warmup", "1",
                        "--json", str(tmp_path / "rows.json")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    for n in (256,):
        assert any(l.split()[:3] == [str(n), "eager", "dense"] for l in lines), r.stdout
        row = [l.split() for l in lines if l.split()[:3] == [str(n), "eager", "lighthouse"]]
        assert row and row[0][-1].endswith("x"), r.stdout
    assert (tmp_path / "rows.json").read_text().count('"attention"') == 2
