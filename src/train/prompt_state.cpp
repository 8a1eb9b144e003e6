#include "sptrain/train/prompt_state.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>

#include "sptrain/comm/control.hpp"
#include "sptrain/io/fingerprint.hpp"
#include "sptrain/prompt/prompt_init.hpp"
#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain {

namespace {

// Host <-> device in the stat dtype (f32, or f64 in double-precision runs).
void to_device(Backend& be, const Tensor& dst, const std::vector<float>& src) {
  if (dst.dtype == DType::F32) {
    be.copy_from_host(dst, src.data());
    return;
  }
  const std::vector<double> wide(src.begin(), src.end());
  be.copy_from_host(dst, wide.data());
}

std::vector<float> from_device(Backend& be, const Tensor& src) {
  std::vector<float> out(size_t(src.numel()));
  if (src.dtype == DType::F32) {
    be.copy_to_host(out.data(), src);
    return out;
  }
  std::vector<double> wide(out.size());
  be.copy_to_host(wide.data(), src);
  std::copy(wide.begin(), wide.end(), out.begin());
  return out;
}

// Named tensors as bytes, for control_gather: count, then per tensor the
// name's length and bytes, the rank and dims, the values.
template <typename T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
T take(const std::string& in, size_t& at) {
  SPT_CHECK(at + sizeof(T) <= in.size(), "internal error: a truncated parameter message");
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  at += sizeof v;
  return v;
}

std::string pack(const std::vector<NamedState>& states) {
  std::string out;
  put(out, uint64_t(states.size()));
  for (const NamedState& s : states) {
    put(out, uint64_t(s.name.size()));
    out += s.name;
    put(out, uint64_t(s.shape.size()));
    for (int64_t d : s.shape) put(out, d);
    put(out, uint64_t(s.values.size()));
    out.append(reinterpret_cast<const char*>(s.values.data()), s.values.size() * sizeof(float));
  }
  return out;
}

std::vector<NamedState> unpack(const std::string& in) {
  size_t at = 0;
  std::vector<NamedState> states(size_t(take<uint64_t>(in, at)));
  for (NamedState& s : states) {
    const size_t len = size_t(take<uint64_t>(in, at));
    SPT_CHECK(at + len <= in.size(), "internal error: a truncated parameter message");
    s.name = in.substr(at, len);
    at += len;
    s.shape.resize(size_t(take<uint64_t>(in, at)));
    for (int64_t& d : s.shape) d = take<int64_t>(in, at);
    s.values.resize(size_t(take<uint64_t>(in, at)));
    const size_t bytes = s.values.size() * sizeof(float);
    SPT_CHECK(at + bytes <= in.size(), "internal error: a truncated parameter message");
    std::memcpy(s.values.data(), in.data() + at, bytes);
    at += bytes;
  }
  return states;
}

// The optimizer state entries of `tensor` ("<tensor>.<state>").
bool belongs_to(const std::string& state, const std::string& tensor) {
  return state.size() > tensor.size() + 1 && state.compare(0, tensor.size(), tensor) == 0 &&
         state[tensor.size()] == '.' && state.find('.', tensor.size() + 1) == std::string::npos;
}

const NamedState* find_state(const std::vector<NamedState>& list, const std::string& name) {
  for (const NamedState& s : list)
    if (s.name == name) return &s;
  return nullptr;
}

// Forward passes only; nothing to tally.
struct NoSink final : PipelineRunner::OutputSink {
  void on_output(int, const HeadOutput&) override {}
};

}  // namespace

std::vector<float> capture_prefix(Session& s, const std::vector<float>& rows) {
  const ModelContext& ctx = *s.ctx;
  const int P = s.config.prompt.length;
  const LocalDims& dims = s.stage->dims();
  const StageSpec& spec = s.stage->spec();
  Buffer prompt, prefix = ctx.alloc_stat(Shape{spec.num_layers, P, 2 * dims.kv_heads * dims.head_dim});
  PromptInputs in;
  if (spec.first()) {
    prompt = ctx.alloc_stat(Shape{P, s.model.d_model});
    to_device(ctx.backend, prompt, rows);
    in.prompt = prompt.view();
  }
  in.prefix = prefix.view();
  in.capture_prefix = true;
  // The prompt's segment and one example of one token (its rows and its
  // target, vocabulary id 0, are not used).
  const EncodedExample one{{0}, 0, 0};
  s.examples.clear();
  s.examples.push_back(&one);
  s.eval_batch->fill(s.examples);
  NoSink sink;
  s.runner->evaluate(s.eval_batch->batches(), in, sink);
  return from_device(ctx.backend, prefix);
}

void start_prompt(Session& s, Rng& rng) {
  const PromptSection& section = s.config.prompt;
  PromptParameter& p = *s.prompt;
  if (p.method() == PromptMethod::Deep && section.init.rfind("file:", 0) == 0) {
    const StoredPrompt stored = read_stored_prompt(section.init.substr(5));
    if (stored.deep()) {
      check_prompt_matches_model(stored, s.model, s.config.model.path);
      SPT_CHECK(stored.rows == section.length, stored.path, ": the deep prompt has ", stored.rows,
                " vectors but prompt.length is ", section.length);
      // The MLP's input has no file to come from: vocabulary samples.
      std::vector<float> embedding;
      if (section.reparameterize == "mlp") {
        PromptSection vocab = section;
        vocab.init = "vocab_sample";
        embedding = init_prompt(vocab, s.model, s.model_file, *s.tokenizer, *s.task, rng);
      }
      p.set_prefix(p.local_prefix(stored.prefix), embedding, rng);
      return;
    }
  }
  const std::vector<float> rows =
      init_prompt(section, s.model, s.model_file, *s.tokenizer, *s.task, rng);
  if (p.method() != PromptMethod::Deep) {
    p.set_from_prompt(rows, rng);
    return;
  }
  p.set_prefix(capture_prefix(s, rows), rows, rng);
}

void set_stored_prompt(Session& s, const StoredPrompt& stored) {
  PromptParameter& p = *s.prompt;
  SPT_CHECK(stored.deep() == (p.method() == PromptMethod::Deep) && p.method() != PromptMethod::PTuning,
            "internal error: a ", stored.deep() ? "deep" : "plain", " stored prompt for a ",
            prompt_method_name(p.method()), " session");
  if (!p.holds()) return;
  if (!stored.deep()) {
    p.values() = stored.values;
    return;
  }
  Rng unused(0);
  p.set_prefix(p.local_prefix(stored.prefix), {}, unused);
}

void save_prompt(Session& s, const Optimizer& optimizer, Checkpoint& c) {
  PromptParameter& p = *s.prompt;
  const bool lead = s.parallel->world_rank() == 0;
  c.prompt_method = prompt_method_name(p.method());
  auto tensor_state = [&](const ParameterTensor& t) {
    return NamedState{t.name, {t.rows, t.cols},
                      std::vector<float>(std::as_const(p).values().begin() + t.offset,
                                         std::as_const(p).values().begin() + t.offset + t.size())};
  };
  if (!p.sharded()) {
    // The first stage holds everything; world rank 0 is on it.
    if (!lead) return;
    c.prompt = p.computed_prompt();
    c.prompt_rows = p.rows();
    c.prompt_cols = p.cols();
    c.optimizer = optimizer.state();
    if (p.method() == PromptMethod::PTuning)
      for (const ParameterTensor& t : p.tensors()) c.parameters.push_back(tensor_state(t));
    return;
  }
  // A deep prompt: every rank sends the tensors it counts, with their optimizer state.
  std::vector<NamedState> mine;
  const std::vector<NamedState> states = optimizer.state();
  for (const ParameterTensor& t : p.tensors()) {
    if (!t.counted) continue;
    mine.push_back(tensor_state(t));
    for (const NamedState& st : states)
      if (belongs_to(st.name, t.name)) mine.push_back(st);
  }
  const std::vector<std::string> blobs = control_gather(s.parallel->host(), pack(mine));
  if (!lead) return;
  std::vector<NamedState> all;
  for (const std::string& b : blobs)
    for (NamedState& st : unpack(b)) all.push_back(std::move(st));
  // The whole prompt on the host, from every rank's tensors.
  PromptParameter whole(*s.backend, s.ctx->stat, s.config.prompt, s.model,
                        PromptPlacement::whole(s.model), /*device=*/false);
  std::map<std::string, const NamedState*> by_name;
  for (const NamedState& st : all) by_name[st.name] = &st;
  whole.set_values([&](const ParameterTensor& t) -> const std::vector<float>* {
    auto it = by_name.find(t.name);
    return it == by_name.end() ? nullptr : &it->second->values;
  });
  c.prefix = whole.computed_prefix();
  const PrefixShape& shape = whole.whole_prefix_shape();
  c.prefix_layers = shape.layers;
  c.prefix_rows = shape.rows;
  c.prefix_cols = shape.cols();
  for (const ParameterTensor& t : whole.tensors()) {
    // A plain deep prompt's tensors are the prefix itself.
    if (s.config.prompt.reparameterize == "mlp") c.parameters.push_back(*by_name.at(t.name));
    for (const NamedState& st : all)
      if (belongs_to(st.name, t.name)) c.optimizer.push_back(st);
  }
}

void restore_prompt(Session& s, Optimizer& optimizer, const Checkpoint& c, const std::string& path) {
  PromptParameter& p = *s.prompt;
  const std::string method = prompt_method_name(p.method());
  SPT_CHECK(c.prompt_method == method, path, ": a checkpoint of a ", c.prompt_method,
            " prompt, but prompt.method is ", method);
  optimizer.set_step_count(c.step);
  if (!p.holds()) return;
  auto from_parameters = [&](const ParameterTensor& t) -> const std::vector<float>* {
    const NamedState* st = find_state(c.parameters, t.name);
    return st ? &st->values : nullptr;
  };
  switch (p.method()) {
    case PromptMethod::PromptTuning:
      SPT_CHECK(c.prompt_rows == p.rows() && c.prompt_cols == p.cols(), path, ": prompt is ",
                c.prompt_rows, " x ", c.prompt_cols, ", the config wants ", p.rows(), " x ", p.cols());
      p.values() = c.prompt;
      optimizer.load_state(c.optimizer);
      return;
    case PromptMethod::PTuning:
      p.set_values(from_parameters);
      break;
    case PromptMethod::Deep: {
      const PrefixShape& want = p.whole_prefix_shape();
      SPT_CHECK(c.prefix_layers == want.layers && c.prefix_rows == want.rows && c.prefix_cols == want.cols(),
                path, ": prefix is ", c.prefix_layers, " x ", c.prefix_rows, " x ", c.prefix_cols,
                ", the model and config want ", want.layers, " x ", want.rows, " x ", want.cols());
      if (s.config.prompt.reparameterize == "mlp") {
        p.set_values(from_parameters);
      } else {
        Rng unused(0);
        p.set_prefix(p.local_prefix(c.prefix), {}, unused);
      }
      break;
    }
  }
  std::vector<NamedState> mine;
  for (const ParameterTensor& t : p.tensors())
    for (const NamedState& st : c.optimizer)
      if (belongs_to(st.name, t.name)) mine.push_back(st);
  optimizer.load_state(mine);
  optimizer.set_step_count(c.step);
}

bool replicas_agree(Session& s) {
  const PromptParameter& p = *s.prompt;
  Fingerprint f;
  f.update(p.values().data(), p.values().size() * sizeof(float));
  uint64_t h = 0;
  std::sscanf(f.hex().c_str(), "%16llx", reinterpret_cast<unsigned long long*>(&h));
  const ParallelState& ps = *s.parallel;
  if (!p.sharded()) return control_all_equal(ps.host(), h, p.holds());
  // Each (pipeline, tensor) position holds its own share; its data replicas must agree.
  const GridLayout& l = ps.layout();
  return control_all_equal(ps.host(), h, ps.coords().pp * l.tensor + ps.coords().tp, l.pipeline * l.tensor);
}

}  // namespace sptrain
