#include "sptrain/prompt/encoder.hpp"

#include <cmath>

#include "sptrain/core/error.hpp"

namespace sptrain {

namespace {

// y [rows, out] = x [rows, in] Wᵀ + b, W [out, in].
void linear(const double* x, int rows, int in, const float* w, const float* b, int out, double* y) {
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      const float* wo = w + int64_t(o) * in;
      const double* xr = x + int64_t(r) * in;
      double s = b ? double(b[o]) : 0.0;
      for (int i = 0; i < in; ++i) s += xr[i] * double(wo[i]);
      y[int64_t(r) * out + o] = s;
    }
}

// dW [out, in] += dyᵀ x; db [out] += column sums of dy; dx [rows, in] = dy W
// (overwritten; skipped when null).
void linear_backward(const double* x, const double* dy, int rows, int in, const float* w, int out,
                     double* dw, double* db, double* dx) {
  for (int r = 0; r < rows; ++r) {
    const double* xr = x + int64_t(r) * in;
    for (int o = 0; o < out; ++o) {
      const double g = dy[int64_t(r) * out + o];
      if (db) db[o] += g;
      double* dwo = dw + int64_t(o) * in;
      for (int i = 0; i < in; ++i) dwo[i] += g * xr[i];
    }
  }
  if (!dx) return;
  for (int r = 0; r < rows; ++r) {
    double* dxr = dx + int64_t(r) * in;
    for (int i = 0; i < in; ++i) dxr[i] = 0;
    for (int o = 0; o < out; ++o) {
      const double g = dy[int64_t(r) * out + o];
      const float* wo = w + int64_t(o) * in;
      for (int i = 0; i < in; ++i) dxr[i] += g * double(wo[i]);
    }
  }
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

void store(const std::vector<double>& src, float* dst) {
  for (size_t i = 0; i < src.size(); ++i) dst[i] = float(src[i]);
}

// The tensors' offsets in the flat vector, in order.
std::vector<int64_t> offsets_of(const std::vector<EncoderTensor>& list) {
  std::vector<int64_t> off;
  int64_t at = 0;
  for (const EncoderTensor& t : list) {
    off.push_back(at);
    at += t.size();
  }
  off.push_back(at);
  return off;
}

EncoderTensor linear_weight(const std::string& name, int out, int in) {
  return {name + ".weight", out, in, 1.0 / std::sqrt(double(in))};
}
EncoderTensor linear_bias(const std::string& name, int out, int in) {
  return {name + ".bias", 1, out, 1.0 / std::sqrt(double(in))};
}

// Linear(d, h) ReLU Linear(h, h) ReLU Linear(h, d), as PEFT's mlp_head.
class PTuningMlp : public PromptEncoder {
 public:
  PTuningMlp(int d, int h) : d_(d), h_(h) {}
  std::vector<EncoderTensor> tensors() const override {
    return {linear_weight("mlp_head.0", h_, d_), linear_bias("mlp_head.0", h_, d_),
            linear_weight("mlp_head.2", h_, h_), linear_bias("mlp_head.2", h_, h_),
            linear_weight("mlp_head.4", d_, h_), linear_bias("mlp_head.4", d_, h_)};
  }
  void forward(const float* w, const float* in, int rows, float* out) override {
    rows_ = rows;
    const std::vector<int64_t> o = offsets_of(tensors());
    x_.assign(in, in + int64_t(rows) * d_);
    a1_.resize(size_t(rows) * size_t(h_));
    a2_.resize(a1_.size());
    linear(x_.data(), rows, d_, w + o[0], w + o[1], h_, a1_.data());
    for (double& v : a1_) v = std::max(v, 0.0);
    linear(a1_.data(), rows, h_, w + o[2], w + o[3], h_, a2_.data());
    for (double& v : a2_) v = std::max(v, 0.0);
    std::vector<double> y(size_t(rows) * size_t(d_));
    linear(a2_.data(), rows, h_, w + o[4], w + o[5], d_, y.data());
    store(y, out);
  }
  void backward(const float* w, const float* dout, float* dw, float* din) override {
    const std::vector<EncoderTensor> list = tensors();
    const std::vector<int64_t> o = offsets_of(list);
    const int rows = rows_;
    std::vector<double> g(size_t(o.back()), 0.0);
    std::vector<double> dy(dout, dout + int64_t(rows) * d_), d2(a2_.size()), d1(a1_.size()),
        dx(x_.size());
    linear_backward(a2_.data(), dy.data(), rows, h_, w + o[4], d_, &g[size_t(o[4])], &g[size_t(o[5])], d2.data());
    for (size_t i = 0; i < d2.size(); ++i) d2[i] = a2_[i] > 0 ? d2[i] : 0.0;
    linear_backward(a1_.data(), d2.data(), rows, h_, w + o[2], h_, &g[size_t(o[2])], &g[size_t(o[3])], d1.data());
    for (size_t i = 0; i < d1.size(); ++i) d1[i] = a1_[i] > 0 ? d1[i] : 0.0;
    linear_backward(x_.data(), d1.data(), rows, d_, w + o[0], h_, &g[size_t(o[0])], &g[size_t(o[1])], dx.data());
    store(g, dw);
    store(dx, din);
  }

 private:
  int d_, h_, rows_ = 0;
  std::vector<double> x_, a1_, a2_;
};

// One direction of one LSTM layer over a sequence (PyTorch's equations, gates i, f, g, o):
//   z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
//   c_t = σ(z_f) c_{t-1} + σ(z_i) tanh(z_g);  h_t = σ(z_o) tanh(c_t)
// A reversed direction runs from the last row to the first.
struct LstmDirection {
  int in = 0, h = 0;
  bool reverse = false;
  // Saved by forward, per row t (in the sequence's order): the gates after
  // their nonlinearity [T, 4h], the cell [T, h] and h [T, h].
  std::vector<double> gates, cell, hid;

  void forward(const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh,
               const double* x, int T, double* out, int out_stride) {
    gates.assign(size_t(T) * 4 * size_t(h), 0.0);
    cell.assign(size_t(T) * size_t(h), 0.0);
    hid.assign(size_t(T) * size_t(h), 0.0);
    std::vector<double> z(size_t(4 * h));
    for (int s = 0; s < T; ++s) {
      const int t = reverse ? T - 1 - s : s, prev = reverse ? t + 1 : t - 1;
      const bool first = s == 0;
      linear(x + int64_t(t) * in, 1, in, w_ih, b_ih, 4 * h, z.data());
      for (int k = 0; k < 4 * h; ++k) {
        double acc = double(b_hh[k]);
        if (!first) {
          const float* wk = w_hh + int64_t(k) * h;
          const double* hp = &hid[size_t(prev) * size_t(h)];
          for (int j = 0; j < h; ++j) acc += double(wk[j]) * hp[j];
        }
        z[size_t(k)] += acc;
      }
      double* g = &gates[size_t(t) * 4 * size_t(h)];
      for (int j = 0; j < h; ++j) {
        g[j] = sigmoid(z[size_t(j)]);
        g[h + j] = sigmoid(z[size_t(h + j)]);
        g[2 * h + j] = std::tanh(z[size_t(2 * h + j)]);
        g[3 * h + j] = sigmoid(z[size_t(3 * h + j)]);
        const double cp = first ? 0.0 : cell[size_t(prev) * size_t(h) + size_t(j)];
        const double c = g[h + j] * cp + g[j] * g[2 * h + j];
        cell[size_t(t) * size_t(h) + size_t(j)] = c;
        const double hv = g[3 * h + j] * std::tanh(c);
        hid[size_t(t) * size_t(h) + size_t(j)] = hv;
        out[int64_t(t) * out_stride + j] = hv;
      }
    }
  }

  // dout: the gradient at this direction's outputs (stride out_stride).
  // Adds the weights' gradients and dx (dx [T, in], accumulated).
  void backward(const float* w_ih, const float* w_hh, const double* x, int T, const double* dout,
                int out_stride, double* dw_ih, double* dw_hh, double* db_ih, double* db_hh,
                double* dx) const {
    std::vector<double> dh_next(size_t(h), 0.0), dc_next(size_t(h), 0.0), dz(size_t(4 * h));
    for (int s = T - 1; s >= 0; --s) {
      const int t = reverse ? T - 1 - s : s, prev = reverse ? t + 1 : t - 1;
      const bool first = s == 0;
      const double* g = &gates[size_t(t) * 4 * size_t(h)];
      for (int j = 0; j < h; ++j) {
        const double c = cell[size_t(t) * size_t(h) + size_t(j)], tc = std::tanh(c);
        const double dh = dout[int64_t(t) * out_stride + j] + dh_next[size_t(j)];
        const double i = g[j], f = g[h + j], gg = g[2 * h + j], o = g[3 * h + j];
        const double dc = dh * o * (1.0 - tc * tc) + dc_next[size_t(j)];
        const double cp = first ? 0.0 : cell[size_t(prev) * size_t(h) + size_t(j)];
        dz[size_t(j)] = dc * gg * i * (1.0 - i);
        dz[size_t(h + j)] = dc * cp * f * (1.0 - f);
        dz[size_t(2 * h + j)] = dc * i * (1.0 - gg * gg);
        dz[size_t(3 * h + j)] = dh * tc * o * (1.0 - o);
        dc_next[size_t(j)] = dc * f;
      }
      // z = W_ih x_t + W_hh h_prev + biases.
      const double* xt = x + int64_t(t) * in;
      for (int k = 0; k < 4 * h; ++k) {
        const double d = dz[size_t(k)];
        db_ih[k] += d;
        db_hh[k] += d;
        double* dwk = dw_ih + int64_t(k) * in;
        const float* wk = w_ih + int64_t(k) * in;
        double* dxt = dx + int64_t(t) * in;
        for (int j = 0; j < in; ++j) {
          dwk[j] += d * xt[j];
          dxt[j] += d * double(wk[j]);
        }
      }
      std::fill(dh_next.begin(), dh_next.end(), 0.0);
      if (first) continue;
      const double* hp = &hid[size_t(prev) * size_t(h)];
      for (int k = 0; k < 4 * h; ++k) {
        const double d = dz[size_t(k)];
        double* dwk = dw_hh + int64_t(k) * h;
        const float* wk = w_hh + int64_t(k) * h;
        for (int j = 0; j < h; ++j) {
          dwk[j] += d * hp[j];
          dh_next[size_t(j)] += d * double(wk[j]);
        }
      }
    }
  }
};

// LSTM(d, h, 2 layers, bidirectional) then Linear(2h, 2h) ReLU Linear(2h, d):
// PEFT's lstm_head and mlp_head.
class PTuningLstm : public PromptEncoder {
 public:
  PTuningLstm(int d, int h) : d_(d), h_(h) {
    for (int layer = 0; layer < 2; ++layer)
      for (bool rev : {false, true}) dirs_.push_back(LstmDirection{layer == 0 ? d : 2 * h, h, rev, {}, {}, {}});
  }
  std::vector<EncoderTensor> tensors() const override {
    std::vector<EncoderTensor> t;
    const double bound = 1.0 / std::sqrt(double(h_));
    for (int layer = 0; layer < 2; ++layer)
      for (const char* suffix : {"", "_reverse"}) {
        const std::string l = std::to_string(layer) + suffix;
        const int in = layer == 0 ? d_ : 2 * h_;
        t.push_back({"lstm_head.weight_ih_l" + l, 4 * h_, in, bound});
        t.push_back({"lstm_head.weight_hh_l" + l, 4 * h_, h_, bound});
        t.push_back({"lstm_head.bias_ih_l" + l, 1, 4 * h_, bound});
        t.push_back({"lstm_head.bias_hh_l" + l, 1, 4 * h_, bound});
      }
    t.push_back(linear_weight("mlp_head.0", 2 * h_, 2 * h_));
    t.push_back(linear_bias("mlp_head.0", 2 * h_, 2 * h_));
    t.push_back(linear_weight("mlp_head.2", d_, 2 * h_));
    t.push_back(linear_bias("mlp_head.2", d_, 2 * h_));
    return t;
  }
  void forward(const float* w, const float* in, int rows, float* out) override {
    rows_ = rows;
    const std::vector<int64_t> o = offsets_of(tensors());
    const size_t H2 = size_t(2 * h_);
    x_.assign(in, in + int64_t(rows) * d_);
    l0_.assign(size_t(rows) * H2, 0.0);
    l1_.assign(size_t(rows) * H2, 0.0);
    for (int k = 0; k < 4; ++k) {
      const int layer = k / 2;
      const int64_t* p = &o[size_t(4 * k)];
      dirs_[size_t(k)].forward(w + p[0], w + p[1], w + p[2], w + p[3],
                               layer == 0 ? x_.data() : l0_.data(), rows,
                               (layer == 0 ? l0_.data() : l1_.data()) + (k % 2) * h_, 2 * h_);
    }
    a_.resize(size_t(rows) * H2);
    linear(l1_.data(), rows, 2 * h_, w + o[16], w + o[17], 2 * h_, a_.data());
    for (double& v : a_) v = std::max(v, 0.0);
    std::vector<double> y(size_t(rows) * size_t(d_));
    linear(a_.data(), rows, 2 * h_, w + o[18], w + o[19], d_, y.data());
    store(y, out);
  }
  void backward(const float* w, const float* dout, float* dw, float* din) override {
    const std::vector<int64_t> o = offsets_of(tensors());
    const int rows = rows_;
    std::vector<double> g(size_t(o.back()), 0.0);
    std::vector<double> dy(dout, dout + int64_t(rows) * d_), da(a_.size()), dl1(l1_.size()),
        dl0(l0_.size(), 0.0), dx(x_.size(), 0.0);
    linear_backward(a_.data(), dy.data(), rows, 2 * h_, w + o[18], d_, &g[size_t(o[18])], &g[size_t(o[19])], da.data());
    for (size_t i = 0; i < da.size(); ++i) da[i] = a_[i] > 0 ? da[i] : 0.0;
    linear_backward(l1_.data(), da.data(), rows, 2 * h_, w + o[16], 2 * h_, &g[size_t(o[16])], &g[size_t(o[17])], dl1.data());
    for (int k = 3; k >= 0; --k) {
      const int layer = k / 2;
      const int64_t* p = &o[size_t(4 * k)];
      dirs_[size_t(k)].backward(w + p[0], w + p[1], layer == 0 ? x_.data() : l0_.data(), rows,
                                (layer == 0 ? dl0.data() : dl1.data()) + (k % 2) * h_, 2 * h_,
                                &g[size_t(p[0])], &g[size_t(p[1])], &g[size_t(p[2])], &g[size_t(p[3])],
                                layer == 0 ? dx.data() : dl0.data());
    }
    store(g, dw);
    store(dx, din);
  }

 private:
  int d_, h_, rows_ = 0;
  std::vector<LstmDirection> dirs_;  // l0, l0 reverse, l1, l1 reverse
  std::vector<double> x_, l0_, l1_, a_;
};

}  // namespace

int64_t PromptEncoder::size() const {
  int64_t n = 0;
  for (const EncoderTensor& t : tensors()) n += t.size();
  return n;
}

void PromptEncoder::init_tensors(const std::vector<EncoderTensor>& list, float* weights, Rng& rng) {
  for (const EncoderTensor& t : list)
    for (int64_t i = 0; i < t.size(); ++i)
      *weights++ = float((2 * rng.uniform() - 1) * t.init_bound);
}

std::unique_ptr<PromptEncoder> make_ptuning_encoder(const std::string& kind, int d, int h) {
  SPT_CHECK(d >= 1 && h >= 1, "prompt encoder: widths d ", d, " and h ", h, " must be >= 1");
  if (kind == "mlp") return std::make_unique<PTuningMlp>(d, h);
  if (kind == "lstm") return std::make_unique<PTuningLstm>(d, h);
  fail("prompt.encoder: unknown encoder '", kind, "' (mlp or lstm)");
}

std::vector<EncoderTensor> PrefixTrunk::tensors() const {
  return {{"w1", h_, d_, 1.0 / std::sqrt(double(d_))}, {"b1", 1, h_, 1.0 / std::sqrt(double(d_))}};
}

void PrefixTrunk::forward(const float* w, const float* e, int rows) {
  rows_ = rows;
  e_.assign(e, e + int64_t(rows) * d_);
  const std::vector<double> x(e_.begin(), e_.end());
  hidden_.resize(size_t(rows) * size_t(h_));
  linear(x.data(), rows, d_, w, w + int64_t(h_) * d_, h_, hidden_.data());
  for (double& v : hidden_) v = std::tanh(v);
}

void PrefixTrunk::backward(const float* w, const double* dhidden, float* dw, float* de) {
  const int rows = rows_;
  std::vector<double> dz(hidden_.size()), g(size_t(h_) * size_t(d_ + 1), 0.0), dx(e_.size());
  for (size_t i = 0; i < dz.size(); ++i) dz[i] = dhidden[i] * (1.0 - hidden_[i] * hidden_[i]);
  const std::vector<double> x(e_.begin(), e_.end());
  linear_backward(x.data(), dz.data(), rows, d_, w, h_, g.data(), g.data() + int64_t(h_) * d_, dx.data());
  store(g, dw);
  store(dx, de);
}

void prefix_head_forward(const double* hidden, int rows, int h, const float* w2, const float* b2,
                         int n, float* out) {
  std::vector<double> y(size_t(rows) * size_t(n));
  linear(hidden, rows, h, w2, b2, n, y.data());
  store(y, out);
}

void prefix_head_backward(const double* hidden, int rows, int h, const float* w2, int n,
                          const float* dout, float* dw2, float* db2, double* dhidden) {
  std::vector<double> dy(dout, dout + int64_t(rows) * n), g(size_t(n) * size_t(h + 1), 0.0),
      dx(size_t(rows) * size_t(h));
  linear_backward(hidden, dy.data(), rows, h, w2, n, g.data(), g.data() + int64_t(n) * h, dx.data());
  for (size_t i = 0; i < dx.size(); ++i) dhidden[i] += dx[i];
  for (int64_t i = 0; i < int64_t(n) * h; ++i) dw2[i] = float(g[size_t(i)]);
  for (int64_t i = 0; i < n; ++i) db2[i] = float(g[size_t(int64_t(n) * h + i)]);
}

}  // namespace sptrain
