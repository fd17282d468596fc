"""lighthouse.hf.LighthouseWrapper on transformers models (CPU, fp32).

- Lighthouse mode of a LlamaForCausalLM equals the project's own C++ Llama in Lighthouse mode
  with the same weights (tests/model/export_fixture.cpp --lighthouse exports them) to 1e-5
  relative; dense mode equals plain transformers.
- The op receives post-RoPE q/k with the model's GQA (no repeated K/V heads); dense layers
  run stock SDPA; the wrapper adds no parameters.
- unwrap(): the same object and class, the original attention implementation, bitwise
  weights and logits, and a save_pretrained -> from_pretrained round trip.
- Training steps lower the loss; the mode switch keeps the optimizer state.
- torch.compile(fullgraph=True) of a wrapped decoder layer.
- Inputs Lighthouse cannot serve raise naming the argument.
"""

import os
import pathlib
import subprocess
import sys

import pytest
import torch
import transformers
from safetensors.torch import load_file

import lighthouse
import lighthouse.hf
from lighthouse.hf import LighthouseWrapper

REPO = pathlib.Path(__file__).resolve().parents[2]
CFG = lighthouse.LighthouseConfig(levels=3, pool=2, topk=4, tile_topk=2)  # N % 8 == 0, N >= 16
N = 64  # S = N / 4 + 2 * 2 * 4 = 32 slots: half the tokens


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def tiny_llama(seed=0, layers=4, cls=transformers.LlamaForCausalLM, **extra):
    torch.manual_seed(seed)
    config_cls = {transformers.LlamaForCausalLM: transformers.LlamaConfig,
                  transformers.MistralForCausalLM: transformers.MistralConfig,
                  transformers.Qwen2ForCausalLM: transformers.Qwen2Config}[cls]
    cfg = config_cls(vocab_size=97, hidden_size=64, intermediate_size=128,
                     num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                     max_position_embeddings=512, **extra)
    return cls(cfg).eval()


def tokens(batch=2, n=N, seed=1):
    return torch.randint(0, 97, (batch, n), generator=torch.Generator().manual_seed(seed))


def logits(model, ids, **kw):
    with torch.no_grad():
        return model(ids, **kw).logits


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = os.environ.get("LIGHTHOUSE_EXPORT_FIXTURE") or str(
        REPO / "build" / "tests" / "model_export_fixture")
    if not os.path.exists(path):
        pytest.skip(f"export fixture not built: {path} (set LIGHTHOUSE_EXPORT_FIXTURE)")
    out = tmp_path_factory.mktemp("fixture")
    spec = f"{CFG.levels},{CFG.pool},{CFG.topk},{CFG.tile_topk}"
    r = subprocess.run([path, str(out), "--seq-len", str(N), "--lighthouse", spec],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"fixture failed ({r.returncode}): {r.stderr}"
    io = load_file(str(out / "io.safetensors"))
    return out / "model", io["tokens"], io["logits"]


def test_lighthouse_mode_equals_the_cpp_llama(exported):
    model_dir, ids, ours = exported
    model = transformers.LlamaForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    wrapped = LighthouseWrapper(model.eval(), config=CFG, dense_layers=(0,))
    assert wrapped.mode == "lighthouse"
    theirs = logits(wrapped, ids)
    err = rel_err(theirs, ours)
    print(f"\nLighthouse mode vs the C++ Llama: max relative logits error {err:.3e}")
    assert err <= 1e-5
    wrapped.set_mode("dense")
    dense = logits(wrapped, ids)
    assert rel_err(dense, ours) > 1e-2, "Lighthouse and dense agree: the op did not run"
    plain = transformers.LlamaForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    assert torch.equal(dense, logits(plain.eval(), ids))


def test_dense_mode_equals_plain_transformers_and_no_parameters_are_added():
    model = tiny_llama()
    ids = tokens()
    want = logits(model, ids)
    params = dict(model.named_parameters())
    wrapped = LighthouseWrapper(model, config=CFG, dense_layers=(0,))
    assert [id(p) for p in wrapped.parameters()] == [id(p) for p in params.values()]
    assert sum(1 for _ in wrapped.buffers()) == sum(1 for _ in model.buffers())
    assert wrapped.config is model.config and wrapped.lighthouse_config is CFG
    light = logits(wrapped, ids)
    wrapped.set_mode("dense")
    assert wrapped.mode == "dense"
    assert torch.equal(logits(wrapped, ids), want)
    assert rel_err(light, want) > 1e-3
    # Every layer dense (the default (0, 1, -2, -1) of 4 layers): stock SDPA throughout.
    model = wrapped.unwrap()
    all_dense = LighthouseWrapper(model, config=CFG)
    assert all_dense.dense_layers == (0, 1, 2, 3)
    assert torch.equal(logits(all_dense, ids), want)


def test_the_op_gets_post_rope_qk_and_unrepeated_gqa(monkeypatch):
    model = tiny_llama()
    wrapped = LighthouseWrapper(model, config=CFG, dense_layers=(0, -1))
    seen = []
    real = lighthouse.functional.attention

    def spy(q, k, v, **kw):
        seen.append((q, k, v, kw))
        return real(q, k, v, **kw)

    monkeypatch.setattr(lighthouse.hf.attention.F, "attention", spy)
    inputs = {}
    attn = model.model.layers[1].self_attn
    hook = attn.register_forward_pre_hook(
        lambda m, args, kwargs: inputs.update(kwargs), with_kwargs=True)
    logits(wrapped, tokens(batch=1))
    hook.remove()
    assert len(seen) == 2  # layers 1 and 2; 0 and 3 are dense
    for q, k, v, kw in seen:
        assert (q.shape, k.shape, v.shape) == ((1, N, 4, 16), (1, N, 2, 16), (1, N, 2, 16))
        assert kw == CFG.op_kwargs()
    # Layer 1's q and k are RoPE applied to its projections, as transformers computes them.
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
    x, (cos, sin) = inputs["hidden_states"], inputs["position_embeddings"]
    with torch.no_grad():
        q = attn.q_proj(x).view(1, N, 4, 16).transpose(1, 2)
        k = attn.k_proj(x).view(1, N, 2, 16).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
    assert torch.equal(seen[0][0], q.transpose(1, 2)) and torch.equal(seen[0][1], k.transpose(1, 2))
    assert not torch.allclose(seen[0][0], attn.q_proj(x).view(1, N, 4, 16), atol=1e-3)


def test_unwrap_restores_the_original_model(tmp_path):
    model = tiny_llama()
    ids = tokens()
    impl, use_cache = model.config._attn_implementation, model.config.use_cache
    state = {k: v.clone() for k, v in model.state_dict().items()}
    want = logits(model, ids)
    wrapped = LighthouseWrapper(model, config=CFG, dense_layers=(0, -1))
    assert model.config._attn_implementation == "lighthouse" and model.config.use_cache == use_cache
    logits(wrapped, ids)
    back = wrapped.unwrap()
    assert back is model and type(back) is transformers.LlamaForCausalLM
    assert back.config._attn_implementation == impl and back.config.use_cache == use_cache
    assert not any(hasattr(m, "_lighthouse_route") for m in back.modules())
    assert state.keys() == back.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in back.state_dict().items())
    assert torch.equal(logits(back, ids), want)
    with pytest.raises(RuntimeError, match="unwrapped"):
        wrapped.set_mode("dense")
    back.save_pretrained(tmp_path / "m")
    loaded = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "m"))
    assert type(loaded) is transformers.LlamaForCausalLM
    assert torch.equal(logits(loaded.eval(), ids), want)
    assert loaded.generate(ids[:1, :8], max_new_tokens=4, do_sample=False).shape == (1, 12)


def test_save_pretrained_while_wrapped_writes_the_plain_model(tmp_path):
    model = tiny_llama()
    ids = tokens()
    want = logits(model, ids)
    wrapped = LighthouseWrapper(model, config=CFG, dense_layers=(0, -1))
    wrapped.save_pretrained(tmp_path / "m")
    assert wrapped.mode == "lighthouse" and model.config._attn_implementation == "lighthouse"
    loaded = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "m")).eval()
    assert loaded.config._attn_implementation == "sdpa" and loaded.config.use_cache is True
    assert torch.equal(logits(loaded, ids), want)


def test_training_lowers_the_loss_and_the_switch_keeps_optimizer_state():
    model = tiny_llama(seed=2).train()
    wrapped = LighthouseWrapper(model, config=CFG, dense_layers=(0, -1))
    opt = torch.optim.AdamW(wrapped.parameters(), lr=3e-3)
    ids = torch.arange(N).repeat(4, 1) % 13 + 3  # a learnable periodic sequence, [4, N]

    def step():
        loss = wrapped(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    losses = [step() for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0], losses
    before = {id(p): (s["step"].clone(), s["exp_avg"].clone(), s["exp_avg"].data_ptr())
              for p, s in opt.state.items()}
    assert len(before) == len(list(model.parameters()))
    wrapped.set_mode("dense")
    after = {id(p): (s["step"], s["exp_avg"], s["exp_avg"].data_ptr())
             for p, s in opt.state.items()}
    assert before.keys() == after.keys()
    for key, (st, avg, ptr) in before.items():
        assert torch.equal(st, after[key][0]) and torch.equal(avg, after[key][1])
        assert ptr == after[key][2]
    dense = [step() for _ in range(3)]
    assert dense[-1] < losses[-1], (losses, dense)
    assert all(float(s["step"]) == 11 for s in opt.state.values())


def test_compile_fullgraph_of_a_wrapped_decoder_layer():
    torch._dynamo.reset()
    model = tiny_llama(seed=3)
    wrapped = LighthouseWrapper(model, config=CFG, dense_layers=(0,))
    layer = model.model.layers[1]  # a Lighthouse layer
    hidden = torch.randn(2, N, 64, requires_grad=True)
    pos = torch.arange(N).unsqueeze(0)
    rope = model.model.rotary_emb(hidden, pos)
    eager = layer(hidden, attention_mask=None, position_embeddings=rope, position_ids=pos)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    out = compiled(hidden, attention_mask=None, position_embeddings=rope, position_ids=pos)
    out = out[0] if isinstance(out, tuple) else out
    eager = eager[0] if isinstance(eager, tuple) else eager
    assert torch.allclose(out, eager, rtol=1e-5, atol=1e-5)
    dense = model.model.layers[0](hidden, attention_mask=None, position_embeddings=rope,
                                  position_ids=pos)
    assert not torch.allclose(out, dense[0] if isinstance(dense, tuple) else dense, atol=1e-3)
    (g,) = torch.autograd.grad(out.square().sum(), hidden)
    (want,) = torch.autograd.grad(eager.square().sum(), hidden)
    assert g.abs().max() > 0 and torch.allclose(g, want, rtol=1e-4, atol=1e-5)
    assert wrapped.mode == "lighthouse"


@pytest.mark.parametrize("cls", [transformers.MistralForCausalLM, transformers.Qwen2ForCausalLM])
def test_mistral_and_qwen2_are_served(cls):
    model = tiny_llama(cls=cls, sliding_window=None)
    ids = tokens()
    want = logits(model, ids)
    wrapped = LighthouseWrapper(model, config=CFG, dense_layers=(0,))
    light = logits(wrapped, ids)
    assert torch.isfinite(light).all() and rel_err(light, want) > 1e-3
    wrapped.set_mode("dense")
    assert torch.equal(logits(wrapped, ids), want)


def test_bad_inputs_name_the_argument():
    model = tiny_llama()
    wrapped = LighthouseWrapper(model, config=CFG, dense_layers=(0,))
    ids = tokens()
    mask = torch.ones_like(ids)
    assert torch.equal(logits(wrapped, ids, attention_mask=mask), logits(wrapped, ids))
    mask[0, :5] = 0
    with pytest.raises(ValueError, match="attention_mask: Lighthouse attention serves causal "
                                         "batches without padding"):
        logits(wrapped, ids, attention_mask=mask)
    assert logits(wrapped, ids[:, :60]).shape[1] == 60  # any length (SPEC.md §2)
    with pytest.raises(ValueError, match=r"use_cache / past_key_values: .*"
                                         r"set_mode\(model, \"dense\"\).*unwrap\(\)"):
        logits(wrapped, ids, use_cache=True)
    with pytest.raises(ValueError, match=r"generate\(\): use_cache / past_key_values"):
        wrapped.generate(ids[:1, :8], max_new_tokens=2)
    wrapped.set_mode("dense")  # dense mode serves all of these
    logits(wrapped, ids, attention_mask=mask)
    assert wrapped.generate(ids[:1, :8], max_new_tokens=2, do_sample=False).shape == (1, 10)
    with pytest.raises(ValueError, match="mode must be \"lighthouse\" or \"dense\", got 'sparse'"):
        wrapped.set_mode("sparse")
    wrapped.set_mode("lighthouse")
    model.model.layers[2].self_attn.scaling = 0.5
    with pytest.raises(ValueError, match=r"layer 2 \(Lighthouse\): scaling = 0.5"):
        logits(wrapped, ids)
    model.model.layers[2].self_attn.scaling = 0.25
    model.model.layers[1].self_attn.attention_dropout = 0.1
    logits(wrapped, ids)  # eval: no dropout
    with pytest.raises(ValueError, match=r"layer 1 \(Lighthouse\): dropout = 0.1"):
        wrapped.train()(ids)
    model.model.layers[1].self_attn.attention_dropout = 0.0
    model = wrapped.unwrap().eval()

    with pytest.raises(ValueError, match="dense_layers entry 4 is out of range for 4 layers"):
        LighthouseWrapper(model, config=CFG, dense_layers=(0, 4))
    with pytest.raises(TypeError, match="config must be a lighthouse.LighthouseConfig"):
        LighthouseWrapper(model, config={"topk": 4})
    with pytest.raises(TypeError, match="model must be a transformers PreTrainedModel"):
        LighthouseWrapper(torch.nn.Linear(2, 2))
    wrapped = LighthouseWrapper(model, config=CFG)
    with pytest.raises(ValueError, match="model already has Lighthouse enabled"):
        LighthouseWrapper(model, config=CFG)
    wrapped.unwrap()
    model.config.attention_dropout = 0.1
    with pytest.raises(ValueError, match=r"model.config.attention_dropout = 0.1"):
        LighthouseWrapper(model, config=CFG)
    model.config.attention_dropout = 0.0
    sliding = tiny_llama(cls=transformers.MistralForCausalLM, sliding_window=16)
    with pytest.raises(ValueError, match="sliding_window"):
        LighthouseWrapper(sliding, config=CFG)


def test_example_runs_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "examples" / "hf_pretrain.py"), "--steps", "4",
                        "--dense-steps", "2", "--seq-len", "64", "--batch", "2",
                        "--sample-tokens", "8", "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "step 3: switched to dense attention" in r.stdout
    assert "step    4/4  dense" in r.stdout
    assert "reloaded with plain transformers: max logits difference 0.0e+00" in r.stdout
    assert "sample: 'Lighthouse attention" in r.stdout
    assert (tmp_path / "out" / "model.safetensors").exists()
