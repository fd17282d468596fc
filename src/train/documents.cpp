// Document readers: plain and gzip files through zlib's gzread (the gzip magic checked for
// .gz names), JSON Lines read line by line, directory trees in sorted path order. Everything
// streams in blocks of kBlock bytes: a text file is handed over in pieces, a JSON Lines file
// one line (one document) at a time, so memory does not grow with the file.
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "train/data.h"

namespace lighthouse::train {
namespace fs = std::filesystem;
namespace {

constexpr size_t kBlock = size_t{1} << 18;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string strip_gz(const std::string& name) {
  return ends_with(name, ".gz") ? name.substr(0, name.size() - 3) : name;
}

bool is_jsonl(const std::string& path) {
  const std::string n = strip_gz(path);
  return ends_with(n, ".jsonl") || ends_with(n, ".json");
}

bool is_text(const std::string& path) {
  const std::string n = strip_gz(path);
  return ends_with(n, ".txt") || ends_with(n, ".text") || ends_with(n, ".md");
}

// A .gz file must start with the gzip magic bytes 1f 8b: gzread would pass anything else
// through as plain bytes.
void check_gzip_magic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw ConfigError("data.source: cannot open " + path);
  unsigned char magic[2] = {0, 0};
  const size_t n = std::fread(magic, 1, 2, f);
  std::fclose(f);
  if (n != 2 || magic[0] != 0x1f || magic[1] != 0x8b)
    throw ConfigError("data.source: " + path +
                      " is not gzip data (the name ends in .gz, the file does not start with "
                      "the gzip magic bytes 1f 8b)");
}

// Calls fn(block) for the (decompressed) content of a file, kBlock bytes at a time; gzread
// passes plain files through unchanged. on_offset(compressed bytes read) follows the reads.
void read_blocks(const std::string& path, const std::function<void(std::string_view)>& fn,
                 const std::function<void(int64_t)>& on_offset) {
  if (ends_with(path, ".gz")) check_gzip_magic(path);
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw ConfigError("data.source: cannot open " + path);
  gzbuffer(f, static_cast<unsigned>(kBlock));
  std::vector<char> buf(kBlock);
  int n;
  try {
    while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) {
      fn(std::string_view(buf.data(), static_cast<size_t>(n)));
      if (on_offset) on_offset(gzoffset(f));
    }
  } catch (...) {
    gzclose(f);
    throw;
  }
  int err = Z_OK;
  const std::string msg = gzerror(f, &err);
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw ConfigError("data.source: cannot read " + path + ": " + msg);
}

void read_jsonl(const std::string& path, const std::string& key, const DocumentSink& sink,
                const std::function<void(int64_t)>& on_offset, int64_t max_line_bytes) {
  std::string line;  // the line being assembled: the one buffer that grows with the data
  int64_t lineno = 0;
  const auto finish_line = [&] {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) return line.clear();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw ConfigError("data.source: " + path + ":" + std::to_string(lineno) + ": invalid JSON (" +
                        std::string(e.what()) + ")");
    }
    if (!j.is_object() || !j.contains(key) || !j[key].is_string())
      throw ConfigError("data.text_key: " + path + ":" + std::to_string(lineno) +
                        ": no string field \"" + key + "\"");
    sink.bytes(j[key].get_ref<const std::string&>());
    sink.end();
    line.clear();
  };
  const auto append = [&](std::string_view piece) {  // the bound checked before growing
    if (static_cast<int64_t>(line.size() + piece.size()) > max_line_bytes)
      throw ConfigError("data.max_document_bytes: " + path + ":" + std::to_string(lineno + 1) +
                        ": a JSON Lines line (one document) longer than " +
                        std::to_string(max_line_bytes) +
                        " bytes; raise data.max_document_bytes or split the document");
    line.append(piece);
  };
  read_blocks(
      path,
      [&](std::string_view block) {
        size_t pos = 0;
        for (size_t nl; (nl = block.find('\n', pos)) != std::string_view::npos; pos = nl + 1) {
          append(block.substr(pos, nl - pos));
          finish_line();
        }
        append(block.substr(pos));
      },
      on_offset);
  if (!line.empty()) finish_line();
}

}  // namespace

std::vector<std::string> list_document_files(const std::string& source) {
  std::error_code ec;
  if (fs::is_regular_file(source, ec)) return {source};
  if (!fs::is_directory(source, ec))
    throw ConfigError("data.source: no such file or directory: " + source);
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(source, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string p = it->path().string();
    std::error_code st;  // a link that loops or dangles: named, not thrown as a bare error
    const bool dir = it->is_directory(st), regular = !st && it->is_regular_file(st);
    if (!name.empty() && name[0] == '.') {
      if (dir) it.disable_recursion_pending();
      continue;
    }
    if (st) throw ConfigError("data.source: cannot read " + p + ": " + st.message());
    if (regular && (is_jsonl(p) || is_text(p))) files.push_back(p);
  }
  if (ec) throw ConfigError("data.source: cannot list " + source + ": " + ec.message());
  if (files.empty())
    throw ConfigError("data.source: no .txt/.text/.md/.jsonl/.json(.gz) files under " + source);
  std::sort(files.begin(), files.end());
  return files;
}

void stream_documents(const std::string& path, const std::string& text_key,
                      const DocumentSink& sink, const std::function<void(int64_t)>& on_offset,
                      int64_t max_line_bytes) {
  if (is_jsonl(path)) {
    read_jsonl(path, text_key, sink, on_offset, max_line_bytes);
  } else {
    read_blocks(path, sink.bytes, on_offset);
    sink.end();
  }
}

void stream_source(const std::string& source, const std::string& text_key,
                   const DocumentSink& sink, int64_t max_line_bytes) {
  for (const auto& f : list_document_files(source))
    stream_documents(f, text_key, sink, {}, max_line_bytes);
}

void for_each_document(const std::string& source, const std::string& text_key,
                       const std::function<void(std::string_view)>& fn, int64_t max_line_bytes) {
  std::string doc;
  const DocumentSink sink{[&](std::string_view b) { doc.append(b); },
                          [&] {
                            fn(doc);
                            doc.clear();
                          }};
  stream_source(source, text_key, sink, max_line_bytes);
}

}  // namespace lighthouse::train
