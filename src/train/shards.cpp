// Token shards: the header codec, manifest.json, the writer (shards cut at a token budget,
// CRC-32 of the ids, temporary names renamed when complete) and the reader (pread, every size
// checked against the file before use).
#include "train/shards.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "train/run_config.h"

namespace lighthouse::train {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "shards store little-endian ids");

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] void fail(const std::string& msg) { throw ConfigError("data.source: " + msg); }

// The most tokens a dataset may hold (2^56: 256 PiB of uint32 ids).
constexpr int64_t kMaxDatasetTokens = int64_t{1} << 56;

void put64(unsigned char* p, uint64_t v) { std::memcpy(p, &v, 8); }
void put32(unsigned char* p, uint32_t v) { std::memcpy(p, &v, 4); }
uint64_t get64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t get32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void encode_header(const ShardHeader& h, unsigned char* out) {  // [kShardHeaderBytes]
  std::memset(out, 0, kShardHeaderBytes);
  std::memcpy(out, kShardMagic, 8);
  put32(out + 8, h.version);
  put32(out + 12, h.token_bytes);
  put64(out + 16, h.vocab_size);
  put64(out + 24, h.tokens);
  put64(out + 32, h.documents);
  put64(out + 40, h.eos_id);
}

// The header of shard file `path` (its first kShardHeaderBytes bytes at p).
ShardHeader decode_header(const unsigned char* p, const std::string& path) {
  if (std::memcmp(p, kShardMagic, 8) != 0)
    fail(cat(path, ": not a token shard (the file does not start with the magic \"LHTOKENS\")"));
  ShardHeader h;
  h.version = get32(p + 8);
  if (h.version != kShardVersion)
    fail(cat(path, ": shard version ", h.version, ", this build reads version ", kShardVersion));
  h.token_bytes = get32(p + 12);
  if (h.token_bytes != 2 && h.token_bytes != 4)
    fail(cat(path, ": token width ", h.token_bytes, " bytes, expected 2 (uint16) or 4 (uint32)"));
  h.vocab_size = get64(p + 16);
  h.tokens = get64(p + 24);
  h.documents = get64(p + 32);
  h.eos_id = get64(p + 40);
  return h;
}

// Id i of the little-endian ids at p, `width` bytes each.
uint64_t token_at(const unsigned char* p, int64_t i, uint32_t width) {
  if (width == 2) {
    uint16_t v;
    std::memcpy(&v, p + 2 * i, 2);
    return v;
  }
  return get32(p + 4 * i);
}

// A file descriptor closed when it goes out of scope.
struct FileHandle {
  int fd;
  explicit FileHandle(int f) : fd(f) {}
  ~FileHandle() {
    if (fd >= 0) ::close(fd);
  }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
};

// n bytes at `offset` of fd into out; false when the file ends first or a read fails.
bool try_read_at(int fd, unsigned char* out, int64_t n, int64_t offset) {
  errno = 0;  // 0 after a short read: the file ends first
  while (n > 0) {
    const ssize_t got = ::pread(fd, out, static_cast<size_t>(n), static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    offset += got;
    n -= got;
  }
  return true;
}

void read_at(int fd, unsigned char* out, int64_t n, int64_t offset, const std::string& path) {
  if (!try_read_at(fd, out, n, offset))
    fail(cat(path, ": cannot read ", n, " bytes at offset ", offset, " (",
             errno ? std::strerror(errno) : "the file ends first", ")"));
}

uint32_t width_for(int64_t vocab) { return vocab <= 65536 ? 2 : 4; }

std::string dtype_name(uint32_t width) { return width == 2 ? "uint16" : "uint32"; }

void write_all(std::FILE* f, const void* data, size_t n, const std::string& path) {
  if (n > 0 && std::fwrite(data, 1, n, f) != n)
    throw ConfigError(cat("--out: cannot write ", path, ": ", std::strerror(errno)));
}

// Flushes, fsyncs and closes f, then renames tmp to path; every step checked.
void commit(std::FILE* f, const std::string& tmp, const std::string& path) {
  const bool ok = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  const int err = errno;
  if (std::fclose(f) != 0 || !ok)
    throw ConfigError(cat("--out: cannot write ", tmp, ": ", std::strerror(ok ? errno : err)));
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw ConfigError(cat("--out: cannot rename ", tmp, " to ", path, ": ", std::strerror(errno)));
}

}  // namespace

int64_t Manifest::tokens() const {
  int64_t n = 0;
  for (const auto& s : shards) n += s.tokens;
  return n;
}

int64_t Manifest::documents() const {
  int64_t n = 0;
  for (const auto& s : shards) n += s.documents;
  return n;
}

bool is_shard_dataset(const std::string& dir) {
  struct stat st;
  return ::stat((dir + "/" + kManifestName).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Manifest read_manifest(const std::string& dir) {
  const std::string path = dir + "/" + kManifestName;
  std::ifstream in(path);
  if (!in) fail(cat("cannot open ", path));
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) fail(cat(path, ": not a JSON object"));
  const auto need = [&](const nlohmann::json& o, const char* key, const std::string& where) {
    if (!o.contains(key)) fail(cat(path, ": ", where, "has no \"", key, "\""));
    return o.at(key);
  };
  Manifest m;
  try {
    if (need(j, "format", "") != "lighthouse-tokens")
      fail(cat(path, ": format must be \"lighthouse-tokens\", got ", j.at("format").dump()));
    const auto version = need(j, "version", "").get<int64_t>();
    if (version != kShardVersion)
      fail(cat(path, ": version ", version, ", this build reads version ", kShardVersion));
    const std::string dtype = need(j, "dtype", "").get<std::string>();
    if (dtype != "uint16" && dtype != "uint32")
      fail(cat(path, ": dtype must be \"uint16\" or \"uint32\", got \"", dtype, "\""));
    m.token_bytes = dtype == "uint16" ? 2 : 4;
    m.vocab_size = need(j, "vocab_size", "").get<int64_t>();
    m.eos_id = need(j, "eos_id", "").get<int64_t>();
    if (m.vocab_size < 1 || m.vocab_size > (int64_t{1} << (8 * m.token_bytes)))
      fail(cat(path, ": vocab_size ", m.vocab_size, " does not fit dtype ", dtype));
    if (m.eos_id < 0 || m.eos_id >= m.vocab_size)
      fail(cat(path, ": eos_id ", m.eos_id, " is outside [0, vocab_size = ", m.vocab_size, ")"));
    if (j.contains("bos_id") && !j.at("bos_id").is_null()) {
      m.bos_id = j.at("bos_id").get<int64_t>();
      if (m.bos_id < 0 || m.bos_id >= m.vocab_size)
        fail(cat(path, ": bos_id ", m.bos_id, " is outside [0, vocab_size = ", m.vocab_size, ")"));
    }
    m.tokenizer = j.value("tokenizer", "");
    m.source = j.value("source", "");
    const auto& shards = need(j, "shards", "");
    if (!shards.is_array()) fail(cat(path, ": \"shards\" must be a list"));
    int64_t total = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      const auto& s = shards[i];
      const std::string where = cat("shards[", i, "] ");
      ShardEntry e;
      e.name = need(s, "name", where).get<std::string>();
      if (e.name.empty() || e.name.find('/') != std::string::npos || e.name[0] == '.')
        fail(cat(path, ": ", where, "name \"", e.name, "\" must be a plain file name"));
      e.tokens = need(s, "tokens", where).get<int64_t>();
      e.documents = need(s, "documents", where).get<int64_t>();
      e.crc32 = need(s, "crc32", where).get<uint32_t>();
      if (e.tokens < 0 || e.documents < 0 || e.documents > e.tokens)
        fail(cat(path, ": ", where, "has inconsistent tokens / documents counts"));
      // Bounded so that header + ids and every sum of them fit int64 (no wrap-around).
      if (e.tokens > kMaxDatasetTokens - total)
        fail(cat(path, ": ", where, "tokens ", e.tokens, " takes the dataset past ",
                 kMaxDatasetTokens, " tokens (no file is that large)"));
      total += e.tokens;
      m.shards.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(cat(path, ": a field has the wrong type (", e.what(), ")"));
  }
  return m;
}

ShardWriter::ShardWriter(std::string dir, int64_t vocab_size, int64_t eos_id,
                         std::string tokenizer, int64_t shard_tokens)
    : dir_(std::move(dir)), tokenizer_(std::move(tokenizer)), shard_tokens_(shard_tokens) {
  if (vocab_size < 1 || vocab_size > (int64_t{1} << 32))
    throw ConfigError(cat("vocab_size: must be in [1, 2^32], got ", vocab_size));
  if (eos_id < 0 || eos_id >= vocab_size)
    throw ConfigError(cat("eos_id: ", eos_id, " is outside [0, vocab_size = ", vocab_size, ")"));
  if (shard_tokens < 1)
    throw ConfigError(cat("--shard-tokens: must be positive, got ", shard_tokens));
  manifest_.vocab_size = vocab_size;
  manifest_.eos_id = eos_id;
  manifest_.token_bytes = width_for(vocab_size);
  manifest_.tokenizer = tokenizer_;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw ConfigError(cat("--out: cannot create directory ", dir_, ": ", ec.message()));
  buf_.reserve(1 << 20);
}

ShardWriter::~ShardWriter() {
  if (file_) {  // abandoned (an error upstream): no partial shard is left under its name
    std::fclose(file_);
    std::remove(file_path_.c_str());
  }
}

void ShardWriter::open_shard() {
  current_ = ShardEntry{};
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%06zu.bin", manifest_.shards.size());
  current_.name = name;
  file_path_ = dir_ + "/" + current_.name + ".tmp";
  file_ = std::fopen(file_path_.c_str(), "wb");
  if (!file_) throw ConfigError(cat("--out: cannot create ", file_path_, ": ", std::strerror(errno)));
  unsigned char zeros[kShardHeaderBytes] = {};
  write_all(file_, zeros, sizeof(zeros), file_path_);
  crc_ = crc32(0L, Z_NULL, 0);
}

void ShardWriter::close_shard() {
  if (!buf_.empty()) {
    crc_ = crc32(crc_, buf_.data(), static_cast<uInt>(buf_.size()));
    write_all(file_, buf_.data(), buf_.size(), file_path_);
    buf_.clear();
  }
  ShardHeader h;
  h.token_bytes = manifest_.token_bytes;
  h.vocab_size = static_cast<uint64_t>(manifest_.vocab_size);
  h.tokens = static_cast<uint64_t>(current_.tokens);
  h.documents = static_cast<uint64_t>(current_.documents);
  h.eos_id = static_cast<uint64_t>(manifest_.eos_id);
  unsigned char header[kShardHeaderBytes];
  encode_header(h, header);
  if (std::fseek(file_, 0, SEEK_SET) != 0)
    throw ConfigError(cat("--out: cannot write ", file_path_, ": ", std::strerror(errno)));
  write_all(file_, header, sizeof(header), file_path_);
  std::FILE* f = file_;
  file_ = nullptr;
  commit(f, file_path_, dir_ + "/" + current_.name);
  current_.crc32 = crc_;
  manifest_.shards.push_back(current_);
}

void ShardWriter::append(const uint32_t* ids, int64_t n) {
  const uint32_t w = manifest_.token_bytes;
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] >= static_cast<uint64_t>(manifest_.vocab_size))
      throw ConfigError(cat("token id ", ids[i], " is outside [0, vocab_size = ",
                            manifest_.vocab_size, ")"));
    if (!file_) open_shard();
    unsigned char b[4];
    std::memcpy(b, &ids[i], 4);
    buf_.insert(buf_.end(), b, b + w);
    if (static_cast<int64_t>(ids[i]) == manifest_.eos_id) ++current_.documents;
    ++current_.tokens;
    ++total_tokens_;
    if (buf_.size() >= (1 << 20)) {
      crc_ = crc32(crc_, buf_.data(), static_cast<uInt>(buf_.size()));
      write_all(file_, buf_.data(), buf_.size(), file_path_);
      buf_.clear();
    }
    if (current_.tokens == shard_tokens_) close_shard();
  }
}

void ShardWriter::end_document() {
  const uint32_t eos = static_cast<uint32_t>(manifest_.eos_id);
  append(&eos, 1);
}

Manifest ShardWriter::finish(const std::string& source) {
  if (finished_) return manifest_;
  if (file_) close_shard();
  manifest_.source = source;
  nlohmann::ordered_json j;
  j["format"] = "lighthouse-tokens";
  j["version"] = kShardVersion;
  j["dtype"] = dtype_name(manifest_.token_bytes);
  j["vocab_size"] = manifest_.vocab_size;
  j["eos_id"] = manifest_.eos_id;
  j["bos_id"] = manifest_.bos_id >= 0 ? nlohmann::json(manifest_.bos_id) : nlohmann::json(nullptr);
  j["tokenizer"] = manifest_.tokenizer;
  j["tokens"] = manifest_.tokens();
  j["documents"] = manifest_.documents();
  j["source"] = source;
  j["shards"] = nlohmann::json::array();
  for (const auto& s : manifest_.shards)
    j["shards"].push_back(
        {{"name", s.name}, {"tokens", s.tokens}, {"documents", s.documents}, {"crc32", s.crc32}});
  const std::string path = dir_ + "/" + kManifestName, tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw ConfigError(cat("--out: cannot create ", tmp, ": ", std::strerror(errno)));
  const std::string text = j.dump(1) + "\n";
  try {
    write_all(f, text.data(), text.size(), tmp);
  } catch (...) {
    std::fclose(f);
    throw;
  }
  commit(f, tmp, path);
  finished_ = true;
  return manifest_;
}

std::shared_ptr<const ShardSet> ShardSet::open(
    const std::string& dir, bool verify, const std::function<void(int64_t, int64_t)>& progress) {
  std::shared_ptr<ShardSet> set(new ShardSet());
  set->dir_ = dir;
  set->manifest_ = read_manifest(dir);  // token counts bounded: the sums below cannot overflow
  const Manifest& m = set->manifest_;
  if (m.shards.empty()) fail(cat(dir, "/", kManifestName, " lists no shards"));
  const int64_t bytes_total = m.tokens() * m.token_bytes;
  set->starts_.push_back(0);
  int64_t bytes_done = 0;
  for (const auto& e : m.shards) {
    const std::string path = dir + "/" + e.name;
    const FileHandle fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) fail(cat("cannot open shard ", path, ": ", std::strerror(errno)));
    struct stat st {};
    const int64_t expect = kShardHeaderBytes + e.tokens * m.token_bytes;
    if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != expect)
      fail(cat(path, ": file size ", static_cast<int64_t>(st.st_size), " bytes, the manifest's ",
               e.tokens, " tokens of ", m.token_bytes, " bytes need ", expect,
               " (truncated or rewritten)"));
    unsigned char header[kShardHeaderBytes];
    read_at(fd.fd, header, kShardHeaderBytes, 0, path);
    const ShardHeader h = decode_header(header, path);
    const auto mismatch = [&](const char* field, uint64_t got, int64_t want) {
      if (got != static_cast<uint64_t>(want))
        fail(cat(path, ": header ", field, " ", got, " differs from the manifest's ", want));
    };
    mismatch("token width", h.token_bytes, m.token_bytes);
    mismatch("vocab_size", h.vocab_size, m.vocab_size);
    mismatch("eos_id", h.eos_id, m.eos_id);
    mismatch("token count", h.tokens, e.tokens);
    mismatch("document count", h.documents, e.documents);
    if (verify) {
      ::posix_fadvise(fd.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
      uint32_t crc = crc32(0L, Z_NULL, 0);
      int64_t eos = 0, bad = -1;
      const int64_t chunk = int64_t{1} << 18;  // tokens per read: at most 1 MiB held
      std::vector<unsigned char> buf(static_cast<size_t>(chunk * m.token_bytes));
      for (int64_t t0 = 0; t0 < e.tokens; t0 += chunk) {
        const int64_t n = std::min(chunk, e.tokens - t0);
        read_at(fd.fd, buf.data(), n * m.token_bytes, kShardHeaderBytes + t0 * m.token_bytes,
                path);
        crc = crc32(crc, buf.data(), static_cast<uInt>(n * m.token_bytes));
        for (int64_t i = 0; i < n; ++i) {
          const uint64_t id = token_at(buf.data(), i, m.token_bytes);
          if (id >= static_cast<uint64_t>(m.vocab_size) && bad < 0) bad = t0 + i;
          eos += id == static_cast<uint64_t>(m.eos_id);
        }
        bytes_done += n * m.token_bytes;
        if (progress) progress(bytes_done, bytes_total);
      }
      if (crc != e.crc32)
        fail(cat(path, ": checksum mismatch (CRC-32 ", crc, ", the manifest says ", e.crc32,
                 "): the shard is corrupted"));
      if (bad >= 0)
        fail(cat(path, ": token ", bad, " is outside [0, vocab_size = ", m.vocab_size, ")"));
      if (eos != e.documents)
        fail(cat(path, ": ", eos, " EOS ids, the header says ", e.documents, " documents"));
    }
    set->files_.push_back({path, static_cast<uint64_t>(st.st_dev),
                           static_cast<uint64_t>(st.st_ino), expect});
    set->starts_.push_back(set->starts_.back() + e.tokens);
  }
  set->total_ = set->starts_.back();
  return set;
}

void ShardSet::read(int64_t pos, int64_t n, int64_t* out) const {
  if (pos < 0 || n < 0 || pos > total_ || n > total_ - pos)
    throw std::out_of_range(cat("ShardSet::read: [", pos, ", ", pos + n, ") is outside [0, ",
                                total_, ")"));
  auto it = std::upper_bound(starts_.begin(), starts_.end(), pos);
  size_t s = static_cast<size_t>(it - starts_.begin()) - 1;
  const uint32_t w = manifest_.token_bytes;
  const uint64_t vocab = static_cast<uint64_t>(manifest_.vocab_size);
  while (n > 0) {
    const int64_t off = pos - starts_[s];
    const int64_t take = std::min(n, starts_[s + 1] - pos);
    const Opened& f = files_[s];
    const auto changed = [&](const std::string& why) {
      throw ShardReadError(cat("data.source: ", f.path, ": ", why,
                               " since it was opened (truncated or rewritten while in use)"));
    };
    const FileHandle fd(::open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) changed(cat("cannot be opened (", std::strerror(errno), ")"));
    struct stat st {};
    if (::fstat(fd.fd, &st) != 0 || static_cast<uint64_t>(st.st_dev) != f.device ||
        static_cast<uint64_t>(st.st_ino) != f.inode)
      changed("is another file");
    if (st.st_size != f.bytes)
      changed(cat("has ", static_cast<int64_t>(st.st_size), " bytes, not ", f.bytes));
    // The ids land at the front of out (w <= 8 bytes each) and widen in place, last first.
    unsigned char* raw = reinterpret_cast<unsigned char*>(out);
    if (!try_read_at(fd.fd, raw, take * w, kShardHeaderBytes + off * w))
      changed("ended early");
    for (int64_t i = take - 1; i >= 0; --i) {
      const uint64_t id = token_at(raw, i, w);
      if (id >= vocab)
        throw ShardReadError(cat("data.source: ", f.path, ": token ", off + i, " is ", id,
                                 ", outside [0, vocab_size = ", vocab,
                                 ") (data.verify = false skipped the check; set it to true)"));
      const int64_t v = static_cast<int64_t>(id);
      std::memcpy(out + i, &v, sizeof(v));
    }
    out += take;
    pos += take;
    n -= take;
    ++s;
  }
}

}  // namespace lighthouse::train
