#pragma once
// A prompt method's trainable parameters as training holds them on one rank
// (docs/methods.md):
//   - this rank's share of the method's tensors (values and gradient, fp32 on
//     the host, one flat vector each, in the order tensors() lists them):
//     what the optimizer updates and checkpoints save;
//   - what the model reads on the device (PromptInputs: the input rows and/or
//     each local layer's keys and values, stat dtype) and the gradient the
//     model accumulates there;
//   - the map between them: the identity, or a reparameterisation (the
//     p-tuning encoder, prefix tuning's MLP) run on the host.
//
// Methods and tensors (P = prompt.length, d = d_model, D = head_dim):
//   prompt_tuning  "prompt" [P, d]: the input rows themselves
//   p_tuning       "encoder.embedding" [P, d] and the encoder's weights
//                  ("encoder.mlp_head.0.weight", ...): input rows = encoder(embedding)
//   deep           "prefix.L.G" [P, 2D] per layer L and key/value head G:
//                  row p = that head's key (after RoPE) then value at layer L
//   deep + mlp     "reparam.embedding" [P, d], "reparam.w1", "reparam.b1" (shared),
//                  and per unit "reparam.w2.L.G" [2D, h], "reparam.b2.L.G" [1, 2D]:
//                  prefix unit = tanh(E W1ᵀ + b1) W2ᵀ + b2 (prefix tuning's MLP)
// The input rows live on the first pipeline stage (every tensor rank holds
// them whole); a deep prompt's units on the stage of their layer and the
// tensor ranks of their key/value head (with fewer kv heads than tensor ranks,
// several ranks hold a unit: its gradient is summed over them and counted once).
//
// The host values and what the device holds are kept coherent lazily:
// whichever was written last is brought to the other when the other is read.
// Prompt tuning on a GPU updates its prompt on the device (the device copy is
// then the master, in f32), so a step never waits for it and a checkpoint
// still sees the newest values; the other methods' optimizers run on the host
// and the device inputs are recomputed from values() when they changed.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sptrain/backend/backend.hpp"
#include "sptrain/config/config.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/prompt_inputs.hpp"
#include "sptrain/model/stage.hpp"
#include "sptrain/model/transformer_layer.hpp"
#include "sptrain/prompt/encoder.hpp"

namespace sptrain {

enum class PromptMethod { PromptTuning, Deep, PTuning };
PromptMethod prompt_method_of(const PromptSection& s);  // prompt.method
// The encoders' and prefix MLP's hidden width: prompt.encoder_hidden, or d_model.
int prompt_hidden_width(const PromptSection& s, const ModelConfig& m);
const char* prompt_method_name(PromptMethod m);         // its config name

// Which part of the model this rank holds, for its share of the parameters.
struct PromptPlacement {
  bool first_stage = true;   // embeds the input rows (pipeline stage 0)
  int first_layer = 0;       // this stage's layers
  int num_layers = 0;
  int kv_begin = 0;          // this tensor rank's key/value heads
  int kv_heads = 0;
  // With fewer kv heads than tensor ranks, several ranks hold a unit: the
  // first of them adds it where a sum over the ranks' units is taken.
  bool first_kv_holder = true;
  // This rank counts (in the gradient norm, in checkpoints) the units of its
  // kv heads: their first holder, on data replica 0.
  bool counts_units = true;
  // This rank counts the tensors every rank holds (world rank 0).
  bool counts_shared = true;
  // A single rank holding the whole model.
  static PromptPlacement whole(const ModelConfig& m);
  // The layers of `stage` and the kv heads of `dims` (a tensor rank's); the
  // holder and counting flags keep their defaults.
  static PromptPlacement of_stage(const StageSpec& stage, const LocalDims& dims);
};

// One tensor of this rank's share: a slice of the flat vectors.
struct ParameterTensor {
  std::string name;
  int64_t offset = 0, rows = 0, cols = 0;
  bool counted = true;  // this rank counts it (one holder per tensor in the job)
  int64_t size() const { return rows * cols; }
};

// The whole deep prompt as files store it: [layers, P, 2 * n_kv * D], per row
// the keys of kv heads 0..n_kv-1 then their values (PEFT's past_key_values
// order per layer).
struct PrefixShape {
  int64_t layers = 0, rows = 0, kv_heads = 0, head_dim = 0;
  int64_t cols() const { return 2 * kv_heads * head_dim; }
  int64_t size() const { return layers * rows * cols(); }
};
PrefixShape prefix_shape(const ModelConfig& m, int64_t prompt_rows);
// The part of it a rank at `place` holds: its layers and its kv heads.
PrefixShape local_prefix_shape(const ModelConfig& m, int64_t prompt_rows, const PromptPlacement& place);
// The part [place.num_layers, P, 2 * place.kv_heads * D] of a whole prefix
// (`shape`'s layout) that a rank at `place` holds: its layers, and per row
// the keys then the values of its kv heads.
std::vector<float> local_prefix(const std::vector<float>& whole, const PrefixShape& shape,
                                const PromptPlacement& place);

class PromptParameter {
 public:
  // rows: P. The method, reparameterisation and encoder width come from
  // `section`. device = false: host values only (assembling a checkpoint).
  PromptParameter(Backend& backend, DType stat, const PromptSection& section,
                  const ModelConfig& model, const PromptPlacement& placement, bool device = true);
  // prompt_tuning on rows x cols (the input rows only), e.g. for tests.
  PromptParameter(Backend& backend, DType stat, int rows, int cols, bool on_device);
  ~PromptParameter();

  PromptMethod method() const { return method_; }
  int rows() const { return rows_; }  // P
  int cols() const { return cols_; }  // d_model
  // This rank holds some of the parameters (prompt_tuning, p_tuning: the
  // first stage; deep: every rank).
  bool holds() const { return !tensors_.empty(); }
  bool on_device() const { return holds(); }
  // The share differs between model-parallel ranks (deep): the gradient norm
  // and checkpoints need every rank's part.
  bool sharded() const { return method_ == PromptMethod::Deep; }
  size_t size() const { return values_.size(); }

  // This rank's tensors, in the order they lie in values() and grad().
  const std::vector<ParameterTensor>& tensors() const { return tensors_; }
  // The host values, fp32, brought up to date first. The writable form takes
  // the host copy as the newest (the caller may write).
  std::vector<float>& values();
  const std::vector<float>& values() const;
  std::vector<float>& grad() { return grad_; }
  const std::vector<float>& grad() const { return grad_; }
  // The sum of squares (in double) of the counted tensors' gradient.
  double grad_sum_of_squares() const;

  // What the model reads on this rank, brought up to date first (computed
  // from values() when they changed), and where its gradient goes (empty
  // parts where this rank has none).
  PromptInputs device();
  PromptInputs device_grad() const;
  // Prompt tuning only: the optimizer may update the device prompt in place
  // (on a GPU, optim/optimizer.hpp step_on_device), and device_written() says it did.
  bool updates_on_device() const { return method_ == PromptMethod::PromptTuning; }
  void device_written();
  // The device gradients every data-parallel replica must sum, and their bytes.
  std::vector<Tensor> device_grad_tensors() const;

  void zero_grad();  // device gradient = 0
  // Device gradient -> grad(), through the reparameterisation's backward.
  // deep + mlp: the shared trunk's input gradient is a sum over every rank's
  // units; `sum_over_model` (a device tensor [P, h] in, summed in place over
  // the tensor and pipeline groups) does that sum. Other methods never call it.
  void download_grad(const std::function<void(const Tensor&)>& sum_over_model = {});

  // The input rows [P, d] (prompt_tuning, p_tuning; first stage) and this
  // rank's prefix [num_layers, P, 2 * kv_heads * D] (deep) as the model
  // reads them, computed from values() (fp32, on the host).
  std::vector<float> computed_prompt();
  std::vector<float> computed_prefix();

  // Sets values() so that the model reads `prompt` [P, d] (the input rows)
  // at the first step: prompt_tuning takes it, p_tuning makes it the
  // encoder's input (with `rng` for the encoder's weights). Deep prompts
  // start from their own prefix (set_prefix).
  void set_from_prompt(const std::vector<float>& prompt, Rng& rng);
  // deep: this rank's part [num_layers, P, 2 * kv_heads * D] of a whole
  // prefix (PrefixShape layout).
  std::vector<float> local_prefix(const std::vector<float>& whole_prefix) const;
  // deep: sets this rank's units from its part of a prefix; with mlp, the
  // trunk starts from `embedding` [P, d] (and `rng`: PyTorch's init of W1,
  // b1) and each unit's head is the least-squares fit (ridge) of its prefix
  // from the trunk's output, so the MLP starts at the prefix.
  void set_prefix(const std::vector<float>& local_prefix, const std::vector<float>& embedding, Rng& rng);
  const PromptPlacement& placement() const { return place_; }
  const PrefixShape& whole_prefix_shape() const { return prefix_; }
  // This rank's values of the named tensors (from a checkpoint's `all`):
  // every one of this rank's tensors must be there, with its shape.
  void set_values(const std::function<const std::vector<float>*(const ParameterTensor&)>& find);

  // The tensors a rank at `placement` holds (no allocation).
  static std::vector<ParameterTensor> layout(const PromptSection& section, const ModelConfig& model,
                                             const PromptPlacement& placement);
  // The bytes the constructor allocates at `placement`: on the back end
  // (device = true) and in host vectors (values, gradients, their host
  // copies, the trunk's buffers; not the encoders' per-call temporaries).
  // sptrain plan adds these up; host_bytes() is this instance's, for tests.
  struct Memory {
    int64_t host = 0, device = 0;
  };
  static Memory memory(const PromptSection& section, const ModelConfig& model, const PromptPlacement& placement,
                       DType stat, bool device = true);
  int64_t host_bytes() const;

 private:
  enum class Newer { Same, Host, Device };
  void upload();          // values -> (encoder) -> the device tensors, when the host is newer
  void download() const;  // the device prompt -> values, when the device is newer
  void copy_to_device(const Buffer& dst, const std::vector<float>& src);
  void copy_from_device(std::vector<float>& dst, const Buffer& src) const;
  const ParameterTensor* find(const std::string& name) const;
  // deep: this rank's prefix [num_layers, P, W] <-> its units' values.
  void units_to_prefix(const float* unit_values, std::vector<float>& prefix) const;
  void prefix_to_units(const std::vector<float>& prefix, float* unit_values) const;

  Backend& backend_;
  DType stat_;
  PromptMethod method_ = PromptMethod::PromptTuning;
  int rows_ = 0, cols_ = 0, hidden_ = 0;
  PromptPlacement place_;
  PrefixShape prefix_;  // the whole model's
  int width_ = 0;       // this rank's prefix row: 2 * kv_heads * D
  std::vector<ParameterTensor> tensors_;
  mutable std::vector<float> values_;
  std::vector<float> grad_;
  mutable Newer newer_ = Newer::Host;
  std::unique_ptr<PromptEncoder> encoder_;   // p_tuning
  std::unique_ptr<PrefixTrunk> trunk_;       // deep + mlp
  // deep + mlp: download_grad's host buffers, sized once.
  struct TrunkGradScratch {
    std::vector<float> units;      // the units' prefix gradients
    std::vector<double> dhidden;   // dL/dH [P, hidden], summed over this rank's units
    std::vector<double> partial;   // one unit's part of it
    std::vector<float> dhidden32;  // f32 stat dtype: dhidden as the device holds it
  } trunk_grad_;
  std::vector<float> prompt_host_, prompt_grad_host_, prefix_host_, prefix_grad_host_;
  mutable std::vector<double> staging_;  // f64 stat dtype: the host side of a copy
  Buffer prompt_, prompt_grad_, prefix_dev_, prefix_grad_, shared_grad_;
};

}  // namespace sptrain
