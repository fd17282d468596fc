// The byte tokenizer's path to token shards: documents streamed from text / JSON Lines files
// (optionally gzip) into a ShardWriter, and the data.cache conversion's source signature.
#include <sys/stat.h>

#include <sstream>

#include "train/data.h"

namespace lighthouse::train {

Manifest tokenize_bytes(const std::vector<std::string>& sources, const std::string& text_key,
                        const std::string& out_dir, int64_t shard_tokens,
                        const std::function<void(int64_t, int64_t)>& progress,
                        int64_t max_line_bytes) {
  std::vector<std::string> files;
  for (const auto& s : sources)
    for (auto& f : list_document_files(s)) files.push_back(std::move(f));
  int64_t total = 0;
  std::vector<int64_t> sizes;
  for (const auto& f : files) {
    struct stat st;
    sizes.push_back(::stat(f.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0);
    total += sizes.back();
  }
  ShardWriter writer(out_dir, model::kVocab, model::kEos, "bytes", shard_tokens);
  std::vector<uint32_t> ids;
  const DocumentSink sink{[&](std::string_view b) {
                            ids.resize(b.size());
                            for (size_t i = 0; i < b.size(); ++i)
                              ids[i] = static_cast<unsigned char>(b[i]);
                            writer.append(ids.data(), static_cast<int64_t>(ids.size()));
                          },
                          [&] { writer.end_document(); }};
  int64_t done = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    stream_documents(files[i], text_key, sink, [&](int64_t offset) {
      if (progress) progress(done + std::min(offset, sizes[i]), total);
    }, max_line_bytes);
    done += sizes[i];
    if (progress) progress(done, total);
  }
  std::string signature;
  if (sources.size() == 1) signature = source_signature(sources[0], text_key);
  return writer.finish(signature);
}

std::string source_signature(const std::string& source, const std::string& text_key) {
  std::ostringstream sig;
  sig << "text_key=" << text_key;
  for (const auto& f : list_document_files(source)) {
    struct stat st;
    if (::stat(f.c_str(), &st) != 0) throw ConfigError("data.source: cannot stat " + f);
    sig << ";" << f << ":" << st.st_size << ":" << st.st_mtim.tv_sec << "."
        << st.st_mtim.tv_nsec;
  }
  return sig.str();
}

std::string cache_dir(const RunConfig& cfg) {
  if (cfg.data.cache == "run") return cfg.run.dir + "/tokens";
  return cfg.data.cache;
}

}  // namespace lighthouse::train
