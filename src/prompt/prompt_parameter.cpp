#include "sptrain/prompt/prompt_parameter.hpp"

#include <algorithm>
#include <cmath>

#include "sptrain/core/error.hpp"

namespace sptrain {

PromptMethod prompt_method_of(const PromptSection& s) {
  if (s.method == "prompt_tuning") return PromptMethod::PromptTuning;
  if (s.method == "deep") return PromptMethod::Deep;
  if (s.method == "p_tuning") return PromptMethod::PTuning;
  fail("prompt.method: unknown method '", s.method, "' (prompt_tuning, deep or p_tuning)");
}

const char* prompt_method_name(PromptMethod m) {
  switch (m) {
    case PromptMethod::PromptTuning: return "prompt_tuning";
    case PromptMethod::Deep: return "deep";
    case PromptMethod::PTuning: return "p_tuning";
  }
  return "?";
}

PromptPlacement PromptPlacement::whole(const ModelConfig& m) {
  PromptPlacement p;
  p.num_layers = m.n_layers;
  p.kv_heads = m.n_kv_heads;
  return p;
}

PromptPlacement PromptPlacement::of_stage(const StageSpec& stage, const LocalDims& dims) {
  PromptPlacement p;
  p.first_stage = stage.first();
  p.first_layer = stage.first_layer;
  p.num_layers = stage.num_layers;
  p.kv_begin = int(dims.kv_range.begin);
  p.kv_heads = dims.kv_heads;
  return p;
}

PrefixShape prefix_shape(const ModelConfig& m, int64_t prompt_rows) {
  return PrefixShape{m.n_layers, prompt_rows, m.n_kv_heads, m.head_dim};
}

PrefixShape local_prefix_shape(const ModelConfig& m, int64_t prompt_rows, const PromptPlacement& place) {
  return PrefixShape{place.num_layers, prompt_rows, place.kv_heads, m.head_dim};
}

std::vector<float> local_prefix(const std::vector<float>& whole, const PrefixShape& shape,
                                const PromptPlacement& place) {
  SPT_CHECK(int64_t(whole.size()) == shape.size(), "internal error: a prefix of ", whole.size(),
            " values, expected ", shape.size());
  SPT_CHECK(place.first_layer + place.num_layers <= shape.layers && place.kv_begin + place.kv_heads <= shape.kv_heads,
            "internal error: layers ", place.first_layer, "+", place.num_layers, " and kv heads ", place.kv_begin,
            "+", place.kv_heads, " outside a prefix of ", shape.layers, " layers and ", shape.kv_heads, " kv heads");
  const int64_t P = shape.rows, D = shape.head_dim, WW = shape.cols(), K = place.kv_heads, W = 2 * K * D;
  std::vector<float> mine(size_t(int64_t(place.num_layers) * P * W));
  for (int i = 0; i < place.num_layers; ++i)
    for (int64_t p = 0; p < P; ++p) {
      const float* src = whole.data() + (int64_t(place.first_layer + i) * P + p) * WW;
      float* dst = mine.data() + (int64_t(i) * P + p) * W;
      std::copy(src + place.kv_begin * D, src + (place.kv_begin + K) * D, dst);
      std::copy(src + shape.kv_heads * D + place.kv_begin * D,
                src + shape.kv_heads * D + (place.kv_begin + K) * D, dst + K * D);
    }
  return mine;
}

namespace {

std::string unit_name(const char* kind, int layer, int kv_head) {
  return std::string(kind) + "." + std::to_string(layer) + "." + std::to_string(kv_head);
}


bool deep_mlp(const PromptSection& s) { return s.method == "deep" && s.reparameterize == "mlp"; }

}  // namespace

int prompt_hidden_width(const PromptSection& s, const ModelConfig& m) {
  return s.encoder_hidden > 0 ? s.encoder_hidden : m.d_model;
}

std::vector<ParameterTensor> PromptParameter::layout(const PromptSection& s, const ModelConfig& m,
                                                     const PromptPlacement& pl) {
  const PromptMethod method = prompt_method_of(s);
  const int P = s.length, d = m.d_model, h = prompt_hidden_width(s, m), D = m.head_dim;
  std::vector<ParameterTensor> list;
  auto add = [&](const std::string& name, int64_t rows, int64_t cols, bool counted) {
    const int64_t at = list.empty() ? 0 : list.back().offset + list.back().size();
    list.push_back(ParameterTensor{name, at, rows, cols, counted});
  };
  switch (method) {
    case PromptMethod::PromptTuning:
      if (pl.first_stage) add("prompt", P, d, true);
      break;
    case PromptMethod::PTuning:
      if (!pl.first_stage) break;
      add("encoder.embedding", P, d, true);
      for (const EncoderTensor& t : make_ptuning_encoder(s.encoder, d, h)->tensors())
        add("encoder." + t.name, t.rows, t.cols, true);
      break;
    case PromptMethod::Deep: {
      const bool mlp = deep_mlp(s);
      if (mlp) {
        add("reparam.embedding", P, d, pl.counts_shared);
        for (const EncoderTensor& t : PrefixTrunk(d, h).tensors())
          add("reparam." + t.name, t.rows, t.cols, pl.counts_shared);
      }
      for (int l = pl.first_layer; l < pl.first_layer + pl.num_layers; ++l)
        for (int g = pl.kv_begin; g < pl.kv_begin + pl.kv_heads; ++g) {
          if (mlp) {
            add(unit_name("reparam.w2", l, g), 2 * D, h, pl.counts_units);
            add(unit_name("reparam.b2", l, g), 1, 2 * D, pl.counts_units);
          } else {
            add(unit_name("prefix", l, g), P, 2 * D, pl.counts_units);
          }
        }
      break;
    }
  }
  return list;
}

PromptParameter::PromptParameter(Backend& backend, DType stat, const PromptSection& s,
                                 const ModelConfig& m, const PromptPlacement& pl, bool device)
    : backend_(backend), stat_(stat), method_(prompt_method_of(s)), rows_(s.length),
      cols_(m.d_model), hidden_(prompt_hidden_width(s, m)), place_(pl), prefix_(prefix_shape(m, s.length)) {
  SPT_ASSERT(stat == DType::F32 || stat == DType::F64);
  const PrefixShape local = local_prefix_shape(m, s.length, pl);
  width_ = local.cols();
  tensors_ = layout(s, m, pl);
  const int64_t n = tensors_.empty() ? 0 : tensors_.back().offset + tensors_.back().size();
  values_.assign(size_t(n), 0.f);
  grad_.assign(size_t(n), 0.f);
  if (method_ == PromptMethod::PTuning && pl.first_stage)
    encoder_ = make_ptuning_encoder(s.encoder, cols_, hidden_);
  if (deep_mlp(s)) trunk_ = std::make_unique<PrefixTrunk>(cols_, hidden_);
  if (!holds()) return;
  const int64_t P = rows_;
  if (method_ != PromptMethod::Deep) {
    prompt_host_.assign(size_t(P * cols_), 0.f);
    prompt_grad_host_.assign(prompt_host_.size(), 0.f);
    if (device) {
      prompt_ = backend.allocate(stat, Shape{P, cols_});
      prompt_grad_ = backend.allocate(stat, Shape{P, cols_});
    }
  } else if (pl.num_layers > 0 && width_ > 0) {
    prefix_host_.assign(size_t(local.size()), 0.f);
    prefix_grad_host_.assign(prefix_host_.size(), 0.f);
    if (device) {
      prefix_dev_ = backend.allocate(stat, Shape{pl.num_layers, P, width_});
      prefix_grad_ = backend.allocate(stat, Shape{pl.num_layers, P, width_});
      if (trunk_) shared_grad_ = backend.allocate(stat, Shape{P, hidden_});
    }
  }
  if (trunk_) {
    const size_t hidden = size_t(P) * size_t(hidden_);
    trunk_grad_.units.assign(size_t(local.size()), 0.f);
    trunk_grad_.dhidden.assign(hidden, 0.0);
    trunk_grad_.partial.assign(hidden, 0.0);
    if (stat == DType::F32) trunk_grad_.dhidden32.assign(hidden, 0.f);
  }
  if (stat == DType::F64)
    staging_.assign(std::max({prompt_host_.size(), prefix_host_.size(), size_t(P * hidden_)}), 0.0);
}

PromptParameter::Memory PromptParameter::memory(const PromptSection& s, const ModelConfig& m,
                                                const PromptPlacement& pl, DType stat, bool device) {
  // The constructor's buffers, in its order.
  const std::vector<ParameterTensor> tensors = layout(s, m, pl);
  Memory mem;
  if (tensors.empty()) return mem;
  const int64_t f = int64_t(sizeof(float)), d = int64_t(sizeof(double)), sb = int64_t(dtype_size(stat));
  const int64_t n = tensors.back().offset + tensors.back().size(), P = s.length, h = prompt_hidden_width(s, m);
  const PrefixShape local = local_prefix_shape(m, P, pl);
  mem.host += 2 * n * f;  // values_, grad_
  int64_t host_copy = 0;  // prompt_host_ or prefix_host_
  if (prompt_method_of(s) != PromptMethod::Deep) {
    host_copy = P * m.d_model;
    if (device) mem.device += 2 * host_copy * sb;
  } else if (pl.num_layers > 0 && local.cols() > 0) {
    host_copy = local.size();
    if (device) mem.device += (2 * host_copy + (deep_mlp(s) ? P * h : 0)) * sb;
  }
  mem.host += 2 * host_copy * f;  // and its gradient's
  if (deep_mlp(s)) {
    mem.host += P * m.d_model * f + P * h * d;  // the trunk's E and H
    mem.host += local.size() * f + 2 * P * h * d +
                (stat == DType::F32 ? P * h * f : 0);  // TrunkGradScratch
  }
  if (stat == DType::F64) mem.host += std::max(host_copy, P * h) * d;  // staging_
  return mem;
}

int64_t PromptParameter::host_bytes() const {
  auto bytes = [](const auto& v) { return int64_t(v.size() * sizeof(v[0])); };
  int64_t b = bytes(values_) + bytes(grad_) + bytes(prompt_host_) + bytes(prompt_grad_host_) +
              bytes(prefix_host_) + bytes(prefix_grad_host_) + bytes(staging_) + bytes(trunk_grad_.units) +
              bytes(trunk_grad_.dhidden) + bytes(trunk_grad_.partial) + bytes(trunk_grad_.dhidden32);
  return b + (trunk_ ? trunk_->bytes() : 0);
}

PromptParameter::PromptParameter(Backend& backend, DType stat, int rows, int cols, bool on_device)
    : PromptParameter(backend, stat,
                      [&] {
                        PromptSection s;
                        s.length = rows;
                        return s;
                      }(),
                      [&] {
                        ModelConfig m;
                        m.d_model = cols;
                        return m;
                      }(),
                      [&] {
                        PromptPlacement p;
                        p.first_stage = on_device;
                        return p;
                      }()) {}

PromptParameter::~PromptParameter() = default;

const ParameterTensor* PromptParameter::find(const std::string& name) const {
  for (const ParameterTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

double PromptParameter::grad_sum_of_squares() const {
  double sum = 0.0;
  for (const ParameterTensor& t : tensors_) {
    if (!t.counted) continue;
    const float* g = grad_.data() + t.offset;
    for (int64_t i = 0; i < t.size(); ++i) sum += double(g[i]) * double(g[i]);
  }
  return sum;
}

PromptInputs PromptParameter::device_grad() const {
  return PromptInputs(prompt_grad_.empty() ? Tensor{} : prompt_grad_.view(),
                      prefix_grad_.empty() ? Tensor{} : prefix_grad_.view());
}

std::vector<Tensor> PromptParameter::device_grad_tensors() const {
  std::vector<Tensor> t;
  if (!prompt_grad_.empty()) t.push_back(prompt_grad_.view());
  if (!prefix_grad_.empty()) t.push_back(prefix_grad_.view());
  return t;
}

void PromptParameter::copy_to_device(const Buffer& dst, const std::vector<float>& src) {
  if (staging_.empty()) {
    backend_.copy_from_host(dst, src.data());
    return;
  }
  for (size_t i = 0; i < src.size(); ++i) staging_[i] = src[i];
  backend_.copy_from_host(dst, staging_.data());
}

void PromptParameter::copy_from_device(std::vector<float>& dst, const Buffer& src) const {
  if (staging_.empty()) {
    backend_.copy_to_host(dst.data(), src);
    return;
  }
  backend_.copy_to_host(staging_.data(), src);
  for (size_t i = 0; i < dst.size(); ++i) dst[i] = float(staging_[i]);
}

// Unit (layer l, kv head g) row p: [k (D) | v (D)]; this rank's prefix row
// of local layer i: [k of its kv heads | v of its kv heads].
void PromptParameter::units_to_prefix(const float* units, std::vector<float>& prefix) const {
  const int64_t P = rows_, D = prefix_.head_dim, K = place_.kv_heads, W = width_;
  for (int i = 0; i < place_.num_layers; ++i)
    for (int64_t j = 0; j < K; ++j) {
      const float* u = units + (int64_t(i) * K + j) * P * 2 * D;
      for (int64_t p = 0; p < P; ++p) {
        float* row = prefix.data() + (int64_t(i) * P + p) * W;
        std::copy(u + p * 2 * D, u + p * 2 * D + D, row + j * D);
        std::copy(u + p * 2 * D + D, u + p * 2 * D + 2 * D, row + K * D + j * D);
      }
    }
}

void PromptParameter::prefix_to_units(const std::vector<float>& prefix, float* units) const {
  const int64_t P = rows_, D = prefix_.head_dim, K = place_.kv_heads, W = width_;
  for (int i = 0; i < place_.num_layers; ++i)
    for (int64_t j = 0; j < K; ++j) {
      float* u = units + (int64_t(i) * K + j) * P * 2 * D;
      for (int64_t p = 0; p < P; ++p) {
        const float* row = prefix.data() + (int64_t(i) * P + p) * W;
        std::copy(row + j * D, row + j * D + D, u + p * 2 * D);
        std::copy(row + K * D + j * D, row + K * D + j * D + D, u + p * 2 * D + D);
      }
    }
}

std::vector<float> PromptParameter::computed_prompt() {
  download();
  if (method_ == PromptMethod::Deep || !holds()) return {};
  if (method_ == PromptMethod::PromptTuning) return values_;
  const ParameterTensor& e = *find("encoder.embedding");
  std::vector<float> out(size_t(rows_) * size_t(cols_));
  encoder_->forward(values_.data() + e.offset + e.size(), values_.data() + e.offset, rows_, out.data());
  return out;
}

std::vector<float> PromptParameter::computed_prefix() {
  download();
  if (method_ != PromptMethod::Deep || prefix_host_.empty()) return {};
  std::vector<float> prefix(prefix_host_.size());
  if (!trunk_) {
    units_to_prefix(values_.data(), prefix);
    return prefix;
  }
  // The trunk once, then each unit's head: units in the layout's order.
  const ParameterTensor& e = *find("reparam.embedding");
  const ParameterTensor& w1 = *find("reparam.w1");
  trunk_->forward(values_.data() + w1.offset, values_.data() + e.offset, rows_);
  const int64_t n = 2 * prefix_.head_dim, unit = int64_t(rows_) * n;
  std::vector<float> units(size_t(int64_t(place_.num_layers) * place_.kv_heads * unit));
  size_t k = 0;
  for (size_t t = 3; t + 1 < tensors_.size(); t += 2, ++k) {
    const ParameterTensor& w2 = tensors_[t];
    const ParameterTensor& b2 = tensors_[t + 1];
    prefix_head_forward(trunk_->hidden().data(), rows_, hidden_, values_.data() + w2.offset,
                        values_.data() + b2.offset, int(n), units.data() + int64_t(k) * unit);
  }
  units_to_prefix(units.data(), prefix);
  return prefix;
}

std::vector<float>& PromptParameter::values() {
  download();
  newer_ = Newer::Host;
  return values_;
}

const std::vector<float>& PromptParameter::values() const {
  download();
  return values_;
}

PromptInputs PromptParameter::device() {
  upload();
  return PromptInputs(prompt_.empty() ? Tensor{} : prompt_.view(),
                      prefix_dev_.empty() ? Tensor{} : prefix_dev_.view());
}

void PromptParameter::device_written() {
  SPT_CHECK(updates_on_device(), "internal error: a ", prompt_method_name(method_),
            " prompt is updated on the host, not on the device");
  newer_ = Newer::Device;
}

void PromptParameter::upload() {
  if (!holds() || newer_ != Newer::Host) return;
  newer_ = Newer::Same;
  if (method_ == PromptMethod::Deep) {
    if (prefix_dev_.empty()) return;
    prefix_host_ = computed_prefix();
    copy_to_device(prefix_dev_, prefix_host_);
    return;
  }
  if (prompt_.empty()) return;  // host values only (assembling a checkpoint)
  if (method_ == PromptMethod::PromptTuning) {
    copy_to_device(prompt_, values_);
    return;
  }
  prompt_host_ = computed_prompt();
  copy_to_device(prompt_, prompt_host_);
}

void PromptParameter::download() const {
  if (newer_ != Newer::Device) return;
  copy_from_device(values_, prompt_);
  newer_ = Newer::Same;
}

void PromptParameter::zero_grad() {
  if (!prompt_grad_.empty()) backend_.fill(prompt_grad_, 0.0);
  if (!prefix_grad_.empty()) backend_.fill(prefix_grad_, 0.0);
}

void PromptParameter::download_grad(const std::function<void(const Tensor&)>& sum_over_model) {
  if (!holds()) return;
  switch (method_) {
    case PromptMethod::PromptTuning:
      copy_from_device(grad_, prompt_grad_);
      return;
    case PromptMethod::PTuning: {
      copy_from_device(prompt_grad_host_, prompt_grad_);
      const ParameterTensor& e = *find("encoder.embedding");
      encoder_->backward(values_.data() + e.offset + e.size(), prompt_grad_host_.data(),
                         grad_.data() + e.offset + e.size(), grad_.data() + e.offset);
      return;
    }
    case PromptMethod::Deep:
      break;
  }
  if (!prefix_grad_.empty()) copy_from_device(prefix_grad_host_, prefix_grad_);
  if (!trunk_) {
    if (!prefix_grad_host_.empty()) prefix_to_units(prefix_grad_host_, grad_.data());
    return;
  }
  // Each unit's head, then the trunk from dH summed over every rank's units
  // (each unit once: the first of the tensor ranks sharing it adds it).
  // The buffers are the constructor's (no allocation in the step).
  TrunkGradScratch& g = trunk_grad_;
  const int64_t n = 2 * prefix_.head_dim, unit = int64_t(rows_) * n;
  if (prefix_grad_host_.empty()) std::fill(g.units.begin(), g.units.end(), 0.f);
  else prefix_to_units(prefix_grad_host_, g.units.data());
  std::fill(g.dhidden.begin(), g.dhidden.end(), 0.0);
  size_t k = 0;
  for (size_t t = 3; t + 1 < tensors_.size(); t += 2, ++k) {
    const ParameterTensor& w2 = tensors_[t];
    const ParameterTensor& b2 = tensors_[t + 1];
    std::fill(g.partial.begin(), g.partial.end(), 0.0);
    prefix_head_backward(trunk_->hidden().data(), rows_, hidden_, values_.data() + w2.offset, int(n),
                         g.units.data() + int64_t(k) * unit, grad_.data() + w2.offset,
                         grad_.data() + b2.offset, g.partial.data());
    if (place_.first_kv_holder)
      for (size_t i = 0; i < g.dhidden.size(); ++i) g.dhidden[i] += g.partial[i];
  }
  // Through the device for the groups, in the stat dtype (f64 runs keep f64;
  // f32 rounds the partial sums as every other f32 reduction does).
  SPT_CHECK(sum_over_model || (place_.num_layers == prefix_.layers && place_.kv_heads == prefix_.kv_heads),
            "internal error: a sharded prefix MLP needs its trunk gradient summed over the model's ranks");
  if (sum_over_model) {
    if (stat_ == DType::F64) {
      backend_.copy_from_host(shared_grad_, g.dhidden.data());
      sum_over_model(shared_grad_.view());
      backend_.copy_to_host(g.dhidden.data(), shared_grad_);
    } else {
      std::copy(g.dhidden.begin(), g.dhidden.end(), g.dhidden32.begin());
      backend_.copy_from_host(shared_grad_, g.dhidden32.data());
      sum_over_model(shared_grad_.view());
      backend_.copy_to_host(g.dhidden32.data(), shared_grad_);
      std::copy(g.dhidden32.begin(), g.dhidden32.end(), g.dhidden.begin());
    }
  }
  const ParameterTensor& e = *find("reparam.embedding");
  const ParameterTensor& w1 = *find("reparam.w1");
  trunk_->backward(values_.data() + w1.offset, g.dhidden.data(), grad_.data() + w1.offset,
                   grad_.data() + e.offset);
}

void PromptParameter::set_from_prompt(const std::vector<float>& prompt, Rng& rng) {
  if (!holds()) return;
  SPT_CHECK(prompt.size() == size_t(rows_) * size_t(cols_), "internal error: a prompt of ",
            prompt.size(), " values for [", rows_, ", ", cols_, "]");
  newer_ = Newer::Host;
  if (method_ == PromptMethod::PromptTuning) {
    values_ = prompt;
    return;
  }
  SPT_CHECK(method_ == PromptMethod::PTuning, "internal error: set_from_prompt on a deep prompt");
  const ParameterTensor& e = *find("encoder.embedding");
  std::copy(prompt.begin(), prompt.end(), values_.begin() + e.offset);
  encoder_->init(values_.data() + e.offset + e.size(), rng);
}

std::vector<float> PromptParameter::local_prefix(const std::vector<float>& whole) const {
  return sptrain::local_prefix(whole, prefix_, place_);
}

void PromptParameter::set_prefix(const std::vector<float>& mine, const std::vector<float>& embedding,
                                 Rng& rng) {
  SPT_CHECK(method_ == PromptMethod::Deep, "internal error: set_prefix on a ", prompt_method_name(method_),
            " prompt");
  SPT_CHECK(mine.size() == prefix_host_.size(), "internal error: this rank's prefix of ", mine.size(),
            " values, expected ", prefix_host_.size());
  const int64_t P = rows_, D = prefix_.head_dim, K = place_.kv_heads;
  newer_ = Newer::Host;
  if (!trunk_) {
    if (!mine.empty()) prefix_to_units(mine, values_.data());
    return;
  }
  // The trunk from `embedding` and PyTorch's init; each head fitted to its
  // unit: b2 = the rows' mean, W2 = Xᵀ H with (H Hᵀ + λI) X = prefix - b2
  // (the smallest W2 that gives the prefix, ridge-regularised so that
  // repeated embedding rows, as a cycled init text gives, stay solvable).
  SPT_CHECK(embedding.size() == size_t(P) * size_t(cols_), "internal error: prefix MLP embedding of ",
            embedding.size(), " values");
  const ParameterTensor& e = *find("reparam.embedding");
  std::copy(embedding.begin(), embedding.end(), values_.begin() + e.offset);
  const ParameterTensor& w1 = *find("reparam.w1");
  PromptEncoder::init_tensors(trunk_->tensors(), values_.data() + w1.offset, rng);
  trunk_->forward(values_.data() + w1.offset, values_.data() + e.offset, rows_);
  const std::vector<double>& H = trunk_->hidden();
  const int64_t h = hidden_;
  std::vector<double> A(size_t(P * P), 0.0);
  double trace = 0;
  for (int64_t a = 0; a < P; ++a)
    for (int64_t b = 0; b < P; ++b) {
      double dot = 0;
      for (int64_t j = 0; j < h; ++j) dot += H[size_t(a * h + j)] * H[size_t(b * h + j)];
      A[size_t(a * P + b)] = dot;
      if (a == b) trace += dot;
    }
  const double ridge = 1e-4 * trace / double(P) + 1e-12;
  for (int64_t a = 0; a < P; ++a) A[size_t(a * P + a)] += ridge;
  // Cholesky A = L Lᵀ (A is symmetric positive definite).
  for (int64_t j = 0; j < P; ++j) {
    for (int64_t k = 0; k < j; ++k) A[size_t(j * P + j)] -= A[size_t(j * P + k)] * A[size_t(j * P + k)];
    A[size_t(j * P + j)] = std::sqrt(A[size_t(j * P + j)]);
    for (int64_t i = j + 1; i < P; ++i) {
      for (int64_t k = 0; k < j; ++k) A[size_t(i * P + j)] -= A[size_t(i * P + k)] * A[size_t(j * P + k)];
      A[size_t(i * P + j)] /= A[size_t(j * P + j)];
    }
  }
  const int64_t n = 2 * D, unit = P * n;
  std::vector<float> units(size_t(int64_t(place_.num_layers) * K * unit));
  if (!mine.empty()) prefix_to_units(mine, units.data());
  std::vector<double> x(static_cast<size_t>(P));
  size_t k = 0;
  for (size_t t = 3; t + 1 < tensors_.size(); t += 2, ++k) {
    float* w2 = values_.data() + tensors_[t].offset;  // [n, h]
    float* b2 = values_.data() + tensors_[t + 1].offset;
    const float* y = units.data() + int64_t(k) * unit;  // [P, n]
    for (int64_t c = 0; c < n; ++c) {
      double mean = 0;
      for (int64_t p = 0; p < P; ++p) mean += y[p * n + c];
      mean /= double(P);
      b2[c] = float(mean);
      for (int64_t p = 0; p < P; ++p) x[size_t(p)] = double(y[p * n + c]) - mean;
      for (int64_t i = 0; i < P; ++i) {  // L z = y, then Lᵀ x = z
        for (int64_t j = 0; j < i; ++j) x[size_t(i)] -= A[size_t(i * P + j)] * x[size_t(j)];
        x[size_t(i)] /= A[size_t(i * P + i)];
      }
      for (int64_t i = P - 1; i >= 0; --i) {
        for (int64_t j = i + 1; j < P; ++j) x[size_t(i)] -= A[size_t(j * P + i)] * x[size_t(j)];
        x[size_t(i)] /= A[size_t(i * P + i)];
      }
      for (int64_t j = 0; j < h; ++j) {
        double v = 0;
        for (int64_t p = 0; p < P; ++p) v += x[size_t(p)] * H[size_t(p * h + j)];
        w2[c * h + j] = float(v);
      }
    }
  }
}

void PromptParameter::set_values(
    const std::function<const std::vector<float>*(const ParameterTensor&)>& find_values) {
  newer_ = Newer::Host;
  for (const ParameterTensor& t : tensors_) {
    const std::vector<float>* v = find_values(t);
    SPT_CHECK(v, "the checkpoint has no tensor '", t.name, "' of the ", prompt_method_name(method_),
              " prompt");
    SPT_CHECK(int64_t(v->size()) == t.size(), "the checkpoint's tensor '", t.name, "' has ", v->size(),
              " values, expected ", t.rows, " x ", t.cols);
    std::copy(v->begin(), v->end(), values_.begin() + t.offset);
  }
}

}  // namespace sptrain
