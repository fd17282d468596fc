"""The Python package `lighthouse` (python/lighthouse): import, version, the functional API
against `torch.ops.lighthouse` (bitwise), gradcheck through the package, LighthouseConfig
against the op's own validation, `lighthouse.nn`, torch.compile(fullgraph=True) and the
missing-library error.

CTest runs this file twice (label cpu): against the package staged in the build tree
(PYTHONPATH=build/python) and against the package `pip install .` put in site-packages
(LIGHTHOUSE_EXPECT_INSTALLED=1, no PYTHONPATH; scripts/setup.sh installs it).
"""

import inspect
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import torch

try:
    import lighthouse
    import lighthouse.nn
except ModuleNotFoundError as e:
    raise ImportError("package lighthouse not found: install it (`pip install "
                      "--no-build-isolation .`, scripts/setup.sh does) or put the staged "
                      "build/python on PYTHONPATH") from e

REPO = pathlib.Path(__file__).resolve().parents[2]
ops = torch.ops.lighthouse

# (B, N, H, Hkv, D) and (levels, pool, topk, tile_topk)
SHAPE, CFG = (2, 256, 4, 2, 16), dict(levels=3, pool=2, topk=16, tile_topk=8)
TINY, TINY_CFG = (1, 64, 2, 1, 4), dict(levels=3, pool=2, topk=4, tile_topk=2)


def qkv(shape, dtype=torch.float32, seed=0, requires_grad=False):
    B, N, H, Hkv, D = shape
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, N, H, D, generator=g, dtype=torch.float64)
    k = torch.randn(B, N, Hkv, D, generator=g, dtype=torch.float64)
    v = torch.randn(B, N, Hkv, D, generator=g, dtype=torch.float64)
    return [x.to(dtype).requires_grad_(requires_grad) for x in (q, k, v)]


def test_package_location_and_library():
    pkg = pathlib.Path(lighthouse.__file__).resolve().parent
    lib = pkg / "liblighthouse_ops.so"
    assert str(lib) in torch.ops.loaded_libraries, torch.ops.loaded_libraries
    if os.environ.get("LIGHTHOUSE_EXPECT_INSTALLED") == "1":
        assert REPO not in pkg.parents, (
            f"imported {pkg} from the repository, not the installed package: run "
            "`pip install --no-build-isolation .` (scripts/setup.sh does)")
        assert pkg.parent.name in ("site-packages", "dist-packages"), pkg


def test_version_is_the_cmake_project_version():
    text = (REPO / "CMakeLists.txt").read_text()
    want = re.search(r"project\(lighthouse VERSION ([0-9.]+)", text).group(1)
    assert lighthouse.__version__ == want
    if os.environ.get("LIGHTHOUSE_EXPECT_INSTALLED") == "1":
        from importlib.metadata import version
        assert version("lighthouse") == want


def test_functional_api_equals_the_ops_bitwise():
    q, k, v = qkv(SHAPE, seed=1)
    L, p, kk, m = CFG.values()
    o = lighthouse.attention(q, k, v, **CFG)
    assert o.shape == q.shape and o.abs().max() > 0
    assert torch.equal(o, ops.attention(q, k, v, L, p, kk, m))
    plan = lighthouse.plan(q, k, **CFG)
    slots, inverse = ops.plan(q, k, L, p, kk, m)
    assert isinstance(plan, lighthouse.Plan)
    assert torch.equal(plan.slots, slots) and torch.equal(plan.inverse, inverse)
    assert slots.shape[-1] < SHAPE[1]  # a real selection: fewer slots than tokens
    o2 = lighthouse.attention_with_plan(q, k, v, plan, levels=L, pool=p)
    assert torch.equal(o2, ops.attention_with_plan(q, k, v, slots, inverse, L, p))
    assert torch.equal(o2, o)
    od = lighthouse.dense_attention(q, k, v)
    assert torch.equal(od, ops.dense_attention(q, k, v))
    assert not torch.allclose(od, o)  # Lighthouse is not dense attention on this input


def test_defaults_are_the_ops_defaults():
    c = lighthouse.LighthouseConfig()
    # lighthouse::Config (include/lighthouse/config.h)
    defaults = (3, 4, 2048, 128, "norm", "auto", 4, "causal")
    assert (c.levels, c.pool, c.topk, c.tile_topk, c.scorer, c.sdpa, c.dilation,
            c.selection) == defaults
    sig = inspect.signature(lighthouse.attention).parameters
    assert tuple(sig[n].default for n in c.op_kwargs()) == defaults
    schema = {a.name: a.default_value for a in ops.attention.default._schema.arguments}
    assert tuple(schema[n] for n in ("tile_topk", "scorer", "sdpa", "dilation",
                                     "selection")) == defaults[3:]
    plan_schema = {a.name: a.default_value for a in ops.plan.default._schema.arguments}
    assert (plan_schema["v"], plan_schema["dilation"], plan_schema["selection"]) == (None, 4,
                                                                                      "causal")
    # Shapes only (meta tensors): the defaults select S = N / 16 + 2 * 4 * 2048 slots.
    q = torch.empty(1, 32768, 2, 8, device="meta")
    k = torch.empty(1, 32768, 1, 8, device="meta")
    plan = lighthouse.plan(q, k)
    assert plan.slots.shape == (1, 2, 32768 // 16 + 2 * 4 * 2048)
    assert lighthouse.attention(q, k, k).shape == q.shape


def test_gradients_equal_the_ops_and_gradcheck():
    q, k, v = qkv(SHAPE, seed=3, requires_grad=True)
    B, N, H, _, D = SHAPE
    g = torch.randn(B, N, H, D, generator=torch.Generator().manual_seed(4))  # dL/do
    grads = torch.autograd.grad(lighthouse.attention(q, k, v, **CFG), (q, k, v), g)
    want = torch.autograd.grad(ops.attention(q, k, v, *CFG.values()), (q, k, v), g)
    for a, b in zip(grads, want):
        assert a.abs().max() > 0 and torch.equal(a, b)

    q, k, v = qkv(TINY, dtype=torch.float64, seed=5, requires_grad=True)
    plan = lighthouse.plan(q.detach(), k.detach(), **TINY_CFG)
    L, p = TINY_CFG["levels"], TINY_CFG["pool"]
    fn = lambda q, k, v: lighthouse.attention_with_plan(q, k, v, plan, levels=L, pool=p)
    assert torch.autograd.gradcheck(fn, (q, k, v), eps=1e-6, atol=1e-8, rtol=1e-6, fast_mode=True)


def test_dilated_scorer_passes_through():
    q, k, v = qkv(SHAPE, seed=9)
    L, p, kk, m = CFG.values()
    cfg = lighthouse.LighthouseConfig(**CFG, scorer="dilated", dilation=2)
    o = lighthouse.attention(q, k, v, **cfg.op_kwargs())
    assert torch.equal(o, ops.attention(q, k, v, L, p, kk, m, "dilated", "auto", 2))
    assert not torch.equal(o, lighthouse.attention(q, k, v, **CFG))
    plan = lighthouse.plan(q, k, **CFG, scorer="dilated", v=v, dilation=2)
    assert torch.equal(plan.slots, ops.plan(q, k, L, p, kk, m, "dilated", v, 2)[0])
    mod = lighthouse.nn.LighthouseAttention(cfg)
    assert "dilation=2" in repr(mod)
    assert torch.equal(mod(q, k, v), o)
    assert torch.equal(mod.plan(q, k, v).slots, plan.slots)
    with pytest.raises(ValueError, match="v must be given"):
        lighthouse.plan(q, k, **CFG, scorer="dilated")
    lighthouse.LighthouseConfig(**CFG, scorer="dilated", dilation=3).check_seq_len(256)
    lighthouse.LighthouseConfig(**CFG, dilation=3).check_seq_len(256)  # norm ignores it
    qm, km = torch.empty(1, 4096, 4, 8, device="meta"), torch.empty(1, 4096, 2, 8, device="meta")
    assert lighthouse.attention(qm, km, km, scorer="dilated", topk=256).shape == qm.shape
    assert lighthouse.plan(qm, km, scorer="dilated", v=km, topk=256).slots.shape[:2] == (1, 4)


def test_nn_module_holds_a_config_and_adds_no_parameters():
    cfg = lighthouse.LighthouseConfig(**CFG)
    mod = lighthouse.nn.LighthouseAttention(cfg)
    assert mod.config is cfg and list(mod.parameters()) == []
    assert "topk=16" in repr(mod)
    q, k, v = qkv(SHAPE, seed=6)
    assert torch.equal(mod(q, k, v), ops.attention(q, k, v, *CFG.values()))
    plan = mod.plan(q, k)
    assert torch.equal(mod(q, k, v, plan), ops.attention_with_plan(q, k, v, *plan, 3, 2))
    with pytest.raises(TypeError, match="config must be a lighthouse.LighthouseConfig"):
        lighthouse.nn.LighthouseAttention({"levels": 3})


# Each bad field with the op's words: LighthouseConfig must agree with lighthouse::validate.
BAD_FIELDS = [
    ("levels", dict(levels=1), r"levels \(L\) must be in \[2, 16\], got 1"),
    ("levels", dict(levels=17), r"levels \(L\) must be in \[2, 16\], got 17"),
    ("pool", dict(pool=3), r"pool \(p\) must be a power of two in \[2, 16\], got 3"),
    ("pool", dict(pool=32), r"pool \(p\) must be a power of two in \[2, 16\], got 32"),
    ("tile_topk", dict(tile_topk=5), r"tile_topk \(m\) must be even and >= 2, got 5"),
    ("tile_topk", dict(tile_topk=0), r"tile_topk \(m\) must be even and >= 2, got 0"),
    ("topk", dict(topk=12, tile_topk=8), r"topk \(k\) must be a positive multiple of tile_topk"),
    ("topk", dict(topk=4, tile_topk=8), r"topk \(k\) must be a positive multiple of tile_topk"),
    ("scorer", dict(scorer="strided"), r'scorer must be "norm" or "dilated", got "strided"'),
    ("dilation", dict(dilation=0), r"dilation \(delta\) must be >= 1, got 0"),
    ("sdpa", dict(sdpa="fast"), r"sdpa.* must be one of auto\|cudnn\|flash\|efficient\|math"),
    ("selection", dict(selection="online"), r'selection must be "stratified" or "causal", '
                                            r'got "online"'),
]


@pytest.mark.parametrize("field,kw,msg", BAD_FIELDS, ids=[f"{f}-{kw}" for f, kw, _ in BAD_FIELDS])
def test_config_rejects_what_the_op_rejects(field, kw, msg):
    with pytest.raises(ValueError, match=rf"LighthouseConfig\.{msg}"):
        lighthouse.LighthouseConfig(**{**CFG, **kw})
    q, k, v = qkv(SHAPE, seed=7)
    args = {**CFG, "scorer": "norm", "sdpa": "auto", "dilation": 4, "selection": "stratified",
            **kw}
    with pytest.raises(ValueError, match=msg):
        ops.attention(q, k, v, args["levels"], args["pool"], args["topk"], args["tile_topk"],
                      args["scorer"], args["sdpa"], args["dilation"], args["selection"])


def test_config_types_and_sequence_lengths():
    with pytest.raises(TypeError, match=r"LighthouseConfig\.topk must be an int, got float"):
        lighthouse.LighthouseConfig(topk=256.0)
    with pytest.raises(TypeError, match=r"LighthouseConfig\.levels must be an int, got bool"):
        lighthouse.LighthouseConfig(levels=True)
    cfg = lighthouse.LighthouseConfig(**CFG)
    for n in (1, 4, 32, 256, 260, 1000):  # any length (SPEC.md §2)
        cfg.check_seq_len(n, "seq_len")
    with pytest.raises(ValueError, match=r"seq_len = 0 cannot be served .*must be positive"):
        cfg.check_seq_len(0, "seq_len")
    q, k, v = qkv((1, 260, 2, 1, 8))
    assert lighthouse.attention(q, k, v, **CFG).shape == q.shape
    plan = lighthouse.plan(q, k, **CFG)
    assert plan.slots.shape[2] == ops.plan(q, k, *CFG.values())[0].shape[2]


@pytest.mark.parametrize("name", ["levels", "pool", "topk", "tile_topk", "dilation"])
def test_integers_beyond_int64_name_the_argument(name):
    q, k, v = qkv(TINY)
    kw = {**TINY_CFG, "dilation": 4, name: 2**63}
    with pytest.raises(ValueError, match=rf"^{name} must fit in a signed 64-bit integer, got "
                                         rf"{2**63}$"):
        lighthouse.attention(q, k, v, **kw)
    with pytest.raises(ValueError, match=rf"^{name} must fit in a signed 64-bit integer"):
        lighthouse.plan(q, k, **kw)
    with pytest.raises(ValueError, match=rf"LighthouseConfig\.{name} must fit in a signed "
                                         rf"64-bit integer, got -{2**64}"):
        lighthouse.LighthouseConfig(**{**kw, name: -(2**64)})
    if name in ("levels", "pool"):
        with pytest.raises(ValueError, match=rf"^{name} must fit in a signed 64-bit integer"):
            lighthouse.attention_with_plan(q, k, v, lighthouse.plan(q, k, **TINY_CFG),
                                           **{"levels": 3, "pool": 2, name: 2**63})


def test_bad_tensors_name_the_argument():
    q, k, v = qkv(SHAPE)
    with pytest.raises(ValueError, match=r"q must be \[B, N, H, D\]"):
        lighthouse.attention(q[0], k, v, **CFG)
    with pytest.raises(TypeError, match="k dtype must equal q dtype"):
        lighthouse.attention(q, k.double(), v, **CFG)
    with pytest.raises(ValueError, match="slots"):
        lighthouse.attention_with_plan(q, k, v, (torch.zeros(2, 4, 3, dtype=torch.long),
                                                 torch.zeros(2, 4, 448, dtype=torch.long)),
                                       levels=3, pool=2)


def test_compile_fullgraph_of_the_functional_api():
    torch._dynamo.reset()
    cfg = lighthouse.LighthouseConfig(**CFG)

    def fn(q, k, v):
        plan = lighthouse.plan(q, k, levels=cfg.levels, pool=cfg.pool, topk=cfg.topk,
                               tile_topk=cfg.tile_topk)
        o = lighthouse.attention_with_plan(q, k, v, plan, levels=cfg.levels, pool=cfg.pool)
        o = o + lighthouse.attention(q, k, v, **cfg.op_kwargs())
        return o - lighthouse.dense_attention(q, k, v)

    q, k, v = qkv(SHAPE, seed=8, requires_grad=True)
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    out = compiled(q, k, v)
    want = fn(q, k, v)
    assert torch.allclose(out, want, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    want_grads = torch.autograd.grad(want.square().sum(), (q, k, v))
    for a, b in zip(grads, want_grads):
        assert a.abs().max() > 0 and torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_missing_library_is_a_clear_import_error(tmp_path):
    src = pathlib.Path(lighthouse.__file__).parent
    dst = tmp_path / "lighthouse"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    r = subprocess.run([sys.executable, "-c", "import lighthouse"], cwd=tmp_path,
                       capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode != 0
    assert "ImportError: lighthouse: the ops library" in r.stderr
    assert "liblighthouse_ops.so is missing" in r.stderr and "pip install" in r.stderr


def test_causal_selection_argument():
    # selection="causal" reaches the op (SPEC.md §12) through the functional API, the config
    # and the module; its plan differs from the published one and redrawing the inputs after
    # a position leaves the outputs before it bitwise unchanged.
    q, k, v = qkv(SHAPE, dtype=torch.float64, seed=8)
    causal = lighthouse.LighthouseConfig(**CFG, selection="causal")
    o = lighthouse.attention(q, k, v, **CFG, selection="causal")
    assert torch.equal(o, ops.attention(q, k, v, *CFG.values(), "norm", "auto", 4, "causal"))
    assert torch.equal(o, lighthouse.nn.LighthouseAttention(causal)(q, k, v))
    assert "selection='causal'" in repr(lighthouse.nn.LighthouseAttention(causal))
    p_c = lighthouse.plan(q, k, **CFG, selection="causal")
    assert torch.equal(p_c.slots, lighthouse.nn.LighthouseAttention(causal).plan(q, k).slots)
    assert torch.equal(p_c.slots, lighthouse.plan(q, k, **CFG).slots)  # causal is the default
    assert not torch.equal(p_c.slots, lighthouse.plan(q, k, **CFG, selection="stratified").slots)
    t = 100
    q2, k2, v2 = (x.clone() for x in (q, k, v))
    for x, y in zip((q2, k2, v2), qkv(SHAPE, dtype=torch.float64, seed=9)):
        x[:, t + 1:] = y[:, t + 1:]
    o2 = lighthouse.attention(q2, k2, v2, **CFG, selection="causal")
    assert torch.equal(o2[:, :t + 1], o[:, :t + 1]) and not torch.equal(o2, o)
