#include "sptrain/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "sptrain/config/load.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/io/fingerprint.hpp"
#include "sptrain/optim/clip.hpp"
#include "sptrain/optim/optimizer.hpp"
#include "sptrain/optim/schedule.hpp"
#include "sptrain/prompt/prompt_init.hpp"
#include "sptrain/comm/control.hpp"
#include "sptrain/comm/stop_signals.hpp"
#include "sptrain/io/file.hpp"
#include "sptrain/train/sampler.hpp"
#include "sptrain/train/prompt_state.hpp"
#include "sptrain/train/train_step.hpp"

namespace sptrain {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string format_duration(double s) {
  char buf[32];
  const int total = int(s + 0.5);
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%dh%02dm", total / 3600, total / 60 % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dm%02ds", total / 60, total % 60);
  }
  return buf;
}

// metrics.jsonl, written by world rank 0 only. On resume, lines of steps
// after the checkpoint are dropped so the file describes one run. Every
// write is checked: a record that does not reach the disk ends the run.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, int64_t resume_step, bool active) {
    if (!active) return;
    std::string kept;
    if (resume_step > 0) {
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) {
        try {
          auto j = nlohmann::json::parse(line);
          if (j.value("step", int64_t(0)) <= resume_step) kept += line + '\n';
        } catch (const std::exception&) {
          // A line cut short by a crash: dropped.
        }
      }
    }
    write_file_atomically(path, {{kept.data(), kept.size()}});
    out_.emplace(path, OutputFile::Mode::Append);
  }
  void write(const nlohmann::json& j) {
    if (out_) out_->write(j.dump() + '\n');
  }

 private:
  std::optional<OutputFile> out_;
};

// The learning-rate trap (docs/config.md, "Learning rates"): an optimizer
// step moves each prompt value by about lr (AdamW, or Adafactor without
// parameter scaling) or lr x RMS(prompt) (Adafactor with it). Far above the
// scale of the model's embeddings, the prompt leaves the region the model
// understands in a few steps and training collapses.
void warn_about_learning_rate(const Config& config, const Session& session) {
  const double emb = embedding_rms(session.model_file, session.model);
  const std::vector<float>& prompt = session.prompt->values();  // this rank's share
  double sq = 0;
  for (float v : prompt) sq += double(v) * v;
  const double prompt_rms = std::sqrt(sq / double(std::max<size_t>(1, prompt.size())));
  if (session.prompt->method() != PromptMethod::PromptTuning) {
    // Keys and values, or an encoder's weights: not on the embeddings' scale.
    std::fprintf(stderr, "sptrain: %s prompt: %zu trainable values on this rank, RMS %.4g; an update "
                         "moves a value by about %.3g\n",
                 config.prompt.method.c_str(), prompt.size(), prompt_rms, config.optim.lr);
    return;
  }
  const OptimSection& o = config.optim;
  const bool relative = o.name == "adafactor" && o.adafactor.scale_parameter;
  const double step = relative ? o.lr * std::max(o.adafactor.eps2, prompt_rms) : o.lr;
  std::fprintf(stderr, "sptrain: embedding RMS %.4g, prompt RMS %.4g; an update moves a prompt "
                       "value by about %.3g\n", emb, prompt_rms, step);
  if (step > 0.5 * emb)
    std::fprintf(stderr,
                 "sptrain: warning: optim.lr %g moves each prompt value by about %.3g per step, "
                 "more than half this model's embedding RMS (%.3g); prompt tuning tends to "
                 "collapse to one class. Try optim.lr <= %.2g%s (docs/config.md, \"Learning "
                 "rates\").\n",
                 o.lr, step, emb, relative ? 0.2 * emb / std::max(o.adafactor.eps2, prompt_rms) : 0.1 * emb,
                 o.name == "adafactor" && !relative ? " or optim.adafactor.scale_parameter: true" : "");
}

}  // namespace

// Takes the SIGTERM rules of the training loop while it lives
// (comm/stop_signals.hpp), and those of start-up again after.
class TrainingPhase {
 public:
  explicit TrainingPhase(double stop_timeout_s) {
    set_stop_deadline(stop_timeout_s);
    set_training_phase(true);
  }
  ~TrainingPhase() { set_training_phase(false); }
  TrainingPhase(const TrainingPhase&) = delete;
  TrainingPhase& operator=(const TrainingPhase&) = delete;
};

// resume: auto. World rank 0 tidies run_dir first (what kills and full disks
// leave: temporaries of cut writes, newest checkpoints that do not read, set
// aside as *.unreadable, checkpoints beyond keep_checkpoints) and picks the
// newest checkpoint that reads; every rank gets its step from it.
std::optional<std::string> auto_resume_path(const ParallelState& ps, const TrainSection& t) {
  double step = 0;  // the others' share of the sum below
  if (ps.world_rank() == 0) {
    for (const std::string& tmp : remove_stale_temporaries(t.run_dir))
      std::fprintf(stderr, "sptrain: removed %s (a checkpoint write cut short)\n", tmp.c_str());
    const ResumeChoice choice = choose_resume_checkpoint(t.run_dir);
    for (const auto& [path, why] : choice.unreadable) {
      const std::string aside = path + ".unreadable";
      std::error_code ec;
      std::filesystem::rename(path, aside, ec);
      SPT_CHECK(!ec, path, ": cannot set the unreadable checkpoint aside as ", aside, ": ", ec.message());
      std::fprintf(stderr, "sptrain: warning: %s; set aside as %s, resuming from %s\n", why.c_str(), aside.c_str(),
                   choice.path ? "the newest checkpoint that reads" : "the start (no checkpoint reads)");
    }
    prune_checkpoints(t.run_dir, t.keep_checkpoints);
    step = double(choice.step);
  }
  control_sum(ps.host(), {&step});  // rank 0's step (-1: none)
  if (step < 0) return std::nullopt;
  return t.run_dir + "/" + checkpoint_name(int64_t(step));
}

TrainSummary train(const Config& config, ProcessGrid grid) {
  const TrainSection& t = config.train;
  SPT_CHECK(config.prompt.length >= 1, "prompt.length must be >= 1 to train (0 is only for "
            "evaluating the template alone)");
  // run_dir before any training work: a folder this run can write, and its
  // alone (world rank 0 writes everything there).
  std::optional<FolderLock> lock;
  if (grid.world_rank == 0) {
    lock.emplace(t.run_dir, "train.run_dir");
    if (!lock->note().empty()) std::fprintf(stderr, "sptrain: note: %s\n", lock->note().c_str());
  }
  Session session(config, std::move(grid), SessionMode::Train);
  const ParallelState& ps = *session.parallel;
  const bool lead = ps.world_rank() == 0;
  const ModelConfig& model = session.model;
  const int P = config.prompt.length, d = model.d_model;

  // Where to start: a checkpoint, or the prompt's initializer.
  std::optional<std::string> resume_path;
  if (t.resume == "auto") {
    resume_path = auto_resume_path(ps, t);
  } else if (t.resume != "never") {
    resume_path = t.resume;
  }
  TrainSummary summary;
  DataSampler sampler(int64_t(session.data.train.size()), t.seed, t.shuffle);
  std::unique_ptr<Optimizer> optimizer = make_prompt_optimizer(session);
  const LrSchedule schedule(config.optim, t.steps);
  int64_t start_step = 0;
  if (resume_path) {
    Checkpoint c = read_checkpoint(*resume_path);
    SPT_CHECK(c.model_fingerprint == model.fingerprint, *resume_path,
              ": checkpoint of another model (fingerprint ", c.model_fingerprint, ", ",
              config.model.path, " has ", model.fingerprint, ")");
    SPT_CHECK(c.optimizer_name == optimizer->name(), *resume_path, ": optimizer state is ",
              c.optimizer_name, " but optim.name is ", optimizer->name());
    restore_prompt(session, *optimizer, c, *resume_path);
    sampler.seek(c.epoch, c.epoch_position);
    start_step = c.step;
    summary.resumed_from = *resume_path;
    if (start_step >= t.steps) {  // nothing left to do: say so, change nothing
      summary.already_complete = true;
      summary.steps_done = start_step;
      return summary;
    }
    if (lead) std::fprintf(stderr, "sptrain: resuming from %s (step %lld)\n", resume_path->c_str(),
                           static_cast<long long>(c.step));
  } else {
    Rng rng(t.seed);
    start_prompt(session, rng);
  }

  if (lead) warn_about_learning_rate(config, session);

  MetricsLog metrics(t.run_dir + "/metrics.jsonl", start_step, lead);
  if (lead) {
    const std::string yaml = dump_config(config);
    write_file_atomically(t.run_dir + "/config.yaml", {{yaml.data(), yaml.size()}});
    const GridLayout& l = ps.layout();
    std::fprintf(stderr,
                 "sptrain: %s | %d layers, d_model %d | %d ranks (data %d x pipeline %d x tensor %d) "
                 "| %s\n"
                 "sptrain: %zu training examples, %zu evaluation examples, %s prompt %d x %d, %s lr %g, "
                 "batch %d, %d steps\n",
                 model.name.c_str(), model.n_layers, model.d_model, ps.world_size(), l.data, l.pipeline,
                 l.tensor, session.backend->name().c_str(), session.data.train.size(),
                 session.data.eval.size(), config.prompt.method.c_str(), P, d, config.optim.name.c_str(),
                 config.optim.lr, t.batch_size, t.steps);
  }

  const bool generative = session.task->generative();
  auto save = [&](int64_t step, const EvalResult* eval) {
    // Replicas must agree on the prompt before one of them writes it.
    SPT_CHECK(replicas_agree(session), "the prompt differs between replicas at step ", step,
              " (checksums disagree): refusing to write a checkpoint");
    Checkpoint c;
    save_prompt(session, *optimizer, c);  // every rank sends its share
    if (!lead) return;
    c.step = step;
    c.optimizer_name = optimizer->name();
    c.epoch = sampler.epoch();
    c.epoch_position = sampler.position();
    c.config_yaml = dump_config(config);
    c.model_fingerprint = model.fingerprint;
    c.model_path = config.model.path;
    if (eval) {
      if (!generative) c.eval_accuracy = eval->accuracy;
      c.eval_loss = eval->loss;
    }
    c.task_template = config.task.template_text;
    c.labels = config.task.labels;
    write_checkpoint(t.run_dir + "/" + checkpoint_name(step), c);
    prune_checkpoints(t.run_dir, t.keep_checkpoints);
  };

  auto run_eval = [&](int64_t step) {
    const auto eval_start = Clock::now();
    EvalResult r = evaluate_task(session);
    if (generative) {
      // Generation scores instead of accuracy; the loss is over each input's first reference.
      metrics.write({{"step", step},
                     {"eval_loss", r.loss},
                     {"eval_bleu", r.text.bleu},
                     {"eval_rouge_l", r.text.rouge_l},
                     {"eval_exact_match", r.text.exact_match},
                     {"eval_examples", r.examples},
                     {"eval_time_s", seconds_since(eval_start)}});
      if (lead)
        std::fprintf(stderr,
                     "sptrain: step %lld eval: loss %.4f, BLEU %.2f, ROUGE-L %.2f, exact match %.2f "
                     "(%lld inputs, %s)\n",
                     static_cast<long long>(step), r.loss, r.text.bleu, r.text.rouge_l,
                     r.text.exact_match, static_cast<long long>(r.text.count),
                     format_duration(seconds_since(eval_start)).c_str());
      return r;
    }
    metrics.write({{"step", step},
                   {"eval_loss", r.loss},
                   {"eval_accuracy", r.accuracy},
                   {"eval_examples", r.examples}});
    if (lead)
      std::fprintf(stderr, "sptrain: step %lld eval: loss %.4f, accuracy %.4f (%lld examples)\n",
                   static_cast<long long>(step), r.loss, r.accuracy,
                   static_cast<long long>(r.examples));
    return r;
  };

  const TrainingPhase training(config.parallel.stop_timeout_s);
  const bool has_eval = !session.data.eval.empty();
  if (start_step == 0 && has_eval && t.eval_every > 0) run_eval(0);

  std::vector<int64_t> batch;
  batch.reserve(size_t(t.batch_size));
  const auto run_start = Clock::now();
  double loss_avg = 0;
  EvalResult last_eval;
  bool have_eval = false;
  for (int64_t step = start_step + 1; step <= t.steps; ++step) {
    sampler.next(t.batch_size, batch);
    const double lr = schedule.lr(int(step));
    const StepResult r = train_step(session, *optimizer, batch, lr, stop_requested());
    const double step_time = r.times.total;
    loss_avg = step == start_step + 1 ? r.loss : 0.9 * loss_avg + 0.1 * r.loss;
    summary.final_loss = r.loss;
    const double rows = double(r.text_rows + r.prompt_rows);
    nlohmann::json j = {{"step", step},
                        {"loss", r.loss},
                        {"lr", lr},
                        {"grad_norm", r.grad_norm},
                        {"step_time_s", step_time},
                        {"examples_per_s", t.batch_size / step_time},
                        {"tokens_per_s", rows / step_time},
                        {"text_tokens", r.text_rows},
                        {"prompt_tokens", r.prompt_rows}};
    if (generative) {
      j["target_tokens"] = r.targets;
    } else {
      j["accuracy"] = r.accuracy;
    }
    for (CommKind k : kCommKinds) {
      j["comm_bytes"][comm_kind_name(k)] = r.bytes[k];
      j["comm_bytes_job"][comm_kind_name(k)] = r.job_bytes[k];
    }
    if (r.skipped) j["skipped_non_finite_grad"] = true;
    metrics.write(j);

    if (lead && (step % t.log_every == 0 || step == t.steps)) {
      const double elapsed = seconds_since(run_start);
      const double eta = elapsed / double(step - start_step) * double(t.steps - step);
      std::fprintf(stderr,
                   "step %lld/%d | loss %.4f (avg %.4f) | lr %.3g | grad %.3g | %.1f ex/s, %.0f tok/s | "
                   "elapsed %s, ETA %s\n",
                   static_cast<long long>(step), t.steps, r.loss, loss_avg, lr, r.grad_norm,
                   t.batch_size / step_time, rows / step_time, format_duration(elapsed).c_str(),
                   format_duration(eta).c_str());
    }
    if (r.skipped && lead)
      std::fprintf(stderr, "sptrain: step %lld: gradient is not finite, update skipped\n",
                   static_cast<long long>(step));

    const bool last = step == t.steps;
    if (has_eval && (last || (t.eval_every > 0 && step % t.eval_every == 0))) {
      last_eval = run_eval(step);
      have_eval = true;
    }
    if (last || r.stop_requested || (t.checkpoint_every > 0 && step % t.checkpoint_every == 0))
      save(step, have_eval ? &last_eval : nullptr);
    summary.steps_done = step;
    if (r.stop_requested && !last) {
      summary.stopped_by_signal = true;
      if (lead)
        std::fprintf(stderr, "sptrain: stop requested: checkpoint written at step %lld\n",
                     static_cast<long long>(step));
      break;
    }
  }
  if (have_eval) summary.final_eval = last_eval;
  return summary;
}

}  // namespace sptrain
