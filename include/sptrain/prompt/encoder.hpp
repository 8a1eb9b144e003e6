#pragma once
// The reparameterisations of a prompt, trained jointly with it and run on
// the host (fp32 weights, double arithmetic; they see P rows, so they cost
// little next to the model):
//   PTuningMlp    P-tuning's prompt encoder, an MLP (Liu et al. 2021; Hugging
//                 Face PEFT's PromptEncoder, encoder_reparameterization_type MLP):
//                 Linear(d, h) ReLU Linear(h, h) ReLU Linear(h, d)
//   PTuningLstm   the same with a two-layer bidirectional LSTM (PEFT's LSTM type):
//                 LSTM(d, h, 2 layers, bidirectional) Linear(2h, 2h) ReLU Linear(2h, d)
//   prefix MLP    prefix tuning's (Li & Liang 2021; PEFT's PrefixEncoder with
//                 prefix_projection): tanh(Linear(d, h)) shared, then one linear
//                 head per (layer, key/value head) unit, so that pipeline and
//                 tensor parallel ranks each keep their units' heads (PrefixTrunk
//                 and prefix_head_* below)
// Weights lie in a flat float vector (the parameter set's), in the order
// tensors() lists them; gradients in a vector of the same layout. PyTorch's
// layouts and names: Linear weights [out, in], LSTM gates i, f, g, o.
#include <memory>
#include <string>
#include <vector>

#include "sptrain/model/random_model.hpp"

namespace sptrain {

struct EncoderTensor {
  std::string name;  // PyTorch's, e.g. "mlp_head.0.weight", "lstm_head.weight_hh_l1_reverse"
  int64_t rows = 0, cols = 0;
  double init_bound = 0;  // initialised U(-bound, bound) (PyTorch's default for the layer)
  int64_t size() const { return rows * cols; }
};

class PromptEncoder {
 public:
  virtual ~PromptEncoder() = default;
  virtual std::vector<EncoderTensor> tensors() const = 0;
  int64_t size() const;  // all weights
  // PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
  // Linear weights and biases, U(-1/sqrt(h), 1/sqrt(h)) for the LSTM's.
  void init(float* weights, Rng& rng) const { init_tensors(tensors(), weights, rng); }
  static void init_tensors(const std::vector<EncoderTensor>& list, float* weights, Rng& rng);
  // out [rows, out_dim] = encoder(in [rows, in_dim]); keeps what backward needs.
  virtual void forward(const float* weights, const float* in, int rows, float* out) = 0;
  // From dout [rows, out_dim] of the latest forward: dweights (overwritten)
  // and din [rows, in_dim] (overwritten).
  virtual void backward(const float* weights, const float* dout, float* dweights, float* din) = 0;
};

// kind: "mlp" or "lstm" (prompt.encoder); d: the prompt's width, h: the hidden width.
std::unique_ptr<PromptEncoder> make_ptuning_encoder(const std::string& kind, int d, int h);

// Prefix tuning's shared part: H = tanh(E W1ᵀ + b1), E [P, d], W1 [h, d], b1 [1, h].
class PrefixTrunk {
 public:
  PrefixTrunk(int d, int h) : d_(d), h_(h) {}
  std::vector<EncoderTensor> tensors() const;  // "w1", "b1"
  void forward(const float* weights, const float* e, int rows);
  const std::vector<double>& hidden() const { return hidden_; }  // H [rows, h]
  int64_t bytes() const { return int64_t(e_.size() * sizeof(float) + hidden_.size() * sizeof(double)); }
  // From dH [rows, h]: dweights (overwritten) and de [rows, d] (overwritten).
  void backward(const float* weights, const double* dhidden, float* dweights, float* de);

 private:
  int d_, h_, rows_ = 0;
  std::vector<float> e_;
  std::vector<double> hidden_;
};

// One unit's head: out [rows, n] = H W2ᵀ + b2 (W2 [n, h], b2 [1, n]), and its
// backward: dW2, db2 (overwritten) and dH += dout W2.
void prefix_head_forward(const double* hidden, int rows, int h, const float* w2, const float* b2,
                         int n, float* out);
void prefix_head_backward(const double* hidden, int rows, int h, const float* w2, int n,
                          const float* dout, float* dw2, float* db2, double* dhidden);

}  // namespace sptrain
