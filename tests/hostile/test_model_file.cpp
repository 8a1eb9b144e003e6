// Issue 19, hostile model files: each test damages one thing in a model file
// sptrain wrote (resealed, so the reader's own checks must catch it) and
// expects an sptrain::Error naming the file and the attribute or dataset.
// Items 4 (silent wrong results), 5 (the fingerprint) and 6 (sizes that
// would overflow) of the probe list; docs/security.md.
#include <limits>

#include "hostile.hpp"

namespace sptrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using test::error_of;

class HostileModel : public ::testing::Test {
 protected:
  std::string model(int d_model = 16) { return test::write_hostile_model(dir_.path("model.h5"), d_model); }
  static std::string read_error(const std::string& path) {
    return error_of([&] { (void)read_model_config(h5::File::open_read(path)); });
  }
  test::ScratchDir dir_;
};

// Item 4: d_model 63 over 64-wide datasets.
TEST_F(HostileModel, DModelDisagreeingWithTheDatasetsIsAnError) {
  const std::string m = model(64);
  test::set_root_attr(m, "d_model", int64_t(63));
  EXPECT_THAT(read_error(m), AllOf(HasSubstr(m), HasSubstr("dataset 'embeddings/tokens' has shape [256, 64]"),
                                   HasSubstr("d_model 63"), HasSubstr("[256, 63]")));
}

// Item 4: rope_theta NaN or zero.
TEST_F(HostileModel, NanOrZeroRopeThetaIsAnError) {
  const std::string m = model();
  test::set_root_attr(m, "rope_theta", std::numeric_limits<double>::quiet_NaN());
  EXPECT_THAT(read_error(m), AllOf(HasSubstr(m), HasSubstr("rope_theta = nan must be a finite number > 0")));
  test::set_root_attr(m, "rope_theta", 0.0);
  EXPECT_THAT(read_error(m), AllOf(HasSubstr(m), HasSubstr("rope_theta = 0 must be a finite number > 0")));
}

// Item 4: a NaN or an infinity among the weights stops the loader.
TEST_F(HostileModel, NanOrInfiniteWeightsAreAnError) {
  const std::string m = model();
  const std::string prompt = dir_.path("prompt.h5");
  write_checkpoint(prompt, test::hostile_checkpoint(m));
  test::load_for_infer(m, prompt);  // as written: loads

  test::set_float_element(m, "layers/1/attn/q/weight", 5, std::numeric_limits<float>::quiet_NaN());
  EXPECT_THAT(error_of([&] { test::load_for_infer(m, prompt); }),
              AllOf(HasSubstr(m), HasSubstr("dataset 'layers/1/attn/q/weight' holds nan"),
                    HasSubstr("weights must be finite")));

  const std::string m2 = test::write_hostile_model(dir_.path("model2.h5"));
  test::set_float_element(m2, "embeddings/tokens", 17, -std::numeric_limits<float>::infinity());
  const std::string prompt2 = dir_.path("prompt2.h5");
  write_checkpoint(prompt2, test::hostile_checkpoint(m2));
  EXPECT_THAT(error_of([&] { test::load_for_infer(m2, prompt2); }),
              AllOf(HasSubstr(m2), HasSubstr("dataset 'embeddings/tokens' holds -inf")));
}

// Item 4: weights stored as integers.
TEST_F(HostileModel, IntegerWeightsAreAnError) {
  const std::string m = model();
  test::make_dataset_int32(m, "layers/0/mlp/up/weight");
  EXPECT_THAT(read_error(m), AllOf(HasSubstr(m), HasSubstr("dataset 'layers/0/mlp/up/weight' holds integers (i32)")));
}

// Item 5: a model without a fingerprint would accept any prompt of its width.
TEST_F(HostileModel, AModelWithoutAFingerprintIsRefused) {
  const std::string m = model();
  test::delete_root_attr(m, "fingerprint");
  EXPECT_THAT(read_error(m), AllOf(HasSubstr(m), HasSubstr("no 'fingerprint' attribute")));
}

// Item 6: head_dim or n_heads of 1e9 are bounded before any product or allocation.
TEST_F(HostileModel, HugeHeadDimOrHeadCountIsAnError) {
  const std::string m = model();
  test::set_root_attr(m, "head_dim", int64_t(1000000000));
  EXPECT_THAT(read_error(m), AllOf(HasSubstr(m), HasSubstr("head_dim = 1000000000 is outside [1, 1048576]")));
  test::set_root_attr(m, "head_dim", int64_t(4));
  test::set_root_attr(m, "n_heads", int64_t(1000000000));
  EXPECT_THAT(read_error(m), AllOf(HasSubstr(m), HasSubstr("n_heads = 1000000000 is outside [1, 1048576]")));
}

// Item 2 (the model file's side): n_layers beyond the limit.
TEST_F(HostileModel, HugeLayerCountIsAnError) {
  const std::string m = model();
  test::set_root_attr(m, "n_layers", int64_t(1000000000));
  EXPECT_THAT(read_error(m), AllOf(HasSubstr(m), HasSubstr("n_layers = 1000000000 is outside [1, 1024]")));
}

}  // namespace
}  // namespace sptrain
