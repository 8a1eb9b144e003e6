// The byte-flip sweep of issue 19 (docs/security.md): one byte of a tiny model
// file, a prompt checkpoint or an hdf5 prompt export (each prompt file also as
// a deep prompt: format_version 2's prefix) changed at a time, then
// read as resuming (read_checkpoint) and `sptrain infer` (Predictor: model,
// tokenizer, prompt, one prediction) read it.
//  - As written: sptrain's checksum block catches every change before HDF5
//    reads a byte, so every read must end in an sptrain::Error naming the file.
//  - Resealed (the checksum written again after the change, as if the damage
//    came before sealing): what is left are HDF5's own checks (checksummed
//    metadata, Fletcher32) and sptrain's checks of what it reads. A read may
//    then succeed (the byte did not matter) or end in an sptrain::Error naming
//    the file; a crash, a sanitizer report, another exception or a hang fails.
// A resealed read runs in a child process, so a crash is reported with its
// offset. The test flips about 300 bytes of each file as written and 50
// resealed (a few seconds); SPTRAIN_BYTE_FLIP_STRIDE=N flips every N-th byte
// instead (N=1: the full sweep of docs/security.md), and
// SPTRAIN_BYTE_FLIP_FILES=a.h5,b.h5 sweeps only those of kFiles.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sptrain/core/error.hpp"
#include "sptrain/infer/predictor.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/model/random_model.hpp"
#include "sptrain/prompt/hdf5_export.hpp"
#include "sptrain/prompt/prompt_parameter.hpp"
#include "sptrain/prompt/stored_prompt.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

#include "../support/train_env.hpp"

namespace fs = std::filesystem;
using namespace sptrain;
using sptrain::test::tiny_model;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) fail(path, ": cannot write");
}

// A child's exit status: what its read did.
enum Outcome { kAccepted = 0, kRejected = 3, kUnnamed = 4, kForeign = 5 };

struct Sweep {
  int runs = 0, accepted = 0, rejected = 0;
  std::vector<std::string> findings;  // "offset K: what happened"
};

class ByteFlipTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("sptrain_test_byte_flip_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string tiny = tiny_model(Family::Llama, "byte_flip_model.h5");
    fs::rename(tiny, file("model.h5"));
    fs::remove(fs::path(tiny).parent_path());  // temp_path's folder, when empty
    const ModelConfig c = read_model_config(h5::File::open_read(file("model.h5")));
    Checkpoint k;
    k.step = 3;
    k.prompt_rows = 4;
    k.prompt_cols = c.d_model;
    Rng rng(9);
    for (int i = 0; i < 4 * c.d_model; ++i) k.prompt.push_back(float(0.3 * rng.normal()));
    k.optimizer_name = "adamw";
    k.optimizer.push_back(NamedState{"exp_avg", {4, c.d_model}, std::vector<float>(64, 0.01f)});
    k.optimizer.push_back(NamedState{"exp_avg_sq", {4, c.d_model}, std::vector<float>(64, 0.02f)});
    k.rng_state = {1, 2, 3};
    k.config_yaml = "task:\n  max_length: 24\n";
    k.model_fingerprint = c.fingerprint;
    k.model_path = file("model.h5");
    k.eval_accuracy = 0.75;
    k.eval_loss = 0.5;
    k.task_template = "Review: {text}\nSentiment:";
    k.labels = {{"0", "n"}, {"1", "p"}};  // one token each for the byte tokenizer
    write_checkpoint(file("prompt.h5"), k);
    export_hdf5(stored_prompt_of(k, file("prompt.h5")), file("export.h5"));

    // The same run with a deep prompt: keys and values of 2 rows at every layer.
    Checkpoint deep = k;
    deep.prompt_method = "deep";
    deep.prompt.clear();
    deep.prompt_rows = deep.prompt_cols = 0;
    const PrefixShape ps = prefix_shape(c, 2);
    deep.prefix_layers = ps.layers;
    deep.prefix_rows = ps.rows;
    deep.prefix_cols = ps.cols();
    const int64_t n = ps.size();
    for (int64_t i = 0; i < n; ++i) deep.prefix.push_back(float(0.3 * rng.normal()));
    const std::vector<int64_t> shape{ps.layers, ps.rows, ps.cols()};
    deep.optimizer = {NamedState{"exp_avg", shape, std::vector<float>(size_t(n), 0.01f)},
                      NamedState{"exp_avg_sq", shape, std::vector<float>(size_t(n), 0.02f)}};
    write_checkpoint(file("deep_prompt.h5"), deep);
    export_hdf5(stored_prompt_of(deep, file("deep_prompt.h5")), file("deep_export.h5"));
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string file(const std::string& name) { return (dir_ / name).string(); }

  // The offsets a sweep flips: `runs` of them evenly spread over the file, or
  // every STRIDE-th byte when SPTRAIN_BYTE_FLIP_STRIDE is set.
  static size_t stride(size_t file_bytes, size_t runs) {
    const char* s = std::getenv("SPTRAIN_BYTE_FLIP_STRIDE");
    if (s && std::atoi(s) > 0) return size_t(std::atoi(s));
    return std::max<size_t>(1, file_bytes / runs) | 1;  // odd: not always the same byte of a word
  }

  // Resuming and `sptrain infer` on the model and the prompt file.
  static void use(const std::string& model, const std::string& prompt) {
    const std::string name = fs::path(prompt).filename().string();
    if (name == "prompt.h5" || name == "deep_prompt.h5") (void)read_checkpoint(prompt);
    std::vector<TaskPrompt> tasks;
    tasks.push_back(parse_task_prompt("t=" + prompt));
    Predictor predictor(model, std::move(tasks), PredictorOptions{1, 1});
    const EncodedExample ex = predictor.encode(0, "a fine film");
    if (predictor.predict({&ex}, {0}).size() != 1) fail("not one prediction");
  }

  // Flips byte k of `target` (one of kFiles; XOR 0xff) for the
  // offsets k of stride(), reads the copy and counts what happened. A sealed
  // copy is read in this process (its checksum stops it before HDF5 reads a
  // byte); a resealed one in a child, so that a crash is a finding with its
  // offset, not the end of the test.
  static Sweep sweep(const std::string& target, bool reseal, size_t runs) {
    const std::string original = read_bytes(file(target));
    const fs::path work = dir_ / ("work_" + target + (reseal ? "_resealed" : ""));
    fs::create_directories(work);
    const std::string changed = (work / target).string();
    const std::string model = target == "model.h5" ? changed : file("model.h5");
    const std::string prompt = target == "model.h5" ? file("prompt.h5") : changed;
    // What reading the changed copy did: an Outcome.
    auto read = [&](size_t k) {
      try {
        std::string bytes = original;
        bytes[k] = char(bytes[k] ^ 0xff);
        write_bytes(changed, bytes);
        if (reseal) h5::write_checksum(changed);
        use(model, prompt);
        return kAccepted;
      } catch (const Error& e) {
        if (std::strstr(e.what(), changed.c_str())) return kRejected;
        std::fprintf(stderr, "offset %zu: %s\n", k, e.what());
        return kUnnamed;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "offset %zu: %s\n", k, e.what());
        return kForeign;
      }
    };
    Sweep s;
    const size_t step = stride(original.size(), runs);
    for (size_t k = 0; k < original.size(); k += step) {
      int code = -1, status = 0;
      if (!reseal) {
        code = read(k);
      } else {
        const pid_t pid = fork();
        if (pid < 0) fail("fork failed");
        if (pid == 0) {
          alarm(60);  // a hang ends as SIGALRM: reported, never waited for
          std::_Exit(read(k));
        }
        waitpid(pid, &status, 0);
        code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      ++s.runs;
      if (code == kAccepted) ++s.accepted;
      else if (code == kRejected) ++s.rejected;
      else if (code == kUnnamed) s.findings.push_back(str("offset ", k, ": an error not naming the file"));
      else if (code == kForeign) s.findings.push_back(str("offset ", k, ": an exception not sptrain's"));
      else if (WIFSIGNALED(status)) s.findings.push_back(str("offset ", k, ": signal ", WTERMSIG(status)));
      else s.findings.push_back(str("offset ", k, ": exit status ", code, " (a sanitizer report?)"));
    }
    fs::remove_all(work);
    std::printf("%s%s: %d runs (every %zu-th byte of %zu): %d rejected, %d accepted, %zu findings\n",
                target.c_str(), reseal ? " resealed" : "", s.runs, step, original.size(), s.rejected,
                s.accepted, s.findings.size());
    return s;
  }

  static std::string list(const std::vector<std::string>& findings) {
    std::string out;
    for (size_t i = 0; i < findings.size() && i < 20; ++i) out += findings[i] + "\n";
    return out;
  }

  static fs::path dir_;
};

fs::path ByteFlipTest::dir_;

// The files a sweep changes: the model, then each prompt file (read with the
// model as written).
const char* const kFiles[] = {"model.h5", "prompt.h5", "export.h5", "deep_prompt.h5", "deep_export.h5"};

// Whether a sweep changes `file`: SPTRAIN_BYTE_FLIP_FILES, when set, names the ones it does.
bool swept(const std::string& file) {
  const char* only = std::getenv("SPTRAIN_BYTE_FLIP_FILES");
  if (!only || !*only) return true;
  return ("," + std::string(only) + ",").find("," + file + ",") != std::string::npos;
}

TEST_F(ByteFlipTest, UntouchedFilesWork) {
  for (const char* prompt : kFiles) {
    if (std::string(prompt) == "model.h5") continue;
    EXPECT_NO_THROW(use(file("model.h5"), file(prompt))) << prompt;
  }
  // The deep files hold a deep prompt (format_version 2 for the export).
  EXPECT_EQ(read_checkpoint(file("deep_prompt.h5")).prompt_method, "deep");
  const StoredPrompt deep = read_stored_prompt(file("deep_export.h5"));
  EXPECT_TRUE(deep.deep());
  EXPECT_EQ(deep.prefix.size(), size_t(deep.prefix_layers * deep.rows * deep.prefix_cols));
  EXPECT_FALSE(read_stored_prompt(file("export.h5")).deep());
}

// As written, every flipped byte is caught, with the file's name.
TEST_F(ByteFlipTest, EveryChangeToASealedFileIsRejected) {
  for (const char* target : kFiles) {
    if (!swept(target)) continue;
    const Sweep s = sweep(target, false, 300);
    EXPECT_GT(s.runs, 8) << target;
    EXPECT_EQ(s.rejected, s.runs) << target << ": " << s.accepted << " changed copies were used\n"
                                  << list(s.findings);
  }
}

// With the checksum rewritten, no change crashes, hangs or gives a raw error.
TEST_F(ByteFlipTest, ResealedChangesNeverCrash) {
  for (const char* target : kFiles) {
    if (!swept(target)) continue;
    const Sweep s = sweep(target, true, 50);
    EXPECT_GT(s.runs, 8) << target;
    EXPECT_TRUE(s.findings.empty()) << target << ":\n" << list(s.findings);
  }
}

}  // namespace
