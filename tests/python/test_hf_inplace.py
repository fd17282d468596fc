"""The seed articles' API and Lighthouse in place on a transformers model (CPU, fp32).

- `from lighthouse import LighthouseWrapper` with `pool_ratios` / `select_topk` (the mapping
  onto levels / pool / topk, and ratios refused with the reason).
- `lighthouse.hf.enable` / `set_mode` / `disable`: the model stays the same PreTrainedModel
  (class, forward signature, state_dict keys), equals the wrapper, saves checkpoints plain
  transformers loads, refuses a KV cache in Lighthouse mode and leaves nothing behind.
- `LighthouseCallback` in the HF Trainer: stage 2 from the given step, also after
  `resume_from_checkpoint`; checkpoints load with plain `from_pretrained`.
- `examples/hf_trainer.py` end to end.
"""

import inspect
import json
import pathlib
import subprocess
import sys

import pytest
import torch
import transformers

import lighthouse
import lighthouse.hf
from lighthouse import LighthouseConfig

REPO = pathlib.Path(__file__).resolve().parents[2]
CFG = LighthouseConfig(levels=3, pool=2, topk=4, tile_topk=2)
N = 64


def tiny_llama(seed=0, layers=4, cls=transformers.LlamaForCausalLM):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=layers, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=512)
    return cls(cfg).eval()


def tokens(batch=2, n=N, seed=1):
    return torch.randint(0, 97, (batch, n), generator=torch.Generator().manual_seed(seed))


def logits(model, ids, **kw):
    with torch.no_grad():
        return model(ids, **kw).logits


def test_pool_ratios_map_onto_levels_pool_topk():
    c = LighthouseConfig.from_pool_ratios([0.5, 0.25, 0.125], select_topk=1024)
    assert (c.levels, c.pool, c.topk, c.tile_topk) == (4, 2, 1024, 128)
    assert c.pool_ratios == (0.5, 0.25, 0.125)
    c = LighthouseConfig.from_pool_ratios([0.25, 0.0625], tile_topk=64, scorer="dilated")
    assert (c.levels, c.pool, c.topk, c.tile_topk, c.scorer) == (3, 4, 2048, 64, "dilated")
    assert LighthouseConfig(levels=5, pool=8).pool_ratios == (8.0 ** -1, 8.0 ** -2, 8.0 ** -3,
                                                              8.0 ** -4)
    base = LighthouseConfig(tile_topk=64, selection="stratified")
    c = base.with_ratios(select_topk=512)
    assert (c.levels, c.pool, c.topk, c.tile_topk, c.selection) == (3, 4, 512, 64, "stratified")
    assert base.with_ratios(pool_ratios=[0.0625]).pool == 16
    for ratios, msg in [([0.5, 0.3], r"successive powers of one factor 1/p, because every "
                                     r"level pools p = 2 entries.*pool_ratios\[1\] = 0.3, "
                                     r"expected 0.25"),
                        ([0.25, 0.125], r"pool_ratios\[1\] = 0.125, expected 0.0625"),
                        ([0.3], r"pool_ratios\[0\] = 0.3 must be 1/p for a pooling factor p "
                                r"that is a power of two in \[2, 16\]"),
                        ([1.0], r"pool_ratios\[0\] = 1.0 must be 1/p"),
                        ([1 / 32], r"pool_ratios\[0\] = 0.03125 must be 1/p"),
                        ([], "pool_ratios must hold 1 to 15 ratios"),
                        ([0.5] * 16, "pool_ratios must hold 1 to 15 ratios")]:
        with pytest.raises(ValueError, match=msg):
            LighthouseConfig.from_pool_ratios(ratios)
    with pytest.raises(TypeError, match="pool_ratios must be a list of floats"):
        LighthouseConfig.from_pool_ratios("0.5")
    with pytest.raises(TypeError, match="pool_ratios entries must be floats"):
        LighthouseConfig.from_pool_ratios([0.5, "0.25"])
    with pytest.raises(ValueError, match=r"select_topk = 1000 \(LighthouseConfig.topk\): .*"
                                         r"multiple of tile_topk \(m\) = 128"):
        LighthouseConfig.from_pool_ratios([0.5], select_topk=1000)
    with pytest.raises(TypeError, match="select_topk must be an int"):
        LighthouseConfig.from_pool_ratios([0.5], select_topk=10.0)


def test_the_articles_code_runs_as_written():
    from lighthouse import LighthouseWrapper  # the articles' import line
    assert LighthouseWrapper is lighthouse.hf.LighthouseWrapper
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=6, num_attention_heads=4,
                                      num_key_value_heads=2)
    base_model = transformers.LlamaModel(config)
    model = LighthouseWrapper(base_model,
                              pool_ratios=[0.5, 0.25, 0.125],  # example pyramid depths
                              select_topk=1024)  # size of dense sub-sequence
    assert model.lighthouse_config == LighthouseConfig(levels=4, pool=2, topk=1024)
    assert model.dense_layers == (0, 1, 4, 5) and model.mode == "lighthouse"
    ids = tokens(batch=1, n=512)
    out = model(ids).last_hidden_state
    out.square().mean().backward()
    assert torch.isfinite(out).all()
    assert base_model.layers[2].self_attn.q_proj.weight.grad.abs().sum() > 0
    assert model.unwrap() is base_model
    assert base_model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        dense = base_model(ids).last_hidden_state
    assert not torch.allclose(out, dense, atol=1e-4)  # the op ran in layers 2 and 3


def test_enable_keeps_the_model_a_pretrained_model():
    model = tiny_llama()
    ids = tokens()
    want = logits(model, ids)
    cls, sig = type(model), inspect.signature(model.forward)
    keys = list(model.state_dict().keys())
    assert lighthouse.hf.get_mode(model) is None
    assert lighthouse.hf.enable(model, CFG, dense_layers=(0, -1)) is model
    assert type(model) is cls and inspect.signature(model.forward) == sig
    assert list(model.state_dict().keys()) == keys
    assert lighthouse.hf.get_mode(model) == "lighthouse"
    light = logits(model, ids)
    assert rel_err(light, want) > 1e-3
    lighthouse.hf.set_mode(model, "dense")
    assert torch.equal(logits(model, ids), want)
    lighthouse.hf.set_mode(model, "lighthouse")
    assert torch.equal(logits(model, ids), light)
    with pytest.raises(ValueError, match="model already has Lighthouse enabled"):
        lighthouse.hf.enable(model, CFG)
    with pytest.raises(ValueError, match="mode must be \"lighthouse\" or \"dense\", got 'x'"):
        lighthouse.hf.set_mode(model, "x")
    assert lighthouse.hf.disable(model) is model
    assert model.config._attn_implementation == "sdpa"
    assert not any(hasattr(m, "_lighthouse_route") for m in model.modules())
    assert not model.model._forward_pre_hooks
    assert torch.equal(logits(model, ids), want)
    with pytest.raises(ValueError, match="set_mode: Lighthouse is not enabled on this "
                                         "LlamaForCausalLM"):
        lighthouse.hf.set_mode(model, "dense")
    # The wrapper is this, and nothing else.
    wrapped = lighthouse.LighthouseWrapper(model, config=CFG, dense_layers=(0, -1))
    assert lighthouse.hf.get_mode(model) == "lighthouse"
    assert torch.equal(logits(wrapped, ids), light)
    assert wrapped.unwrap() is model and lighthouse.hf.get_mode(model) is None
    # The articles' spelling on enable, with config supplying the rest.
    lighthouse.hf.enable(model, LighthouseConfig(tile_topk=2), (0, -1), pool_ratios=[0.5, 0.25],
                         select_topk=4)
    assert torch.equal(logits(model, ids), light)  # the same config as CFG
    lighthouse.hf.disable(model)


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_checkpoints_saved_while_enabled_load_with_plain_transformers(tmp_path):
    model = tiny_llama()
    ids = tokens()
    want = logits(model, ids)
    lighthouse.hf.enable(model, CFG, dense_layers=(0, -1))
    model.save_pretrained(tmp_path / "m")
    assert "lighthouse" not in (tmp_path / "m" / "config.json").read_text()
    assert json.loads((tmp_path / "m" / "config.json").read_text())["use_cache"] is True
    loaded = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "m")).eval()
    assert type(loaded) is transformers.LlamaForCausalLM
    assert loaded.config._attn_implementation == "sdpa"
    assert torch.equal(logits(loaded, ids), want)
    # Lighthouse mode defaults to use_cache=False and refuses a cache or generate().
    out = model(ids)
    assert getattr(out, "past_key_values", None) is None and getattr(out, "cache", None) is None
    with pytest.raises(ValueError, match=r"use_cache / past_key_values: Lighthouse mode is for "
                                         r"training"):
        model(ids, use_cache=True)
    with pytest.raises(ValueError, match="use_cache / past_key_values"):
        model.generate(ids[:1, :8], max_new_tokens=2)
    lighthouse.hf.set_mode(model, "dense")
    assert model.generate(ids[:1, :8], max_new_tokens=2, do_sample=False).shape == (1, 10)


class _Windows(torch.utils.data.Dataset):
    def __init__(self, count, n=32):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 97, (count, n), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _trainer(model, out, max_steps, callbacks):
    args = transformers.TrainingArguments(
        output_dir=str(out), max_steps=max_steps, per_device_train_batch_size=2,
        learning_rate=1e-3, save_steps=2, logging_steps=1, report_to=[], use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, seed=0)
    return transformers.Trainer(model=model, args=args, train_dataset=_Windows(2 * max_steps),
                                callbacks=callbacks)


def test_trainer_callback_switches_to_dense_and_survives_resume(tmp_path):
    from lighthouse.hf import LighthouseCallback
    cfg = LighthouseConfig(levels=2, pool=2, topk=4, tile_topk=2)

    def run(max_steps, resume=None):
        model = tiny_llama(seed=5).train()
        lighthouse.hf.enable(model, cfg, dense_layers=(0, -1))
        modes = []
        model.register_forward_pre_hook(lambda m, a: modes.append(lighthouse.hf.get_mode(m)))
        trainer = _trainer(model, tmp_path / "out", max_steps,
                           [LighthouseCallback(dense_from_step=2)])
        trainer.train(resume_from_checkpoint=resume)
        return model, modes

    model, modes = run(4)
    assert modes == ["lighthouse", "lighthouse", "dense", "dense"]
    ckpt = tmp_path / "out" / "checkpoint-4"
    plain = transformers.AutoModelForCausalLM.from_pretrained(str(ckpt))
    assert type(plain) is transformers.LlamaForCausalLM
    got = plain.state_dict()
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items())
    # Resumed after step 2: steps 3 and 4 are dense, and the weights equal the straight run's.
    resumed, modes = run(4, resume=str(tmp_path / "out" / "checkpoint-2"))
    assert modes == ["dense", "dense"]
    for k, v in model.state_dict().items():
        assert torch.allclose(resumed.state_dict()[k], v, rtol=1e-5, atol=1e-6), k
    with pytest.raises(ValueError, match="dense_from_step must be an int >= 0"):
        LighthouseCallback(dense_from_step=-1)
    plain_model = tiny_llama()
    with pytest.raises(ValueError, match="LighthouseCallback: the Trainer's model "
                                         r"\(LlamaForCausalLM\) does not have Lighthouse enabled"):
        _trainer(plain_model, tmp_path / "x", 1, [LighthouseCallback(1)]).train()


def test_example_hf_trainer_runs_and_its_checkpoints_are_plain(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(REPO / "examples" / "hf_trainer.py"),
                        "--output-dir", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert any(line.startswith("step   8/12  lighthouse") for line in lines), r.stdout
    assert any(line.startswith("step   9/12  dense") for line in lines), r.stdout
    assert "loaded with plain transformers (LlamaForCausalLM); max logits difference to the " \
           "trained model 0.0e+00" in r.stdout
    for step in (4, 8, 12):
        ckpt = out / f"checkpoint-{step}"
        cfg = json.loads((ckpt / "config.json").read_text())
        assert cfg["architectures"] == ["LlamaForCausalLM"] and "lighthouse" not in str(cfg)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(out / "checkpoint-8"))
    assert torch.isfinite(model(torch.tensor([[256, 72, 105]])).logits).all()
