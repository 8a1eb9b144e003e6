// Issue 19, hostile prompt files: checkpoints and hdf5 exports damaged after
// they were written (resealed), and a .npy whose shape overflows; each must
// be an sptrain::Error naming the file and the dataset or attribute.
// Items 4, 5 and 6 of the probe list; docs/security.md.
#include <fstream>
#include <limits>

#include "hostile.hpp"
#include "sptrain/prompt/hdf5_export.hpp"
#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using test::error_of;

class HostilePrompt : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::write_hostile_model(dir_.path("model.h5"));
    ckpt_ = dir_.path("prompt.h5");
    write_checkpoint(ckpt_, test::hostile_checkpoint(model_));
    export_ = dir_.path("export.h5");
    export_hdf5(read_stored_prompt(ckpt_), export_);
  }
  test::ScratchDir dir_;
  std::string model_, ckpt_, export_;
};

// Item 4: a NaN in a checkpoint's prompt (read as resuming reads it).
TEST_F(HostilePrompt, NanPromptInACheckpointIsAnError) {
  test::set_float_element(ckpt_, "prompt", 6, std::numeric_limits<float>::quiet_NaN());
  EXPECT_THAT(error_of([&] { (void)read_checkpoint(ckpt_); }),
              AllOf(HasSubstr(ckpt_), HasSubstr("the prompt holds nan at value 6"), HasSubstr("must be finite")));
}

// Item 4: a NaN or infinity in an export's prompt (read as infer and eval read it).
TEST_F(HostilePrompt, NonFinitePromptInAnExportIsAnError) {
  test::set_float_element(export_, "prompt", 17, std::numeric_limits<float>::infinity());
  EXPECT_THAT(error_of([&] { (void)read_stored_prompt(export_); }),
              AllOf(HasSubstr(export_), HasSubstr("the prompt holds inf at row 1, column 1"),
                    HasSubstr("must be finite")));
}

// Item 4: prompts stored as integers.
TEST_F(HostilePrompt, IntegerPromptInACheckpointIsAnError) {
  test::make_dataset_int32(ckpt_, "prompt");
  EXPECT_THAT(error_of([&] { (void)read_checkpoint(ckpt_); }),
              AllOf(HasSubstr(ckpt_), HasSubstr("dataset 'prompt' holds i32, not f32")));
}

TEST_F(HostilePrompt, IntegerPromptInAnExportIsAnError) {
  test::make_dataset_int32(export_, "prompt");
  EXPECT_THAT(error_of([&] { (void)read_stored_prompt(export_); }),
              AllOf(HasSubstr(export_), HasSubstr("dataset 'prompt' holds i32, not f32")));
}

// Item 5: a checkpoint or export that records no model fingerprint would pass
// on any model of its width: refused where a prompt meets its model.
TEST_F(HostilePrompt, ACheckpointWithoutAModelFingerprintIsRefused) {
  Checkpoint k = test::hostile_checkpoint(model_);
  k.model_fingerprint.clear();
  const std::string bare = dir_.path("bare.h5");
  write_checkpoint(bare, k);
  EXPECT_THAT(error_of([&] { test::load_for_infer(model_, bare); }),
              AllOf(HasSubstr(bare), HasSubstr("records no model fingerprint")));
}

TEST_F(HostilePrompt, AnExportWithoutAModelFingerprintIsRefused) {
  test::set_root_attr(export_, "model_fingerprint", std::string());
  EXPECT_THAT(error_of([&] { test::load_for_infer(model_, export_); }),
              AllOf(HasSubstr(export_), HasSubstr("records no model fingerprint")));
}

// Item 6: a .npy of shape (2^56 + 8, 64) with 2 KB of data: in 64-bit
// arithmetic its 2^62 + 512 floats "need" exactly 2 KB.
TEST_F(HostilePrompt, NpyShapeThatOverflowsIsAnError) {
  const std::string path = dir_.path("huge.npy");
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (72057594037927944, 64), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += char(header.size() & 0xff);
  bytes += char(header.size() >> 8);
  bytes += header;
  bytes += std::string(2048, '\0');
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  const std::string e = error_of([&] { (void)read_stored_prompt(path); });
  EXPECT_THAT(e, AllOf(HasSubstr(path), HasSubstr("npy data is 2048 bytes but shape (72057594037927944, 64)")));
  EXPECT_THAT(e, AllOf(Not(HasSubstr("bad_alloc")), Not(HasSubstr("_M_")), Not(HasSubstr("vector"))));
}

}  // namespace
}  // namespace sptrain
