// Harness: what sptrain's own readers make of the attributes, dataset shapes
// and dtypes of its HDF5 files (src/io/checkpoint.cpp, src/model/model_config.cpp,
// the tokenizer group, src/prompt/stored_prompt.cpp), with HDF5's parser left
// out: a valid file is written (a prompt checkpoint, or a tiny random llama
// model with its tokenizer), edited as the input says through the HDF5
// library, and sealed again, so every input is a well-formed HDF5 file and
// only its contents vary. (HDF5's own parser is not ours to fuzz; the
// byte-flip sweep covers damaged files.)
// Input: a mode byte (even: checkpoint, odd: model), then edits, one a line:
//   attr OBJ NAME int|uint|float|str VALUE   set (or replace) an attribute
//   data NAME DTYPE D1 [D2 [D3 [D4]]] [= V]  replace or add a dataset: DTYPE
//       f32 f64 bf16 f16 i32 i64, at most 65,536 values, all V (nan and inf
//       too) or a fixed pattern
//   strs NAME A|B|C                          replace or add a string dataset
// In str and strs values the two characters \n stand for a newline.
//   del NAME                                 delete a dataset or group
// An edit HDF5 or sptrain's writer refuses ends the input (not a finding).
// Checked: the reader either succeeds or throws an Error naming the file
// (checkpoint: read_checkpoint and read_stored_prompt; model:
// read_model_config, Tokenizer::load, and every weight read as f32).
#include <hdf5.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "fuzz_util.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/random_model.hpp"
#include "sptrain/prompt/stored_prompt.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

using namespace sptrain;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The valid files the edits start from, written once.
const std::string& base_file(bool model) {
  static const std::array<std::string, 2> files = [] {
    const std::string dir = fuzz::fresh_dir();
    Checkpoint c;
    c.model_fingerprint = "0123456789abcdef";
    c.model_path = "model.h5";
    c.step = 3;
    c.eval_accuracy = 0.5;
    c.eval_loss = 0.7;
    c.task_template = "{text} It was";
    c.labels = {{"0", " bad"}, {"1", " good"}};
    c.prompt_rows = 2;
    c.prompt_cols = 4;
    c.prompt = {0.1f, -0.2f, 0.3f, -0.4f, 0.5f, -0.6f, 0.7f, -0.8f};
    c.optimizer_name = "adamw";
    c.optimizer = {{"m", {2, 4}, std::vector<float>(8, 0.01f)}, {"v", {2, 4}, std::vector<float>(8, 0.02f)}};
    c.rng_state = {1, 2, 3, 4};
    c.config_yaml = "task:\n  max_length: 32\n";
    write_checkpoint(dir + "/ckpt.h5", c);

    ModelConfig m;
    m.family = Family::Llama;
    m.name = "tiny";
    m.n_layers = 1;
    m.d_model = 8;
    m.n_heads = 2;
    m.n_kv_heads = 1;
    m.head_dim = 4;
    m.d_ffn = 16;
    m.vocab_size = 256;
    m.max_positions = 16;
    m.tied_embeddings = true;
    write_random_model(dir + "/model.h5", m, 1, 0.2, [](h5::File& f) { Tokenizer::bytes_only().save(f); });
    return std::array<std::string, 2>{slurp(dir + "/ckpt.h5"), slurp(dir + "/model.h5")};
  }();
  return files[model ? 1 : 0];
}

bool dtype_of(const std::string& s, DType& d) {
  static const std::pair<const char*, DType> kTypes[] = {{"f32", DType::F32}, {"f64", DType::F64},
                                                         {"bf16", DType::BF16}, {"f16", DType::F16},
                                                         {"i32", DType::I32}, {"i64", DType::I64}};
  for (const auto& [name, type] : kTypes)
    if (s == name) {
      d = type;
      return true;
    }
  return false;
}

// VALUE with every "\n" (backslash, n) made a newline.
std::string unescape(std::string v) {
  for (size_t at = v.find("\\n"); at != std::string::npos; at = v.find("\\n", at + 1)) v.replace(at, 2, "\n");
  return v;
}

struct Edit {
  std::string kind, a, b, c, value;
  std::vector<int64_t> dims;
  bool fill = false;
  double fill_value = 0;
};

// Parses the edits; false when a line is not one (the input is skipped).
bool parse_edits(std::string_view text, std::vector<Edit>& edits) {
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    std::istringstream in(line);
    Edit e;
    in >> e.kind;
    if (e.kind == "attr") {
      in >> e.a >> e.b >> e.c;
      std::getline(in, e.value);
      if (!e.value.empty() && e.value[0] == ' ') e.value.erase(0, 1);
      e.value = unescape(e.value);
      if (e.c != "int" && e.c != "uint" && e.c != "float" && e.c != "str") return false;
    } else if (e.kind == "data") {
      in >> e.a >> e.b;
      DType d;
      if (!dtype_of(e.b, d)) return false;
      std::string tok;
      int64_t n = 1;
      while (in >> tok) {
        if (tok == "=") {
          std::string v;
          if (!(in >> v)) return false;
          e.fill = true;
          e.fill_value = std::strtod(v.c_str(), nullptr);
          break;
        }
        char* end = nullptr;
        const long long v = std::strtoll(tok.c_str(), &end, 10);
        if (*end != '\0' || v < 0 || v > 4096 || e.dims.size() == 4) return false;
        e.dims.push_back(v);
        n *= v;
      }
      if (e.dims.empty() || n > 65536) return false;
    } else if (e.kind == "strs") {
      in >> e.a;
      std::getline(in, e.value);
      if (!e.value.empty() && e.value[0] == ' ') e.value.erase(0, 1);
      e.value = unescape(e.value);
    } else if (e.kind == "del") {
      in >> e.a;
    } else {
      return false;
    }
    if (e.a.empty()) return false;
    edits.push_back(std::move(e));
  }
  return true;
}

// Deletes the links the edits replace or delete, with HDF5's C API (sptrain's
// File has no delete), then seals the file again. False when HDF5 refuses.
bool delete_links(const std::string& path, const std::vector<Edit>& edits) {
  std::vector<std::string> names;
  for (const Edit& e : edits)
    if (e.kind != "attr") names.push_back(e.a);
  if (names.empty()) return true;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) return false;
  for (const std::string& n : names)
    if (H5Lexists(f, n.c_str(), H5P_DEFAULT) > 0) H5Ldelete(f, n.c_str(), H5P_DEFAULT);
  if (H5Fclose(f) < 0) return false;
  h5::write_checksum(path);
  return true;
}

// Applies the edits with sptrain's writer; false when it refuses one.
bool apply_edits(const std::string& path, const std::vector<Edit>& edits) {
  try {
    h5::File f = h5::File::open_rw(path);
    for (const Edit& e : edits) {
      if (e.kind == "attr") {
        if (e.c == "int") f.set_attr(e.a, e.b, int64_t(std::strtoll(e.value.c_str(), nullptr, 10)));
        else if (e.c == "uint") f.set_attr(e.a, e.b, uint64_t(std::strtoull(e.value.c_str(), nullptr, 10)));
        else if (e.c == "float") f.set_attr(e.a, e.b, std::strtod(e.value.c_str(), nullptr));
        else f.set_attr(e.a, e.b, e.value);
      } else if (e.kind == "data") {
        Shape shape;
        for (int64_t d : e.dims) shape.dims[size_t(shape.rank++)] = d;
        DType d = DType::F32;
        dtype_of(e.b, d);
        const size_t n = size_t(shape.numel());
        auto value = [&](size_t k) { return e.fill ? e.fill_value : double(int64_t(k % 17) - 8) / 16; };
        if (d == DType::I32 || d == DType::I64) {
          std::vector<int64_t> v(n);
          for (size_t k = 0; k < n; ++k) {
            const double x = value(k) * 16;
            v[k] = std::isfinite(x) && std::fabs(x) < 1e18 ? int64_t(x) : 0;
          }
          f.write(e.a, d, shape, v.data(), DType::I64);
        } else if (d == DType::F64) {
          std::vector<double> v(n);
          for (size_t k = 0; k < n; ++k) v[k] = value(k);
          f.write(e.a, d, shape, v.data(), DType::F64);
        } else {
          std::vector<float> v(n);
          for (size_t k = 0; k < n; ++k) {
            const double x = value(k);  // beyond a float: infinity, as a rounding writer gives
            v[k] = std::fabs(x) > 3.4e38 ? float(x > 0 ? INFINITY : -INFINITY) : float(x);
          }
          f.write(e.a, d, shape, v.data(), DType::F32);
        }
      } else if (e.kind == "strs") {
        std::vector<std::string> items;
        std::istringstream in(e.value);
        for (std::string item; std::getline(in, item, '|');) items.push_back(item);
        f.write_strings(e.a, items);
      }
    }
    f.close();
  } catch (const Error&) {
    return false;
  }
  return true;
}

void read_model(const std::string& path) {
  h5::File f = h5::File::open_read(path);
  const ModelConfig c = read_model_config(f);
  (void)Tokenizer::load(f, "tokenizer");
  for (const auto& [name, shape] : model_datasets(c)) {
    std::vector<float> values(size_t(shape.numel()));
    f.read(name, DType::F32, values.data());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool model = data[0] & 1;
  const std::string& base = base_file(model);
  std::vector<Edit> edits;
  if (!parse_edits(fuzz::as_text(data + 1, size - 1), edits)) return 0;
  const std::string path = fuzz::write_file(fuzz::fresh_dir(), model ? "model.h5" : "ckpt.h5", base);
  if (!delete_links(path, edits) || !apply_edits(path, edits)) return 0;
  if (model) {
    fuzz::expect_clean(path, [&] { read_model(path); });
  } else {
    fuzz::expect_clean(path, [&] { (void)read_checkpoint(path); });
    fuzz::expect_clean(path, [&] { (void)read_stored_prompt(path); });
  }
  return 0;
}
