// `sptrain generate`: JSONL in ({"task": NAME, "input": ...} per line), JSONL
// out (the generated text per line, in input order). Every input line is
// checked and tokenized before the model runs. Under mpirun the ranks split
// the model (tensor x pipeline); rank 0 prints.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "json_requests.hpp"
#include "sptrain/cli/commands.hpp"
#include "sptrain/comm/mpi_runtime.hpp"
#include "sptrain/infer/generator.hpp"

namespace sptrain {

namespace {

using nlohmann::ordered_json;

struct Request {
  GenerationRequest request;
  nlohmann::json id;  // the input's "id", echoed when present
};

std::vector<Request> read_requests(const Generator& gen, const std::string& input) {
  std::string where;
  std::vector<Request> out;
  for (const JsonRequest& j : read_json_requests(input, "input", where)) {
    const int task = gen.tasks().find(j.task);
    if (task < 0) fail(where, ":", j.line, ": unknown task '", j.task, "' (tasks: ", gen.tasks().names(), ")");
    if (j.text.empty()) fail(where, ":", j.line, ": empty \"input\"");
    Request r;
    r.request.prompt = task;
    r.request.index = uint64_t(j.line);
    r.request.tokens = gen.tasks()[task].task->encode_input(j.text);
    r.id = j.id;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

int run_generate(const GenerateOptions& o) {
  MpiRuntime mpi(MpiStart::WhenLaunched);
  try {
    SPT_CHECK(mpi.world_size() == 1 || o.input != "-", "generate under mpirun: give --input FILE "
              "(only one rank reads standard input)");
    std::vector<TaskPrompt> tasks;
    for (const std::string& arg : o.prompts) tasks.push_back(parse_task_prompt(arg));
    int max_new = o.max_new_tokens;
    if (max_new == 0)
      for (const TaskPrompt& t : tasks) max_new = std::max(max_new, t.prompt.task_max_target_length);
    GeneratorOptions options;
    options.batch_size = o.batch_size;
    options.threads = o.threads;
    options.max_new_tokens = std::max(max_new, 1);
    Generator gen(o.model, std::move(tasks), make_process_grid(o.tensor, o.pipeline), options);
    const std::vector<Request> requests = read_requests(gen, o.input);

    DecodeOptions decode;
    decode.max_new_tokens = options.max_new_tokens;
    decode.sampling = SamplingOptions{o.temperature, o.top_k, o.top_p};
    decode.seed = o.seed;
    decode.stop = o.stop;
    const bool prints = gen.world_rank() == 0;
    const auto start = std::chrono::steady_clock::now();
    size_t new_tokens = 0;
    std::vector<const GenerationRequest*> batch;
    for (size_t begin = 0; begin < requests.size(); begin += size_t(o.batch_size)) {
      const size_t end = std::min(requests.size(), begin + size_t(o.batch_size));
      batch.clear();
      for (size_t i = begin; i < end; ++i) batch.push_back(&requests[i].request);
      const std::vector<Generation> out = gen.generate(batch, decode);
      for (const Generation& g : out) new_tokens += g.tokens.size() + (g.finish == "eos" ? 1 : 0);
      if (!prints) continue;
      for (size_t i = begin; i < end; ++i) {
        const Generation& g = out[i - begin];
        ordered_json line;
        if (!requests[i].id.is_null()) line["id"] = requests[i].id;
        line["task"] = gen.tasks()[requests[i].request.prompt].name;
        line["text"] = g.text;
        line["tokens"] = g.tokens.size();
        if (o.ids) line["ids"] = g.tokens;
        line["finish"] = g.finish;
        std::fputs((line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n").c_str(), stdout);
      }
      std::fflush(stdout);
    }
    // The speed, model loading excluded; a token that ended a sequence counts.
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (prints)
      std::fprintf(stderr, "sptrain: generated %zu tokens for %zu inputs in %.2f s (%.1f new tokens/s, batch %d)\n",
                   new_tokens, requests.size(), seconds, seconds > 0 ? double(new_tokens) / seconds : 0.0,
                   o.batch_size);
    return 0;
  } catch (const std::exception& e) {
    if (mpi.world_size() > 1) abort_job(e.what());
    throw;  // one rank: main prints it
  }
}

}  // namespace sptrain
