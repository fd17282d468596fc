// `lighthouse data tokenize --out DIR [--text-key K] [--shard-tokens N] SOURCE...`: the byte
// tokenizer's path to token shards (docs/data.md) for users without Python; documents stream
// through, so memory stays flat whatever the corpus size.
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "train/data.h"
#include "train/device.h"

namespace lighthouse::cli {
namespace {

struct TokenizeArgs {
  std::string out, text_key = "text";
  int64_t shard_tokens = int64_t{1} << 28;
  std::vector<std::string> sources;
  bool progress = true;
};

int run_tokenize(const TokenizeArgs& a) {
  std::error_code ec;
  if (std::filesystem::exists(a.out, ec) && !std::filesystem::is_directory(a.out, ec))
    throw std::runtime_error("--out: " + a.out +
                             " is an existing file, expected a directory (new or existing)");
  std::unique_ptr<Progress> bar;
  const auto progress = [&](int64_t done, int64_t total) {
    if (!a.progress) return;
    if (!bar) bar = std::make_unique<Progress>("tokenize", total, "B");
    bar->update(done);
  };
  const train::Manifest m =
      train::tokenize_bytes(a.sources, a.text_key, a.out, a.shard_tokens, progress);
  std::cout << "wrote " << m.shards.size() << " shards, " << m.documents() << " documents, "
            << m.tokens() << " tokens (bytes, vocab_size " << m.vocab_size << ") to " << a.out
            << "; peak memory "
            << train::peak_memory_bytes(torch::kCPU) / (1 << 20) << " MiB\n";
  return 0;
}

}  // namespace

void add_data(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Data tools: token shards (docs/data.md)");
  data->require_subcommand(1);
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* sub = data->add_subcommand(
      "tokenize", "Byte-tokenize text / JSON Lines files or directories (.gz allowed) into shards");
  sub->add_option("sources", a->sources, "files or directories")->required();
  sub->add_option("--out", a->out, "output directory (manifest.json + shard-NNNNNN.bin)")
      ->required();
  sub->add_option("--text-key", a->text_key, "JSON Lines field with the text");
  sub->add_option("--shard-tokens", a->shard_tokens, "tokens per shard")->check(positive_int());
  sub->add_flag("!--no-progress", a->progress, "no progress line on stderr");
  sub->callback([a] {
    const int rc = run_tokenize(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace lighthouse::cli
