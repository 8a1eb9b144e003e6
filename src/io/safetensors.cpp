#include "sptrain/io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "sptrain/core/dtype.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/core/json.hpp"

namespace sptrain::safetensors {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The safetensors library refuses headers above 100 MB; so do we, so that a
// corrupt length cannot make us allocate the whole file.
constexpr uint64_t kMaxHeader = 100u << 20;
// config.json and the shard index are a few kilobytes; this only stops a
// wrong path from reading a huge file.
constexpr uint64_t kMaxJsonFile = 64u << 20;

// Two tensors sharing bytes would silently alias each other's weights.
void check_no_overlap(const std::vector<TensorInfo>& tensors, const std::string& path) {
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors)
    if (t.nbytes > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->file_offset < b->file_offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const TensorInfo& a = *by_offset[k - 1];
    const TensorInfo& b = *by_offset[k];
    if (b.file_offset < a.file_offset + a.nbytes)
      fail(path, ": tensors '", a.name, "' and '", b.name, "' overlap in the file (data_offsets)");
  }
}

}  // namespace

int dtype_bytes(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

// ---- Shard ----

std::unique_ptr<Shard> Shard::open(const std::string& path) {
  std::unique_ptr<Shard> s(new Shard());
  s->path_ = path;
  OpenFile file = open_regular_file(path, "safetensors file");
  s->fd_ = std::move(file.fd);
  s->file_size_ = file.size;
  if (s->file_size_ < 8) fail(path, ": truncated safetensors file (", s->file_size_, " bytes)");
  uint64_t n = 0;
  pread_exact(s->fd_.get(), &n, 8, 0, path, "header length");
  if (n < 2 || n > kMaxHeader || n > s->file_size_ - 8)
    fail(path, ": not a safetensors file or truncated: header length ", n, " with a file of ",
         s->file_size_, " bytes");
  s->header_json_.resize(size_t(n));
  pread_exact(s->fd_.get(), s->header_json_.data(), n, 8, path, "header");
  s->header_bytes_ = 8 + n;
  json h = parse_json(s->header_json_, path + " (safetensors header)");
  if (!h.is_object()) fail(path, ": safetensors header is not a JSON object");
  const uint64_t data_size = s->file_size_ - s->header_bytes_;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string& name = it.key();
    const json& e = it.value();
    std::string where = path + ": tensor '" + name + "'";
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
        !e.contains("data_offsets") || !e["dtype"].is_string() || !e["shape"].is_array() ||
        !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
      fail(where, ": header entry needs dtype, shape and data_offsets [begin, end]");
    TensorInfo t;
    t.name = name;
    t.dtype = e["dtype"].get<std::string>();
    int esize = dtype_bytes(t.dtype);
    if (esize == 0) fail(where, ": unknown dtype '", t.dtype, "'");
    uint64_t numel = 1;
    for (const json& d : e["shape"]) {
      if (!d.is_number_unsigned()) fail(where, ": shape must hold non-negative integers");
      uint64_t v = d.get<uint64_t>();
      if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / v)
        fail(where, ": shape is too large");
      numel *= v;
      t.shape.push_back(int64_t(v));
    }
    const json& off = e["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(where, ": data_offsets must be non-negative integers");
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size)
      fail(where, ": data_offsets [", begin, ", ", end, "] are outside the data (",
           data_size, " bytes; is the file truncated?)");
    if (end - begin != numel * uint64_t(esize))
      fail(where, ": data_offsets span ", end - begin, " bytes but shape ", e["shape"].dump(),
           " of ", t.dtype, " needs ", numel * uint64_t(esize));
    t.numel = int64_t(numel);
    t.file_offset = s->header_bytes_ + begin;
    t.nbytes = end - begin;
    s->tensors_.push_back(std::move(t));
  }
  check_no_overlap(s->tensors_, path);
  return s;
}

void Shard::read(uint64_t offset, uint64_t n, void* out, const std::string& what) const {
  pread_exact(fd_.get(), out, n, offset, path_, what);
}

// ---- Folder ----

Folder Folder::open(const std::string& dir) {
  Folder f;
  f.dir_ = dir;
  if (!fs::is_directory(dir)) fail(dir, ": not a folder (expected a Hugging Face model folder)");
  fs::path config = fs::path(dir) / "config.json";
  if (!fs::exists(config)) fail(config.string(), ": missing (every model folder needs config.json)");
  f.config_text_ = read_whole_file(config.string(), kMaxJsonFile, "model config");
  f.config_ = parse_json(f.config_text_, config.string());
  if (!f.config_.is_object()) fail(config.string(), ": not a JSON object");

  fs::path single = fs::path(dir) / "model.safetensors";
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  // Which shard file each tensor must come from (sharded checkpoints only).
  std::map<std::string, std::string> expected_file;
  if (fs::exists(single)) {
    f.shards_.push_back(Shard::open(single.string()));
  } else if (fs::exists(index)) {
    json idx = parse_json(read_whole_file(index.string(), kMaxJsonFile, "shard index"), index.string());
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      fail(index.string(), ": missing object 'weight_map'");
    std::set<std::string> files;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        fail(index.string(), ": weight_map['", it.key(), "'] is not a file name");
      std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file == "..")
        fail(index.string(), ": weight_map['", it.key(), "'] = '", file, "' is not a plain file name");
      expected_file[it.key()] = file;
      files.insert(file);
    }
    for (const auto& file : files) f.shards_.push_back(Shard::open((fs::path(dir) / file).string()));
  } else {
    fail(dir, ": no model.safetensors or model.safetensors.index.json");
  }

  for (size_t k = 0; k < f.shards_.size(); ++k) {
    const Shard& shard = *f.shards_[k];
    for (TensorInfo t : shard.tensors()) {
      auto prev = f.tensors_.find(t.name);
      if (prev != f.tensors_.end())
        fail(shard.path(), ": tensor '", t.name, "' is also in ", f.file_of(prev->second));
      auto exp = expected_file.find(t.name);
      if (!expected_file.empty() && exp != expected_file.end() &&
          fs::path(shard.path()).filename() != exp->second)
        fail(shard.path(), ": tensor '", t.name, "' is listed in the index under ", exp->second);
      t.shard = k;
      f.tensors_.emplace(t.name, std::move(t));
    }
  }
  for (const auto& [name, file] : expected_file)
    if (!f.tensors_.count(name))
      fail((fs::path(dir) / file).string(), ": tensor '", name,
           "' listed in model.safetensors.index.json is missing");
  return f;
}

const TensorInfo* Folder::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorInfo& Folder::tensor(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail(dir_, ": missing tensor '", name, "'");
  return *t;
}

void Folder::read_raw(const TensorInfo& t, void* out) const {
  shards_[t.shard]->read(t.file_offset, t.nbytes, out, "tensor '" + t.name + "'");
}

void Folder::read_f32(const TensorInfo& t, float* out) const {
  if (t.dtype == "F32") {
    read_raw(t, out);
    return;
  }
  if (t.dtype != "F16" && t.dtype != "BF16")
    fail(file_of(t), ": tensor '", t.name, "' has dtype ", t.dtype,
         "; only F32, F16 and BF16 weights are supported");
  // Read the n 16-bit values into the upper half of `out` (4n bytes), then
  // widen in place from the front: element k is read from byte 2n + 2k before
  // bytes [4k, 4k + 4) are written, and 2n + 2k >= 4k for k <= n.
  unsigned char* half = reinterpret_cast<unsigned char*>(out) + t.nbytes;
  read_raw(t, half);
  const bool bf16 = t.dtype == "BF16";
  for (int64_t k = 0; k < t.numel; ++k) {
    uint16_t h;
    std::memcpy(&h, half + 2 * k, 2);
    out[k] = bf16 ? bf16_to_f32(h) : f16_to_f32(h);
  }
}

}  // namespace sptrain::safetensors
