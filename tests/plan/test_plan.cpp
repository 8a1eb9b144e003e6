// The planner against the code it plans for: every byte a Stage allocates is
// in Stage::memory (a back end that counts its allocations sees them all),
// the pipeline simulation gives the schedules' known bubble, the device table
// agrees with the MFU's peak lookup, the named shapes have their published
// sizes, and the layouts searched are the ones the code accepts.
#include <gtest/gtest.h>

#include <set>

#include "../support/train_env.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/bench/device_peak.hpp"
#include "sptrain/model/stage.hpp"
#include "sptrain/plan/model_shapes.hpp"
#include "sptrain/plan/planner.hpp"

namespace sptrain {
namespace {

struct MemoryCase {
  Family family;
  LossKind loss;
  int stages, stage, sets;
};

class StageMemoryTest : public ::testing::TestWithParam<MemoryCase> {};

TEST_P(StageMemoryTest, IsEveryByteTheStageAllocates) {
  const MemoryCase mc = GetParam();
  ModelConfig c = test::tiny_config(mc.family);
  c.n_layers = 4;
  const std::string path = test::temp_path(std::string("plan_memory_") + family_name(mc.family) + ".h5");
  write_random_model(path, c, 3, 0.2, nullptr);
  const h5::File file = h5::File::open_read(path);
  c = read_model_config(file);
  StageShape shape;
  shape.train = Capacity{37, 21};
  shape.train_seqs = 3;
  shape.activation_sets = mc.sets;
  shape.eval = Capacity{50, 30};
  shape.eval_seqs = 5;
  const HeadSpec head{mc.loss, {7, 11}};
  const StageSpec spec = plan_stage(c.n_layers, mc.stages, mc.stage, {});
  CpuBackend be(2);
  SoloGroup tp{CommKind::Tensor, nullptr};
  Stage stage(ModelContext{be, tp, DType::F32, DType::F32}, c, file, spec, head, shape);

  const StageMemory planned = Stage::memory(c, local_dims(c, 0, 1), spec, head, shape,
                                            ElemTypes{DType::F32, DType::F32}, saved_probabilities);
  EXPECT_EQ(planned.weights, stage.weight_bytes());
  // The RoPE table is computed in f64 first: a buffer the stage frees again.
  const int64_t rope_scratch = c.position == PositionKind::Rope ? int64_t(c.max_positions) * c.head_dim * 8 : 0;
  EXPECT_EQ(planned.total() + rope_scratch, be.bytes_allocated())
      << "weights " << planned.weights << ", activations " << planned.activations << ", workspace "
      << planned.workspace << ", tables " << planned.tables;
  // The back end's own attention scratch, per thread.
  const LocalDims dims = local_dims(c, 0, 1);
  EXPECT_EQ(be.attention_scratch_bytes(),
            2 * CpuBackend::attention_scratch_bytes_per_thread(50, 30, dims.qkv_width()));
  EXPECT_GT(planned.activations, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Stages, StageMemoryTest,
    ::testing::Values(MemoryCase{Family::Llama, LossKind::Labels, 1, 0, 1},
                      MemoryCase{Family::Llama, LossKind::Vocab, 1, 0, 3},
                      MemoryCase{Family::Gpt, LossKind::Vocab, 2, 0, 2},   // embedding, no head
                      MemoryCase{Family::Gpt, LossKind::Vocab, 2, 1, 1},   // head, no embedding
                      MemoryCase{Family::Gpt, LossKind::Labels, 3, 1, 2}));  // neither

TEST(StageMemory, ActivationsGrowWithTheSetsInFlight) {
  const ModelConfig c = test::tiny_config(Family::Llama);
  StageShape shape;
  shape.train = Capacity{40, 20};
  shape.eval = Capacity{40, 20};
  const StageSpec spec = plan_stage(c.n_layers, 1, 0, {});
  const HeadSpec head{LossKind::Labels, {1, 2}};
  auto activations = [&](int sets) {
    shape.activation_sets = sets;
    return Stage::memory(c, local_dims(c, 0, 1), spec, head, shape, ElemTypes{}, saved_probabilities)
        .activations;
  };
  EXPECT_EQ(activations(4), 4 * activations(1));
}

plan::OpCost cost(double f, double b, double send = 0) {
  plan::OpCost c;
  c.forward = f;
  c.backward = b;
  c.send_forward = c.send_backward = send;
  return c;
}

TEST(PipelineSpan, UniformStagesHaveTheTextbookBubble) {
  // S stages, m micro-batches, forward f and backward b each: (m + S - 1)(f + b),
  // for both schedules.
  const int S = 4, m = 8;
  const std::vector<std::vector<plan::OpCost>> c(S, std::vector<plan::OpCost>(m, cost(1, 2)));
  std::vector<double> busy;
  for (ScheduleKind kind : {ScheduleKind::GPipe, ScheduleKind::OneFOneB}) {
    EXPECT_DOUBLE_EQ(plan::pipeline_span(kind, c, busy), (m + S - 1) * 3.0) << plan::schedule_name(kind);
    for (double t : busy) EXPECT_DOUBLE_EQ(t, m * 3.0);
  }
}

TEST(PipelineSpan, OneStageIsItsWorkAndASlowStageSetsThePace) {
  std::vector<double> busy;
  EXPECT_DOUBLE_EQ(plan::pipeline_span(ScheduleKind::OneFOneB, {{cost(1, 2), cost(1, 2)}}, busy), 6.0);
  // Two stages, the second twice as slow: after the first forward, it runs without a break.
  const std::vector<std::vector<plan::OpCost>> c = {std::vector<plan::OpCost>(4, cost(1, 1)),
                                                    std::vector<plan::OpCost>(4, cost(2, 2))};
  EXPECT_DOUBLE_EQ(plan::pipeline_span(ScheduleKind::GPipe, c, busy), 1 + 4 * 4 + 1);
  // A message delays its receiver and occupies its sender.
  const std::vector<std::vector<plan::OpCost>> sent = {{cost(1, 1, 0.5)}, {cost(1, 1, 0.5)}};
  EXPECT_DOUBLE_EQ(plan::pipeline_span(ScheduleKind::GPipe, sent, busy), 1 + 0.5 + 2 + 0.5 + 1);
}

TEST(DeviceTable, NamesAreUniqueAndThePeakLookupFindsEveryRow) {
  std::set<std::string> names;
  for (const DeviceSpec& d : device_table()) {
    EXPECT_TRUE(names.insert(d.name).second) << d.name;
    EXPECT_EQ(find_device(d.name), &d);
    std::string device_name = "NVIDIA";
    for (const std::string& w : d.name_has) device_name += " " + w;
    EXPECT_DOUBLE_EQ(bf16_dense_peak_tflops(device_name, d.cc_major, d.cc_minor), d.bf16_tflops) << d.name;
    EXPECT_GT(d.memory_gb, 0);
    EXPECT_GT(d.node_link_gbps, d.fabric_gbps * 0.5) << d.name;
  }
  EXPECT_EQ(find_device("no-such-gpu"), nullptr);
  plan::HardwareOptions unknown;
  unknown.gpu = "no-such-gpu";
  EXPECT_THROW(plan::make_hardware(unknown), Error);
}

TEST(ModelShapes, HaveTheirPublishedSizes) {
  auto weights = [](const ModelConfig& m) {
    const int64_t positions = m.position == PositionKind::Learned ? int64_t(m.max_positions) * m.d_model : 0;
    return double(m.block_params() + m.embedding_params() * (m.tied_embeddings ? 1 : 2) + positions);
  };
  EXPECT_NEAR(weights(plan::named_shape("gpt3-175b")) / 1e9, 174.6, 0.5);
  EXPECT_NEAR(weights(plan::named_shape("opt-175b")) / 1e9, 174.6, 0.5);
  EXPECT_NEAR(weights(plan::named_shape("bloom-176b")) / 1e9, 176.2, 0.5);
  EXPECT_NEAR(weights(plan::named_shape("llama3-70b")) / 1e9, 70.6, 0.2);
  EXPECT_NEAR(weights(plan::named_shape("llama3-405b")) / 1e9, 405.8, 0.5);
  EXPECT_THROW(plan::named_shape("gpt5"), Error);
}

TEST(Plan, SearchesOnlyLayoutsTheCodeAccepts) {
  const std::string model = test::tiny_model(Family::Llama, "plan_layouts.h5", 4);
  const Config config = test::tiny_config_for(model, test::sst2_subset("train", 40, "plan_train.tsv"), "",
                                              test::temp_path("plan_run"));
  plan::PlanRequest r;
  r.config = config;
  r.model = read_model_config(h5::File::open_read(model));
  plan::HardwareOptions cpu;
  cpu.gpu = "cpu";
  r.hardware = plan::make_hardware(cpu);
  r.gpus = 8;
  r.workload = plan::make_workload(config, r.model, model, plan::WorkloadOptions{});
  const plan::Plan p = plan::make_plan(r);
  ASSERT_FALSE(p.layouts.empty());
  EXPECT_EQ(p.best, 0);
  for (const plan::LayoutPlan& l : p.layouts) {
    EXPECT_EQ(l.tensor * l.pipeline * l.data, 8);
    EXPECT_NO_THROW(local_dims(r.model, 0, l.tensor));
    EXPECT_EQ(config.train.batch_size % (l.data * l.micro_batch), 0);
    EXPECT_LE(l.pipeline, r.model.n_layers);
    // One replica, one stage: nothing to send.
    if (l.tensor == 1) {
      EXPECT_EQ(l.bytes_per_step.tensor, 0);
    }
    if (l.pipeline == 1) {
      EXPECT_EQ(l.bytes_per_step.pipeline, 0);
    }
    const double prompt_bytes = double(config.prompt.length) * r.model.d_model * 4;
    EXPECT_EQ(l.bytes_per_step.data, l.data == 1 ? 0.0 : l.tensor * l.data * prompt_bytes);
  }
  // The JSON the issue asks for.
  const nlohmann::json j = plan::to_json(p);
  EXPECT_EQ(j["gpus"], 8);
  EXPECT_EQ(j["best"], 0);
  for (const char* key : {"tensor", "pipeline", "data", "micro_batch", "schedule", "fits", "memory_bytes",
                          "step_seconds", "tokens_per_second", "mfu", "bytes_per_step"})
    EXPECT_TRUE(j["layouts"][0].contains(key)) << key;
  for (const char* key : {"weights", "activations", "other", "total"})
    EXPECT_TRUE(j["layouts"][0]["memory_bytes"].contains(key)) << key;
}

// Deep prompts: every stage's ranks all-reduce their layers' keys and values
// over the data replicas, and hold them (with gradients and optimizer state).
TEST(Plan, PlansDeepPromptsWithTheirBytesAndMemory) {
  const std::string model = test::tiny_model(Family::Llama, "plan_deep.h5", 4);
  Config config = test::tiny_config_for(model, test::sst2_subset("train", 40, "plan_deep_train.tsv"), "",
                                        test::temp_path("plan_deep_run"));
  plan::PlanRequest r;
  r.model = read_model_config(h5::File::open_read(model));
  plan::HardwareOptions cpu;
  cpu.gpu = "cpu";
  r.hardware = plan::make_hardware(cpu);
  r.gpus = 8;
  r.workload = plan::make_workload(config, r.model, model, plan::WorkloadOptions{});
  r.config = config;
  const plan::Plan shallow = plan::make_plan(r);
  config.prompt.method = "deep";
  r.config = config;
  const plan::Plan deep = plan::make_plan(r);
  ASSERT_EQ(deep.layouts.size(), shallow.layouts.size());
  const ModelConfig& m = r.model;
  for (const plan::LayoutPlan& l : deep.layouts) {
    // Each rank's kv heads (one when tensor ranks share a head), all layers over the stages.
    const int64_t kv = std::max(1, m.n_kv_heads / l.tensor);
    const double prefix_bytes = double(m.n_layers) * config.prompt.length * 2 * kv * m.head_dim * 4;
    EXPECT_EQ(l.bytes_per_step.data, l.data == 1 ? 0.0 : l.tensor * l.data * prefix_bytes)
        << l.tensor << "x" << l.pipeline << "x" << l.data;
    // The same layout of prompt tuning holds [P, d] on the first stage only.
    for (const plan::LayoutPlan& s : shallow.layouts)
      if (s.tensor == l.tensor && s.pipeline == l.pipeline && s.data == l.data && s.micro_batch == l.micro_batch &&
          s.schedule == l.schedule && l.pipeline > 1) {
        EXPECT_GT(l.stages.back().memory.prompt, s.stages.back().memory.prompt);
      }
  }
}

}  // namespace
}  // namespace sptrain
