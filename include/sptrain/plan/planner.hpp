#pragma once
// `sptrain plan`: every parallel layout of a job on N devices, each rank's
// memory by kind (what the code allocates, from the same buffer lists), the
// step's time (FLOPs at the device's rate, each collective as bytes over
// bandwidth plus latency, the pipeline schedule's bubble) and the bytes each
// kind of group sends (the formulas beside the calls: step_bytes), ranked.
// docs/plan.md states the model and its defaults.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sptrain/comm/communicator.hpp"
#include "sptrain/config/config.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/pipeline/schedule.hpp"
#include "sptrain/plan/hardware.hpp"
#include "sptrain/plan/workload.hpp"

namespace sptrain::plan {

struct PlanRequest {
  Config config;  // the run: task, prompt, optimizer, batch sizes; its parallel section is ignored
  ModelConfig model;
  Workload workload;
  Hardware hardware;
  int gpus = 1;
  // Only layouts with these (0 or "" = any).
  int tensor = 0, pipeline = 0, micro_batch = 0;
  std::string schedule;
};

// One rank's memory, in bytes.
struct RankMemory {
  int64_t weights = 0;
  int64_t activations = 0;  // kept for backward, every micro-batch in flight on the stage
  int64_t workspace = 0;    // layers' and head's scratch, the input gradient, the evaluation set, the back end's attention scratch
  int64_t batches = 0;      // the packed micro-batches (training and evaluation)
  int64_t prompt = 0;       // the prompt and its gradient (host and device) and the optimizer's state
  int64_t tables = 0;       // RoPE
  int64_t data = 0;         // the tokenizer, the task and its encoded examples (host)
  int64_t runtime = 0;      // the fixed overhead (Hardware::runtime_bytes)
  int64_t on_device = 0;    // what of it lies in device memory (all of it on the CPU)
  int64_t total() const {
    return weights + activations + workspace + batches + prompt + tables + data + runtime;
  }
  int64_t other() const { return total() - weights - activations; }
};

// Seconds of one step, by part, on the step's critical path.
struct StepTime {
  double compute = 0;   // the busiest stage's forward and backward passes
  double tensor = 0;    // its tensor-parallel all-reduces
  double pipeline = 0;  // its pipeline sends
  double bubble = 0;    // waiting for the other stages (the schedule's fill and drain, uneven stages)
  double data = 0;      // the prompt gradient's all-reduce
  double overhead = 0;  // the step's fixed host work
  double total() const { return compute + tensor + pipeline + bubble + data + overhead; }
};

struct StagePlan {
  int stage = 0, first_layer = 0, layers = 0;
  int activation_sets = 0;  // micro-batches in flight
  RankMemory memory;        // tensor rank 0 (the largest vocabulary range)
  PerKind<double> bytes_per_step;  // one rank of the stage, mean over the planned steps
};

struct LayoutPlan {
  int tensor = 1, pipeline = 1, data = 1, micro_batch = 1;
  ScheduleKind schedule = ScheduleKind::OneFOneB;
  bool fits = false;
  RankMemory memory;  // the rank that needs the most
  int memory_stage = 0;
  StepTime time;
  double step_seconds = 0, tokens_per_second = 0, examples_per_second = 0, mfu = 0;
  double flops_per_step = 0;                     // every rank's counted FLOPs
  PerKind<double> bytes_per_step;                // every rank's, mean over the planned steps
  std::vector<PerKind<uint64_t>> bytes_by_step;  // every rank's, each planned step
  std::vector<StagePlan> stages;
  std::string loses;  // why it is not the best ("" for the best)
};

struct Plan {
  PlanRequest request;
  std::vector<LayoutPlan> layouts;  // best first
  int best = -1;                    // -1: nothing fits
  int64_t text_tokens_per_step = 0; // mean over the planned steps
};

Plan make_plan(const PlanRequest& request);

// One stage's work on one micro-batch, in seconds.
struct OpCost {
  double forward = 0, backward = 0;            // compute and the tensor all-reduces inside it
  double send_forward = 0, send_backward = 0;  // the pipeline messages this stage sends
  double compute = 0, tensor = 0;              // the parts, for the breakdown
};
// Runs every stage's schedule (make_schedule) as events: a forward needs the
// previous stage's output, a backward the next stage's gradient; a message
// takes its sender the transfer time and arrives at its end. cost[s][k]:
// stage s, micro-batch k. Returns the step's span; busy[s] is the time stage
// s spent working or sending.
double pipeline_span(ScheduleKind kind, const std::vector<std::vector<OpCost>>& cost,
                     std::vector<double>& busy);
const char* schedule_name(ScheduleKind kind);
nlohmann::json to_json(const Plan& plan);

}  // namespace sptrain::plan
