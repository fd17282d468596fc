// Run config: TOML / JSON / override parsing, serialization round trips, the shipped configs
// (tiny is the built-in default; the paper config is SPEC.md §9), resume compatibility.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/export.h"
#include "train/helpers.h"
#include "train/launch.h"
#include "train/run_config.h"

namespace lighthouse::train {
namespace {

using testing::test_config;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(RunConfig, OverridesParseByKind) {
  RunConfig c = test_config();
  apply_override(c, "optim.lr=2e-3");
  apply_override(c, "train.context = 98_304");
  apply_override(c, "model.dense_layers=[0, 1,28,29]");
  apply_override(c, "run.name=\"quoted\"");
  apply_override(c, "log.progress=false");
  apply_value(c, "optim.weight_decay", "0");  // an integer is a valid float
  EXPECT_DOUBLE_EQ(c.optim.lr, 2e-3);
  EXPECT_EQ(c.train.context, 98304);
  EXPECT_EQ(c.model.dense_layers, (std::vector<int64_t>{0, 1, 28, 29}));
  EXPECT_EQ(c.run.name, "quoted");
  EXPECT_FALSE(c.log.progress);
  EXPECT_EQ(c.optim.weight_decay, 0.0);
  apply_override(c, "model.dense_layers=[]");
  ASSERT_TRUE(c.model.dense_layers.has_value());
  EXPECT_TRUE(c.model.dense_layers->empty());
}

// model.dense_layers: absent means the default {0, 1, n-2, n-1}, written out explicitly; an
// empty list means none, so Lighthouse runs in every layer of stage 1.
TEST(RunConfig, DenseLayersAbsentIsTheDefaultEmptyIsNone) {
  RunConfig c = test_config();
  c.model.dense_layers = std::nullopt;
  apply_override(c, "model.n_layers=6");
  EXPECT_EQ(model::resolved_dense_layers(to_model_config(c)),
            (std::vector<int64_t>{0, 1, 4, 5}));
  EXPECT_NE(to_toml(c).find("dense_layers = [0, 1, 4, 5]\n"), std::string::npos) << to_toml(c);
  RunConfig file = test_config();
  file.model.dense_layers = std::nullopt;
  apply_toml(file, "[model]\nn_layers = 6\n", "no-dense-layers.toml");  // key absent
  EXPECT_FALSE(file.model.dense_layers.has_value());
  EXPECT_NO_THROW(validate(file));

  apply_override(c, "model.dense_layers=[]");
  EXPECT_NO_THROW(validate(c));  // before: "all 6 layers are dense"
  EXPECT_TRUE(model::resolved_dense_layers(to_model_config(c)).empty());
  EXPECT_NE(to_toml(c).find("dense_layers = []\n"), std::string::npos);
  RunConfig from_json;
  apply_json(from_json, nlohmann::json::parse(to_json(c).dump()), "round trip");
  ASSERT_TRUE(from_json.model.dense_layers.has_value());
  EXPECT_TRUE(from_json.model.dense_layers->empty());

  // A config saved before config_version 2 meant the default by [].
  nlohmann::json old = to_json(c);
  old.erase("config_version");
  RunConfig old_run;
  apply_json(old_run, old, "old checkpoint");
  EXPECT_FALSE(old_run.model.dense_layers.has_value());
  EXPECT_EQ(model::resolved_dense_layers(to_model_config(old_run)),
            (std::vector<int64_t>{0, 1, 4, 5}));
}

// model.init brings the shapes, not model.dense_layers (not a Hugging Face key): the tiny
// config's [0, 3] stays without --config (before, the imported 4 layers' default made all 4
// dense and the run was refused), and a config file that leaves it out gets the default.
TEST(RunConfig, ModelInitKeepsTheConfiguredDenseLayers) {
  const std::string dir = testing::scratch_dir("init");
  model::Llama tiny(to_model_config(RunConfig{}));
  model::export_hf(tiny, dir + "/hf", at::kFloat);
  Launch l;
  l.overrides = {{"model.init", dir + "/hf"}};
  const dist::LaunchEnv one;
  RunConfig cfg;
  ASSERT_NO_THROW(cfg = resolve(l, one).cfg);
  EXPECT_EQ(cfg.model.dense_layers, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(cfg.model.n_layers, 4);
  testing::write_file(dir + "/dense.toml", "[train]\nattention = \"dense\"\n");
  l.config_file = dir + "/dense.toml";
  EXPECT_FALSE(resolve(l, one).cfg.model.dense_layers.has_value());
}

TEST(RunConfig, ErrorsStartWithTheKey) {
  RunConfig c = test_config();
  EXPECT_EQ(error_of([&] { apply_override(c, "optim.lrr=1"); }).rfind("optim.lrr: unknown key", 0),
            0u);
  EXPECT_NE(error_of([&] { apply_override(c, "optim.lrr=1"); }).find("did you mean optim.lr?"),
            std::string::npos);
  EXPECT_EQ(error_of([&] {
              apply_override(c, "train.steps=1.5");
            }).rfind("train.steps: expected an integer", 0),
            0u);
  EXPECT_EQ(error_of([&] { apply_override(c, "log.progress=1"); }).rfind("log.progress:", 0), 0u);
  EXPECT_EQ(error_of([&] {
              apply_override(c, "model.dense_layers=[a]");
            }).rfind("model.dense_layers:", 0),
            0u);
  EXPECT_EQ(error_of([&] { apply_toml(c, "[optim]\nlr = \"fast\"\n", "x.toml"); }),
            "optim.lr: expected a number (x.toml:2)");
  EXPECT_EQ(error_of([&] {
              apply_toml(c, "[optim]\nlr = 1e-3\nfoo = 1\n", "x.toml");
            }).rfind("optim.foo: unknown key (x.toml:3)", 0),
            0u);
  EXPECT_EQ(error_of([&] {
              apply_toml(c, "[optim\n", "x.toml");
            }).rfind("x.toml:1: TOML syntax error", 0),
            0u);
  for (const char* bad : {"train.steps=0", "optim.beta1=1", "lighthouse.pool=3",
                          "train.context=1", "schedule.min_lr_factor=2", "run.device=tpu"}) {
    RunConfig b = test_config();
    apply_override(b, bad);
    const std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    EXPECT_EQ(error_of([&] { validate(b); }).rfind(key + ":", 0), 0u) << bad;
  }
}

TEST(RunConfig, ValModesParseAndValidate) {
  RunConfig c = test_config();
  using model::AttentionMode;
  const std::vector<AttentionMode> both = {AttentionMode::Dense, AttentionMode::Lighthouse};
  EXPECT_EQ(c.val.modes, both);  // the default
  apply_override(c, "val.modes=[lighthouse]");
  EXPECT_EQ(c.val.modes, (std::vector<AttentionMode>{AttentionMode::Lighthouse}));
  apply_override(c, "val.modes=\"dense\", 'lighthouse'");
  EXPECT_EQ(c.val.modes, both);
  apply_toml(c, "[val]\nmodes = [\"dense\"]\n", "x.toml");
  EXPECT_EQ(c.val.modes, (std::vector<AttentionMode>{AttentionMode::Dense}));
  RunConfig j;
  apply_json(j, nlohmann::json::parse(to_json(c).dump()), "round trip");
  EXPECT_EQ(j.val.modes, c.val.modes);
  EXPECT_EQ(error_of([&] { apply_toml(c, "[val]\nmodes = [1]\n", "x.toml"); }),
            "val.modes: expected a list of strings (x.toml:2)");
  for (const auto& [bad, msg] : std::vector<std::pair<std::string, std::string>>{
           {"val.modes=[dense, sparse]", "val.modes: must be one of dense | lighthouse"},
           {"val.modes=[dense, dense]", "val.modes: \"dense\" is listed twice"},
           {"val.modes=[]", "val.modes: must list at least one"}}) {
    RunConfig b = test_config();
    // An unknown mode is rejected where it is read; duplicates and [] by validate.
    EXPECT_EQ(error_of([&] {
                apply_override(b, bad);
                validate(b);
              }).rfind(msg, 0),
              0u)
        << bad;
  }
}

TEST(RunConfig, TomlAndJsonRoundTripExactly) {
  RunConfig c = test_config();
  apply_override(c, "optim.lr=0.0013");
  apply_override(c, "model.rope_theta=500000");
  apply_override(c, "run.name=with \"quotes\" and \\ backslash");
  RunConfig from_toml, from_json;
  apply_toml(from_toml, to_toml(c), "round trip");
  apply_json(from_json, nlohmann::json::parse(to_json(c).dump()), "round trip");
  EXPECT_EQ(to_toml(from_toml), to_toml(c));
  EXPECT_EQ(to_json(from_json), to_json(c));
  EXPECT_EQ(from_toml.optim.lr, 0.0013);
}

// lighthouse.scorer = "dilated" with lighthouse.dilation reaches the model's lighthouse::Config,
// survives TOML and JSON, and a dilation that does not divide the context names its key.
TEST(RunConfig, DilatedScorerKeys) {
  RunConfig c = test_config();
  apply_override(c, "lighthouse.scorer=dilated");
  apply_override(c, "lighthouse.dilation=8");
  validate(c);
  const model::ModelConfig m = to_model_config(c);
  EXPECT_EQ(m.lighthouse.scorer, Scorer::Dilated);
  EXPECT_EQ(m.lighthouse.dilation, 8);
  RunConfig from_toml, from_json;
  apply_toml(from_toml, to_toml(c), "round trip");
  apply_json(from_json, nlohmann::json::parse(to_json(c).dump()), "round trip");
  EXPECT_EQ(from_toml.model.lighthouse.scorer, Scorer::Dilated);
  EXPECT_EQ(from_toml.model.lighthouse.dilation, 8);
  EXPECT_EQ(from_json.model.lighthouse.dilation, 8);
  EXPECT_EQ(to_model_config(RunConfig{}).lighthouse.scorer, Scorer::Norm);
  EXPECT_EQ(RunConfig{}.model.lighthouse.dilation, Config{}.dilation);
  apply_override(c, "lighthouse.dilation=3");  // any N (SPEC.md §4): δ need not divide it
  EXPECT_NO_THROW(validate(c));
  apply_override(c, "lighthouse.dilation=0");
  EXPECT_EQ(error_of([&] { validate(c); }).rfind("lighthouse.dilation: dilation (delta) must be", 0),
            0u);
  apply_override(c, "lighthouse.scorer=norm");
  apply_override(c, "lighthouse.dilation=3");
  EXPECT_NO_THROW(validate(c));  // the norm scorer does not read it
}

TEST(RunConfig, ShippedConfigsAreValid) {
  const std::filesystem::path dir = LIGHTHOUSE_SOURCE_DIR "/configs";
  RunConfig tiny_file;
  tiny_file.model.dense_layers = std::nullopt;  // every key must come from the file
  tiny_file.model.lighthouse.topk = 2048;
  apply_toml_file(tiny_file, (dir / "tiny.toml").string());
  EXPECT_EQ(to_toml(tiny_file), to_toml(RunConfig{}));  // the defaults are the tiny config
  validate(RunConfig{});
  for (const char* name :
       {"small-gpu.toml", "paper-530m-98k.toml", "replica-64k.toml", "replica-64k-needles.toml"}) {
    RunConfig c;
    apply_toml_file(c, (dir / name).string());
    EXPECT_NO_THROW(validate(c)) << name;
  }
  RunConfig cont;  // sizes and data come from model.init and data.source: a Llama 3.1 8B's
  apply_toml_file(cont, (dir / "continue-llama-128k.toml").string());
  EXPECT_THROW(validate(cont), ConfigError);  // data.source = "" must be given
  for (const char* kv : {"data.source=tokens", "model.n_layers=32", "model.d_model=4096",
                         "model.n_heads=32", "model.n_kv_heads=8", "model.head_dim=128"})
    apply_override(cont, kv);
  EXPECT_NO_THROW(validate(cont));
}

TEST(RunConfig, Replica64kNeedlesIsReplica64kWithNeedles) {
  RunConfig plain, needles;
  apply_toml_file(plain, LIGHTHOUSE_SOURCE_DIR "/configs/replica-64k.toml");
  apply_toml_file(needles, LIGHTHOUSE_SOURCE_DIR "/configs/replica-64k-needles.toml");
  EXPECT_GT(needles.data.needles.records, 0);
  plain.run.name = needles.run.name;
  plain.data.needles = needles.data.needles;
  EXPECT_EQ(to_toml(needles), to_toml(plain));
}

TEST(RunConfig, Replica64kIsSmallGpuAt64k) {
  RunConfig small, replica;
  apply_toml_file(small, LIGHTHOUSE_SOURCE_DIR "/configs/small-gpu.toml");
  apply_toml_file(replica, LIGHTHOUSE_SOURCE_DIR "/configs/replica-64k.toml");
  for (const char* kv :
       {"run.name=replica-64k", "train.context=65536", "train.batch_size=1", "lighthouse.topk=1024",
        "data.builtin_doc_bytes=65536", "data.builtin_docs=700", "data.val_tokens=2097152",
        "val.every=50", "val.batches=8", "val.modes=[\"dense\"]"})
    apply_override(small, kv);
  EXPECT_EQ(to_toml(replica), to_toml(small));
}

TEST(RunConfig, PaperConfigIsSpecSection9) {
  RunConfig c;
  apply_toml_file(c, LIGHTHOUSE_SOURCE_DIR "/configs/paper-530m-98k.toml");
  EXPECT_EQ(c.model.d_model, 1024);
  EXPECT_EQ(c.model.n_layers, 30);
  EXPECT_EQ(c.model.n_heads, 8);
  EXPECT_EQ(c.model.head_dim, 128);
  EXPECT_EQ(c.model.ffn_hidden, 1536);
  EXPECT_EQ(c.model.dense_layers, (std::vector<int64_t>{0, 1, 28, 29}));
  EXPECT_EQ(c.model.rope_theta, 10000.0);
  EXPECT_EQ(c.train.context, 98304);
  EXPECT_EQ(c.model.lighthouse.levels, 3);
  EXPECT_EQ(c.model.lighthouse.pool, 4);
  EXPECT_EQ(c.model.lighthouse.topk, 1536);
  EXPECT_EQ(c.optim.lr, 2e-3);
  EXPECT_EQ(c.optim.beta1, 0.9);
  EXPECT_EQ(c.optim.beta2, 0.95);
  EXPECT_EQ(c.optim.weight_decay, 0.1);
  EXPECT_EQ(c.optim.eps, 1e-8);
  EXPECT_EQ(c.optim.clip, 1.0);
  EXPECT_EQ(c.schedule.warmup_steps, 2000);
  EXPECT_EQ(c.train.steps, 16000);
  EXPECT_EQ(c.train.stage1_steps, 10000);
  EXPECT_EQ(c.train.batch_size * c.train.grad_accum, 32);  // global batch 32
  EXPECT_EQ(c.train.precision, "bf16");
}

TEST(RunConfig, ResumeMayNotChangeDataOrShapes) {
  const RunConfig saved = test_config();
  RunConfig now = saved;
  now.train.attention = model::AttentionMode::Dense;
  now.train.steps = 20;
  now.optim.lr = 1e-3;
  EXPECT_NO_THROW(check_resume_compatible(saved, now));
  for (const char* change :
       {"train.context=512", "model.d_model=64", "run.seed=3", "data.builtin_docs=9"}) {
    RunConfig c = saved;
    apply_override(c, change);
    const std::string key = std::string(change).substr(0, std::string(change).find('='));
    EXPECT_EQ(error_of([&] {
                check_resume_compatible(saved, c);
              }).rfind(key + ": cannot change when resuming", 0),
              0u)
        << change;
  }
}

// The global batch (dp x batch_size x grad_accum) is the recipe; its factors may change.
TEST(RunConfig, ResumeKeepsTheGlobalBatchNotItsFactors) {
  const RunConfig saved = test_config();  // batch_size 2, grad_accum 1, one process
  RunConfig now = saved;
  now.train.batch_size = 1;
  now.train.grad_accum = 2;
  EXPECT_NO_THROW(check_resume_global_batch(saved, 1, now, 1));
  now.train.grad_accum = 1;
  EXPECT_NO_THROW(check_resume_global_batch(saved, 1, now, 2));  // 2 ranks x 1
  now.train.batch_size = 4;
  EXPECT_EQ(error_of([&] { check_resume_global_batch(saved, 1, now, 1); })
                .rfind("train.batch_size: dp x train.batch_size x train.grad_accum", 0),
            0u);
  EXPECT_NE(error_of([&] { check_resume_global_batch(saved, 2, saved, 1); })
                .find("checkpoint has 4 sequences per step, got 1 x 2 x 1 = 2"),
            std::string::npos);
}

// Checkpoints and exports written before lighthouse.combine existed were trained with the sum;
// a saved config that names the key keeps it.
TEST(RunConfig, SavedConfigWithoutCombineMeansSum) {
  RunConfig fresh;
  ASSERT_EQ(fresh.model.lighthouse_combine, model::LighthouseCombine::Mean);
  nlohmann::json j = to_json(fresh);
  j["lighthouse"].erase("combine");
  RunConfig old_run;
  apply_json(old_run, j, "old checkpoint");
  EXPECT_EQ(old_run.model.lighthouse_combine, model::LighthouseCombine::Sum);
  RunConfig new_run;
  apply_json(new_run, to_json(fresh), "new checkpoint");
  EXPECT_EQ(new_run.model.lighthouse_combine, model::LighthouseCombine::Mean);
}

// lighthouse.selection (SPEC.md §12): causal by default, stratified for saved configs without
// the key (they were trained with the published rule), either through TOML, JSON and --set,
// into the model's lighthouse::Config; a bad name is an error naming the key.
TEST(RunConfig, SelectionKeyRoundTripsIntoTheModel) {
  RunConfig fresh;
  EXPECT_EQ(fresh.model.lighthouse.selection, Selection::Causal);
  EXPECT_EQ(to_model_config(fresh).lighthouse.selection, Selection::Causal);
  nlohmann::json j = to_json(fresh);
  j["lighthouse"].erase("selection");
  RunConfig old_run;
  apply_json(old_run, j, "old checkpoint");
  EXPECT_EQ(old_run.model.lighthouse.selection, Selection::Stratified);

  RunConfig c = test_config();
  apply_override(c, "lighthouse.selection=stratified");
  EXPECT_NO_THROW(validate(c));
  EXPECT_EQ(to_model_config(c).lighthouse.selection, Selection::Stratified);
  RunConfig from_toml, from_json;
  apply_toml(from_toml, to_toml(c), "round trip");
  apply_json(from_json, nlohmann::json::parse(to_json(c).dump()), "round trip");
  EXPECT_EQ(from_toml.model.lighthouse.selection, Selection::Stratified);
  EXPECT_EQ(from_json.model.lighthouse.selection, Selection::Stratified);
  RunConfig causal_json;  // an explicit causal survives the saved-config rule
  apply_override(c, "lighthouse.selection=causal");
  apply_json(causal_json, nlohmann::json::parse(to_json(c).dump()), "round trip");
  EXPECT_EQ(causal_json.model.lighthouse.selection, Selection::Causal);

  // A name the enum does not know is rejected where it is read.
  const std::string err = error_of([&] { apply_override(c, "lighthouse.selection=online"); });
  EXPECT_EQ(err.rfind("lighthouse.selection:", 0), 0u) << err;
  EXPECT_NE(err.find("\"stratified\" or \"causal\""), std::string::npos) << err;
}

// model.fused_kernels and model.grouped_projections: true by default, through --set, TOML and
// JSON into the model's config; a saved config without the key keeps the default; a non-boolean
// names the key.
TEST(RunConfig, ModelSwitchKeysRoundTripIntoTheModel) {
  const std::vector<std::pair<std::string, bool model::ModelConfig::*>> keys{
      {"fused_kernels", &model::ModelConfig::fused_kernels},
      {"grouped_projections", &model::ModelConfig::grouped_projections}};
  for (const auto& [name, field] : keys) {
    SCOPED_TRACE(name);
    const std::string key = "model." + name;
    RunConfig fresh;
    EXPECT_TRUE(fresh.model.*field);
    EXPECT_TRUE(to_model_config(fresh).*field);
    nlohmann::json j = to_json(fresh);
    ASSERT_TRUE(j["model"].contains(name));
    j["model"].erase(name);
    RunConfig old_run;
    old_run.model.*field = false;
    apply_json(old_run, j, "old checkpoint");
    EXPECT_FALSE(old_run.model.*field);  // absent: left as it was

    RunConfig c = test_config();
    apply_override(c, key + "=false");
    EXPECT_NO_THROW(validate(c));
    EXPECT_FALSE(to_model_config(c).*field);
    EXPECT_NE(to_toml(c).find(name + " = false\n"), std::string::npos) << to_toml(c);
    RunConfig from_toml, from_json;
    apply_toml(from_toml, to_toml(c), "round trip");
    apply_json(from_json, nlohmann::json::parse(to_json(c).dump()), "round trip");
    EXPECT_FALSE(from_toml.model.*field);
    EXPECT_FALSE(from_json.model.*field);
    apply_toml(from_toml, "[model]\n" + name + " = true\n", "x.toml");
    EXPECT_TRUE(from_toml.model.*field);

    for (const std::string& bad : {key + "=1", key + "=yes", key + "=\"true\""}) {
      const std::string err = error_of([&] { apply_override(c, bad); });
      EXPECT_EQ(err.rfind(key + ":", 0), 0u) << bad << ": " << err;
    }
    EXPECT_EQ(error_of([&] { apply_toml(c, "[model]\n" + name + " = 0\n", "x.toml"); })
                  .rfind(key + ":", 0),
              0u);
  }
}

}  // namespace
}  // namespace lighthouse::train
