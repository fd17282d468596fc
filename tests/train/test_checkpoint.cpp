// Checkpoints: exact round trip of model, AdamW state and RNG; corruption, truncation and bad
// magic are detected with a clear error; temp files are ignored; the newest N are kept.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "train/checkpoint.h"
#include "train/helpers.h"
#include "train/optim.h"

namespace lighthouse::train {
namespace {

using testing::scratch_dir;
using testing::test_config;

struct Fixture {
  model::Llama model{nullptr};
  std::unique_ptr<torch::optim::AdamW> opt;
};

// A test-sized model after two AdamW steps (so every parameter has optimizer state).
Fixture trained(uint64_t seed) {
  const RunConfig c = test_config();
  torch::manual_seed(seed);
  Fixture f{model::Llama(to_model_config(c)), nullptr};
  f.opt = make_optimizer(*f.model, c);
  for (int i = 0; i < 2; ++i) {
    f.opt->zero_grad();
    const auto tokens = torch::randint(0, 256, {2, 32}, torch::kLong);  // [B, N]
    f.model->forward(tokens).pow(2).mean().backward();
    f.opt->step();
  }
  return f;
}

TensorMap everything(Fixture& f) {
  TensorMap t;
  add_model(t, *f.model);
  add_optimizer(t, *f.model, *f.opt);
  return t;
}

void expect_bitwise_equal(const TensorMap& a, const TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) {
    ASSERT_TRUE(b.count(k)) << k;
    EXPECT_TRUE(torch::equal(v, b.at(k))) << k;
  }
}

std::string error_reading(const std::string& path) {
  try {
    read_checkpoint(path);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

TEST(Checkpoint, RoundTripIsExact) {
  const std::string dir = scratch_dir("rt");
  Fixture a = trained(1);
  TensorMap t = everything(a);
  add_rng(t);
  const nlohmann::json meta = {{"step", 2}, {"note", "x"}};
  write_checkpoint(checkpoint_path(dir, 2), meta, t);
  EXPECT_FALSE(std::filesystem::exists(checkpoint_path(dir, 2) + ".tmp"));

  const auto rng_before = torch::rand({4});  // advance the generator, then restore it
  const CheckpointContents ck = read_checkpoint(checkpoint_path(dir, 2));
  EXPECT_EQ(ck.meta, meta);
  Fixture b = trained(2);  // different weights and optimizer state
  restore_model(ck, *b.model, "ck");
  restore_optimizer(ck, *b.model, *b.opt, "ck");
  expect_bitwise_equal(everything(a), everything(b));
  restore_rng(ck);
  EXPECT_TRUE(torch::equal(torch::rand({4}), rng_before));
  for (const auto& p : b.model->named_parameters()) {  // AdamW step counts too
    const auto& s = static_cast<torch::optim::AdamWParamState&>(
        *b.opt->state().at(p.value().unsafeGetTensorImpl()));
    EXPECT_EQ(s.step(), 2) << p.key();
  }
}

TEST(Checkpoint, CorruptionTruncationAndMagicAreDetected) {
  const std::string dir = scratch_dir("bad");
  Fixture a = trained(1);
  const std::string path = checkpoint_path(dir, 4);
  write_checkpoint(path, {{"step", 4}}, everything(a));
  const std::string good = testing::read_file(path);
  ASSERT_EQ(error_reading(path), "");

  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x10;  // one bit inside the tensor data
  testing::write_file(path, flipped);
  EXPECT_NE(error_reading(path).find("is corrupted: checksum mismatch"), std::string::npos)
      << error_reading(path);

  testing::write_file(path, good.substr(0, good.size() - 100));
  EXPECT_NE(error_reading(path).find("is truncated"), std::string::npos) << error_reading(path);
  testing::write_file(path, good.substr(0, 10));
  EXPECT_NE(error_reading(path).find("is truncated"), std::string::npos);
  testing::write_file(path, good + "junk");
  EXPECT_NE(error_reading(path).find("trailing bytes"), std::string::npos);
  testing::write_file(path, "PK" + good.substr(2));
  EXPECT_NE(error_reading(path).find("not a lighthouse checkpoint"), std::string::npos);
  std::string header = good;
  header[20] = '#';  // inside the JSON header
  testing::write_file(path, header);
  EXPECT_NE(error_reading(path).find("is corrupted"), std::string::npos);
  EXPECT_NE(error_reading(dir + "/none.ckpt").find("cannot read"), std::string::npos);
}

TEST(Checkpoint, NewestReadableIsFoundAndOldOnesPruned) {
  const std::string dir = scratch_dir("keep");
  Fixture a = trained(1);
  for (int64_t s : {2, 4, 6, 8})
    write_checkpoint(checkpoint_path(dir, s), {{"step", s}}, everything(a));
  testing::write_file(checkpoint_path(dir, 10) + ".tmp", "partial");  // a crashed write
  EXPECT_EQ(list_checkpoints(dir).size(), 4u);
  prune_checkpoints(dir, 2);
  EXPECT_EQ(list_checkpoints(dir),
            (std::vector<std::string>{checkpoint_path(dir, 6), checkpoint_path(dir, 8)}));
  EXPECT_FALSE(std::filesystem::exists(checkpoint_path(dir, 10) + ".tmp"));
  testing::write_file(checkpoint_path(dir, 8),
                      "garbage that is long enough to pass the size check....");
  const auto [path, ck] = read_newest_checkpoint(dir);  // warns about step 8, falls back to 6
  EXPECT_EQ(path, checkpoint_path(dir, 6));
  EXPECT_EQ(ck.meta["step"], 6);
}

TEST(Checkpoint, ShapeMismatchNamesTheTensor) {
  const std::string dir = scratch_dir("shape");
  Fixture a = trained(1);
  write_checkpoint(checkpoint_path(dir, 1), {{"step", 1}}, everything(a));
  RunConfig wide = test_config();
  wide.model.ffn_hidden = 96;
  model::Llama other(to_model_config(wide));
  try {
    restore_model(read_checkpoint(checkpoint_path(dir, 1)), *other, "ck");
    FAIL() << "expected a CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "mlp.gate_proj.weight is float32[64, 32] but the model has float32[96, 32]"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace lighthouse::train
