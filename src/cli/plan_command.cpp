// `sptrain plan`: will the configuration's job fit on N devices, in which
// layout, and how fast (docs/plan.md).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "sptrain/cli/commands.hpp"
#include "sptrain/plan/model_shapes.hpp"
#include "sptrain/plan/planner.hpp"

namespace sptrain {

namespace {

bool is_file(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The model's shape: the model file when it exists, else --shape, else
// explicit dimensions; any dimension given on the command line overrides.
ModelConfig plan_model(const Config& config, const PlanOptions& o, std::string& model_file) {
  const ModelDims& x = o.dims;
  ModelConfig m;
  if (!o.shape.empty()) {
    m = plan::named_shape(o.shape);
  } else if (is_file(config.model.path)) {
    m = read_model_config(h5::File::open_read(config.model.path));
    model_file = config.model.path;
  } else {
    std::string shapes;
    for (const std::string& n : plan::shape_names()) shapes += (shapes.empty() ? "" : ", ") + n;
    SPT_CHECK(x.layers > 0 && x.d_model > 0 && x.heads > 0, "plan: model.path ", config.model.path,
              " does not exist: give --shape (", shapes,
              ") or the model's dimensions (--layers, --d-model, --heads and more)");
    const bool gpt = x.family != "llama";
    m = plan::named_shape(gpt ? "gpt3-175b" : "llama3-70b");  // the family's layout of norms, biases, positions
    m.name = "custom-" + std::string(gpt ? "gpt" : "llama");
    m.n_kv_heads = x.kv_heads > 0 ? x.kv_heads : x.heads;
    m.head_dim = x.d_model / x.heads;
    m.d_ffn = gpt ? 4 * x.d_model : (8 * x.d_model / 3 + 7) / 8 * 8;
  }
  if (x.layers > 0) m.n_layers = x.layers;
  if (x.d_model > 0) m.d_model = x.d_model;
  if (x.heads > 0) m.n_heads = x.heads;
  if (x.kv_heads > 0) m.n_kv_heads = x.kv_heads;
  if (x.head_dim > 0) m.head_dim = x.head_dim;
  if (x.d_ffn > 0) m.d_ffn = x.d_ffn;
  if (x.vocab > 0) m.vocab_size = x.vocab;
  SPT_CHECK(m.n_layers > 0 && m.d_model > 0 && m.n_heads > 0 && m.head_dim > 0 && m.d_ffn > 0 &&
                m.vocab_size > 0 && m.n_kv_heads > 0 && m.n_heads % m.n_kv_heads == 0,
            "plan: the model's dimensions are incomplete or inconsistent (", m.n_layers, " layers, d_model ",
            m.d_model, ", ", m.n_heads, " heads of ", m.head_dim, ", ", m.n_kv_heads, " key/value heads, FFN ",
            m.d_ffn, ", vocabulary ", m.vocab_size, ")");
  return m;
}

double gb(double bytes) { return bytes / 1e9; }

std::string bytes_text(double b) {
  char s[32];
  if (b >= 1e9) std::snprintf(s, sizeof s, "%.2f GB", b / 1e9);
  else if (b >= 1e6) std::snprintf(s, sizeof s, "%.1f MB", b / 1e6);
  else if (b >= 1e3) std::snprintf(s, sizeof s, "%.1f kB", b / 1e3);
  else std::snprintf(s, sizeof s, "%.0f B", b);
  return s;
}

std::string layout_text(const plan::LayoutPlan& l) {
  return str("tensor ", l.tensor, " x pipeline ", l.pipeline, " x data ", l.data, ", micro-batch ",
             l.micro_batch, ", ", plan::schedule_name(l.schedule));
}

void print_row(int rank, const plan::LayoutPlan& l) {
  const plan::RankMemory& m = l.memory;
  std::printf("%4d %6d %8d %4d %5d %-5s %-4s %7.1f (%6.1f + %5.1f + %5.1f) %9.3g %10.4g %6.1f%% %6.1f%%   %s / %s / %s\n",
              rank, l.tensor, l.pipeline, l.data, l.micro_batch, plan::schedule_name(l.schedule),
              l.fits ? "yes" : "no", gb(double(m.on_device)), gb(double(m.weights)), gb(double(m.activations)),
              gb(double(m.on_device - m.weights - m.activations)), l.step_seconds, l.tokens_per_second,
              100 * l.mfu, 100 * l.time.bubble / l.step_seconds, bytes_text(l.bytes_per_step.tensor).c_str(),
              bytes_text(l.bytes_per_step.pipeline).c_str(), bytes_text(l.bytes_per_step.data).c_str());
}

void print_plan(const plan::Plan& p, int top) {
  const plan::PlanRequest& r = p.request;
  const plan::Hardware& h = r.hardware;
  const ModelConfig& m = r.model;
  const double weights = double(m.block_params() + m.embedding_params());
  std::printf("sptrain plan: %s (%d layers, d_model %d, %d heads, %.1fB weights) on %d x %s", m.name.c_str(),
              m.n_layers, m.d_model, m.n_heads, weights / 1e9, r.gpus, h.label.c_str());
  if (h.cpu) std::printf(" (%d cores, %.1f GB shared by the ranks)\n", h.cores, gb(h.memory_bytes));
  else std::printf(" (%.0f GB each, %d per node)\n", gb(h.memory_bytes), h.gpus_per_node);
  std::printf("  batch %d, prompt %d; examples: %s\n", r.config.train.batch_size, r.config.prompt.length,
              r.workload.source.c_str());
  std::printf("  compute: %.1f TFLOP/s %s, products at %.0f%%, attention at %.0f%% (%s)\n", h.peak_flops / 1e12,
              h.cpu ? "for the machine" : "per device", 100 * h.matmul_share, 100 * h.attention_share,
              h.calibration.c_str());
  std::printf("  links: %.0f GB/s in a node, %.0f GB/s between nodes, at %.0f%%; %.0f / %.0f us a call; "
              "fixed: %s a rank, %.1f ms a step%s\n",
              h.node_link_bytes_per_s / 1e9, h.fabric_bytes_per_s / 1e9, 100 * h.link_share,
              h.node_latency_s * 1e6, h.fabric_latency_s * 1e6, bytes_text(h.runtime_bytes).c_str(),
              h.step_overhead_s * 1e3,
              h.layer_overhead_s > 0 ? str(", ", h.layer_overhead_s * 1e6, " us per layer and pass").c_str() : "");
  std::printf("  %zu layouts, %ld fit; memory of the largest rank in GB (weights + activations + other), "
              "bytes per step sent by all ranks (tensor / pipeline / data)\n\n",
              p.layouts.size(),
              long(std::count_if(p.layouts.begin(), p.layouts.end(), [](const auto& l) { return l.fits; })));
  std::printf("rank tensor pipeline data micro sched fits  memory GB                      step s   tokens/s    MFU  bubble   bytes/step\n");
  const int shown = std::min<int>(top, int(p.layouts.size()));
  for (int i = 0; i < shown; ++i) print_row(i + 1, p.layouts[size_t(i)]);
  if (p.best < 0) {
    const plan::LayoutPlan& l = p.layouts[0];
    std::printf("\nNothing fits: the smallest, %s, needs %s a rank (stage %d) of %s.\n", layout_text(l).c_str(),
                bytes_text(double(l.memory.on_device)).c_str(), l.memory_stage, bytes_text(h.memory_bytes).c_str());
    return;
  }
  const plan::LayoutPlan& b = p.layouts[0];
  std::printf("\nbest: %s: %.3g s a step, %.4g tokens/s, MFU %.1f%%; %s per GPU (weights %s, activations %s)\n",
              layout_text(b).c_str(), b.step_seconds, b.tokens_per_second, 100 * b.mfu,
              bytes_text(double(b.memory.on_device)).c_str(), bytes_text(double(b.memory.weights)).c_str(),
              bytes_text(double(b.memory.activations)).c_str());
  std::printf("  step: compute %.3g s, tensor %.3g s, pipeline %.3g s, bubble %.3g s, data %.3g s, overhead %.3g s\n",
              b.time.compute, b.time.tensor, b.time.pipeline, b.time.bubble, b.time.data, b.time.overhead);
  // The rest, by why they lose, with the best of each kind.
  std::map<std::string, std::pair<int, const plan::LayoutPlan*>> reasons;
  for (size_t i = size_t(shown); i < p.layouts.size(); ++i) {
    auto& entry = reasons[p.layouts[i].loses];
    if (entry.first++ == 0) entry.second = &p.layouts[i];
  }
  if (!reasons.empty()) std::printf("the other %zu layouts lose by:\n", p.layouts.size() - size_t(shown));
  for (const auto& [reason, entry] : reasons) {
    const plan::LayoutPlan& l = *entry.second;
    if (reason == "does not fit")
      std::printf("  %-24s %4d, e.g. %s needs %s\n", "not fitting:", entry.first, layout_text(l).c_str(),
                  bytes_text(double(l.memory.on_device)).c_str());
    else
      std::printf("  %-24s %4d, the best of them %s at %.3g s\n", (reason + ":").c_str(), entry.first,
                  layout_text(l).c_str(), l.step_seconds);
  }
}

}  // namespace

int run_plan(const Config& config, const PlanOptions& o) {
  std::string model_file;
  plan::PlanRequest r;
  r.config = config;
  r.model = plan_model(config, o, model_file);
  r.hardware = plan::make_hardware(o.hardware);
  r.gpus = o.gpus;
  r.tensor = o.tensor;
  r.pipeline = o.pipeline;
  r.micro_batch = o.micro_batch;
  r.schedule = o.schedule;
  r.workload = plan::make_workload(config, r.model, model_file, o.workload);
  const plan::Plan p = plan::make_plan(r);
  if (o.json) std::printf("%s\n", plan::to_json(p).dump(2).c_str());
  else print_plan(p, o.top);
  return 0;
}

}  // namespace sptrain
