// Checkpoint file format, atomic writer, verifying reader, run-directory bookkeeping and the
// model / AdamW / RNG (de)serialization (checkpoint.h).
#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "model/safetensors.h"

namespace lighthouse::train {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'L', 'H', 'C', 'K', 'P', 'T', '\0', '\1'};
constexpr size_t kTrailer = 12;  // u32 crc + u64 length

const std::vector<std::pair<std::string, at::ScalarType>>& dtypes() {
  static const std::vector<std::pair<std::string, at::ScalarType>> d = {
      {"float32", at::kFloat}, {"float64", at::kDouble}, {"bfloat16", at::kBFloat16},
      {"float16", at::kHalf},  {"int64", at::kLong},     {"uint8", at::kByte}};
  return d;
}

std::string dtype_name(at::ScalarType t) {
  for (const auto& [n, s] : dtypes())
    if (s == t) return n;
  throw CheckpointError(std::string("checkpoint: unsupported dtype ") + c10::toString(t));
}

class Writer {
 public:
  explicit Writer(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd_ < 0)
      throw CheckpointError("checkpoint: cannot create " + path + ": " + std::strerror(errno));
  }
  ~Writer() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const void* data, size_t n, bool checksum = true) {
    const char* p = static_cast<const char*>(data);
    if (checksum) crc_ = crc32_z(crc_, reinterpret_cast<const Bytef*>(p), n), length_ += n;
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, std::min<size_t>(n, 1 << 26));
      if (w < 0) {
        if (errno == EINTR) continue;
        throw CheckpointError("checkpoint: write to " + path_ + " failed: " + std::strerror(errno));
      }
      p += w, n -= static_cast<size_t>(w);
    }
  }
  void finish() {
    const uint32_t crc = static_cast<uint32_t>(crc_);
    const uint64_t len = length_;
    write(&crc, 4, false);
    write(&len, 8, false);
    sync();
    ::close(fd_);
    fd_ = -1;
  }
  void sync() {
    if (::fsync(fd_) != 0) throw CheckpointError("checkpoint: fsync of " + path_ + " failed");
  }

 private:
  std::string path_;
  int fd_ = -1;
  uLong crc_ = crc32(0L, Z_NULL, 0);
  uint64_t length_ = 0;
};

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

int64_t fault_kill_step() {
  const char* s = std::getenv("LIGHTHOUSE_FAULT_CKPT_KILL");
  return s && *s ? std::atoll(s) : -1;
}

}  // namespace

void write_checkpoint(const std::string& path, const nlohmann::json& meta,
                      const TensorMap& tensors) {
  nlohmann::json header;
  header["meta"] = meta;
  header["tensors"] = nlohmann::json::object();
  std::vector<at::Tensor> data;  // contiguous CPU copies, in map order
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto c = t.detach().to(at::kCPU).contiguous();
    header["tensors"][name] = {{"dtype", dtype_name(c.scalar_type())},
                               {"shape", c.sizes().vec()},
                               {"offset", offset},
                               {"nbytes", c.nbytes()}};
    offset += c.nbytes();
    data.push_back(std::move(c));
  }
  const std::string head = header.dump();
  const uint64_t head_len = head.size();

  const std::string tmp = path + ".tmp";
  fs::create_directories(fs::path(path).parent_path());
  {
    Writer w(tmp);
    w.write(kMagic, sizeof(kMagic));
    w.write(&head_len, 8);
    w.write(head.data(), head.size());
    const bool fault = meta.contains("step") && meta["step"].get<int64_t>() == fault_kill_step();
    for (size_t i = 0; i < data.size(); ++i) {
      if (fault && i == data.size() / 2) {  // test hook: die mid-write, leaving a partial temp file
        w.sync();
        std::raise(SIGKILL);
      }
      w.write(data[i].data_ptr(), data[i].nbytes());
    }
    w.finish();
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw CheckpointError("checkpoint: cannot rename " + tmp + " to " + path + ": " +
                          std::strerror(errno));
  fsync_dir(fs::path(path).parent_path().string());
}

CheckpointContents read_checkpoint(const std::string& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) throw CheckpointError("checkpoint " + path + ": cannot read (" + ec.message() + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError("checkpoint " + path + ": cannot open");
  const auto truncated = [&](uint64_t expected) {
    return CheckpointError("checkpoint " + path + " is truncated: " + std::to_string(size) +
                           " bytes, expected " + std::to_string(expected));
  };
  const auto corrupted = [&](const std::string& why) {
    return CheckpointError("checkpoint " + path + " is corrupted: " + why);
  };

  char magic[8];
  uint64_t head_len = 0;
  if (size < 16 + kTrailer) throw truncated(16 + kTrailer);
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&head_len), 8);
  if (std::memcmp(magic, kMagic, 8) != 0)
    throw CheckpointError("checkpoint " + path + ": not a lighthouse checkpoint (bad magic)");
  if (head_len > size)
    throw corrupted("header length " + std::to_string(head_len) + " exceeds the file");
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(magic), 8);
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(&head_len), 8);
  std::string head(head_len, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head_len));
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(head.data()), head.size());

  CheckpointContents out;
  nlohmann::json header;
  uint64_t data_len = 0;
  try {
    header = nlohmann::json::parse(head);
    out.meta = header.at("meta");
    if (!out.meta.is_object() || !header.at("tensors").is_object())
      throw corrupted("meta and tensors must be JSON objects");
    for (const auto& [name, e] : header.at("tensors").items()) {
      if (e.at("offset").get<uint64_t>() != data_len)
        throw corrupted("tensor offsets out of order");
      const uint64_t nbytes = e.at("nbytes").get<uint64_t>();
      if (nbytes > size - data_len)  // checked before summing: no sum can wrap around
        throw corrupted("tensor " + name + ": nbytes " + std::to_string(nbytes) +
                        " exceeds the file");
      data_len += nbytes;
    }
  } catch (const nlohmann::json::exception& e) {
    throw corrupted(std::string("unreadable header (") + e.what() + ")");
  }
  const uint64_t expected = 16 + head_len + data_len + kTrailer;
  if (size < expected) throw truncated(expected);
  if (size > expected) throw corrupted(std::to_string(size - expected) + " trailing bytes");

  for (const auto& [name, e] : header["tensors"].items()) {
    const auto dtype = e.find("dtype");
    const std::string dt = dtype != e.end() && dtype->is_string() ? dtype->get<std::string>() : "";
    const auto it =
        std::find_if(dtypes().begin(), dtypes().end(), [&](auto& d) { return d.first == dt; });
    if (it == dtypes().end()) throw corrupted("tensor " + name + " has unknown dtype " + dt);
    std::vector<int64_t> shape;
    int64_t bytes = 0;
    const std::string why =
        model::tensor_extent(e.contains("shape") ? e["shape"] : nlohmann::json(),
                             static_cast<int64_t>(c10::elementSize(it->second)), shape, bytes);
    if (!why.empty()) throw corrupted("tensor " + name + ": " + why);
    if (static_cast<uint64_t>(bytes) != e["nbytes"].get<uint64_t>())
      throw corrupted("tensor " + name + " size mismatch");
    auto t = torch::empty(shape, torch::dtype(it->second));  // checked against the file above
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    crc = crc32_z(crc, static_cast<const Bytef*>(t.data_ptr()), t.nbytes());
    out.tensors[name] = std::move(t);
  }
  uint32_t stored_crc = 0;
  uint64_t stored_len = 0;
  in.read(reinterpret_cast<char*>(&stored_crc), 4);
  in.read(reinterpret_cast<char*>(&stored_len), 8);
  if (!in) throw truncated(expected);
  if (stored_len != expected - kTrailer || stored_crc != static_cast<uint32_t>(crc))
    throw corrupted("checksum mismatch");
  return out;
}

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld.ckpt", static_cast<long long>(step));
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0 && n.size() > 5 && n.substr(n.size() - 5) == ".ckpt")
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());  // zero-padded step numbers sort by step
  return out;
}

void prune_checkpoints(const std::string& run_dir, int64_t keep) {
  const auto all = list_checkpoints(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove(all[i]);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec))
    if (e.path().extension() == ".tmp") fs::remove(e.path(), ec);
}

// A step-N.ckpt file must hold step N: resume picks the newest by name.
static void check_step_matches_name(const std::string& path, const CheckpointContents& ck) {
  const std::string n = fs::path(path).filename().string();
  if (n.size() <= 10 || n.rfind("step-", 0) != 0 || n.compare(n.size() - 5, 5, ".ckpt") != 0)
    return;  // not a step-N.ckpt name: nothing to compare
  int64_t named = -1;
  const char* end = n.data() + n.size() - 5;
  if (std::from_chars(n.data() + 5, end, named).ptr != end) return;
  const auto step = ck.meta.find("step");
  if (step == ck.meta.end() || !step->is_number_integer() || step->get<int64_t>() != named)
    throw CheckpointError("checkpoint " + path + ": the file name says step " +
                          std::to_string(named) + ", its header says step " +
                          (step == ck.meta.end() ? std::string("nothing") : step->dump()) +
                          " (a copied or renamed file?)");
}

std::pair<std::string, CheckpointContents> read_newest_checkpoint(const std::string& target) {
  std::error_code ec;
  if (fs::is_regular_file(target, ec)) {
    auto ck = read_checkpoint(target);
    check_step_matches_name(target, ck);
    return {target, std::move(ck)};
  }
  if (!fs::is_directory(target, ec))
    throw CheckpointError("no such run directory or checkpoint: " + target);
  const auto all = list_checkpoints(target);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    CheckpointContents ck;
    try {
      ck = read_checkpoint(*it);
    } catch (const CheckpointError& e) {
      std::fprintf(stderr, "warning: %s; trying the previous checkpoint\n", e.what());
      continue;
    }
    check_step_matches_name(*it, ck);  // a mismatch is an error, not a reason to fall back
    return {*it, std::move(ck)};
  }
  throw CheckpointError("no readable checkpoint in " + (fs::path(target) / "checkpoints").string());
}

void add_model(TensorMap& out, const torch::nn::Module& model) {
  for (const auto& p : model.named_parameters()) out["model/" + p.key()] = p.value();
  for (const auto& b : model.named_buffers()) out["model/" + b.key()] = b.value();
}

void add_optimizer(TensorMap& out, const torch::nn::Module& model, torch::optim::AdamW& opt) {
  for (const auto& p : model.named_parameters()) {
    const auto it = opt.state().find(p.value().unsafeGetTensorImpl());
    if (it == opt.state().end()) continue;
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    const std::string k = "optim/" + p.key();
    out[k + "/exp_avg"] = s.exp_avg();
    out[k + "/exp_avg_sq"] = s.exp_avg_sq();
    out[k + "/step"] = torch::tensor(s.step(), torch::kLong);
  }
}

void add_rng(TensorMap& out) {
  auto cpu = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(cpu.mutex());
    out["rng/cpu"] = cpu.get_state();
  }
  if (torch::cuda::is_available()) {
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i) {
      auto g = at::globalContext().defaultGenerator(
          at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(g.mutex());
      out["rng/cuda" + std::to_string(i)] = g.get_state();
    }
  }
}

namespace {

const at::Tensor& find(const CheckpointContents& ck, const std::string& key,
                       const std::string& path) {
  const auto it = ck.tensors.find(key);
  if (it == ck.tensors.end()) throw CheckpointError("checkpoint " + path + " has no tensor " + key);
  return it->second;
}

void copy_checked(at::Tensor dst, const at::Tensor& src, const std::string& key,
                  const std::string& path) {
  if (src.sizes() != dst.sizes() || src.scalar_type() != dst.scalar_type())
    throw CheckpointError("checkpoint " + path + ": " + key + " is " +
                          dtype_name(src.scalar_type()) + c10::str(src.sizes()) +
                          " but the model has " + dtype_name(dst.scalar_type()) +
                          c10::str(dst.sizes()));
  torch::NoGradGuard ng;
  dst.copy_(src);
}

}  // namespace

void restore_model(const CheckpointContents& ck, torch::nn::Module& model,
                   const std::string& path) {
  const size_t stored = std::count_if(ck.tensors.begin(), ck.tensors.end(), [](const auto& e) {
    return e.first.rfind("model/", 0) == 0;
  });
  const size_t expected = model.named_parameters().size() + model.named_buffers().size();
  if (stored != expected)
    throw CheckpointError("checkpoint " + path + " holds " + std::to_string(stored) +
                          " model tensors, the model has " + std::to_string(expected));
  for (auto& p : model.named_parameters())
    copy_checked(p.value(), find(ck, "model/" + p.key(), path), "model/" + p.key(), path);
  for (auto& b : model.named_buffers())
    copy_checked(b.value(), find(ck, "model/" + b.key(), path), "model/" + b.key(), path);
}

void restore_optimizer(const CheckpointContents& ck, const torch::nn::Module& model,
                       torch::optim::AdamW& opt, const std::string& path) {
  opt.state().clear();
  std::set<const void*> in_opt;  // the optimizer's parameters (a ZeRO-1 shard holds a subset)
  for (const auto& g : opt.param_groups())
    for (const auto& t : g.params()) in_opt.insert(t.unsafeGetTensorImpl());
  for (const auto& p : model.named_parameters()) {
    if (!in_opt.count(p.value().unsafeGetTensorImpl())) continue;
    const std::string k = "optim/" + p.key();
    if (!ck.tensors.count(k + "/step")) continue;  // no state yet (never stepped)
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(find(ck, k + "/step", path).item<int64_t>());
    auto ea = torch::empty_like(p.value()), eq = torch::empty_like(p.value());
    copy_checked(ea, find(ck, k + "/exp_avg", path), k + "/exp_avg", path);
    copy_checked(eq, find(ck, k + "/exp_avg_sq", path), k + "/exp_avg_sq", path);
    s->exp_avg(ea);
    s->exp_avg_sq(eq);
    opt.state()[p.value().unsafeGetTensorImpl()] = std::move(s);
  }
}

void restore_rng(const CheckpointContents& ck) {
  auto cpu = at::detail::getDefaultCPUGenerator();
  if (ck.tensors.count("rng/cpu")) {
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_state(ck.tensors.at("rng/cpu"));
  }
  if (torch::cuda::is_available()) {
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i) {
      const auto it = ck.tensors.find("rng/cuda" + std::to_string(i));
      if (it == ck.tensors.end()) continue;
      auto g = at::globalContext().defaultGenerator(
          at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(g.mutex());
      g.set_state(it->second);
    }
  }
}

}  // namespace lighthouse::train
