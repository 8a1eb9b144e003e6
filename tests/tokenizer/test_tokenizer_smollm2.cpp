// SmolLM2's tokenizer, loaded from the GGUF, against reference ids from
// Hugging Face `tokenizers` (tests/golden/tokenizer_smollm2.jsonl, written by
// tools/gen_tokenizer_golden.py). Skipped until tools/fetch_smollm2.sh ran.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sptrain/io/gguf.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain {
namespace {
namespace fs = std::filesystem;

const std::string kModel = std::string(SPTRAIN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kGolden = std::string(SPTRAIN_SOURCE_DIR) + "/tests/golden/tokenizer_smollm2.jsonl";

#define SKIP_WITHOUT_MODEL()                                                          \
  if (!fs::exists(kModel))                                                            \
  GTEST_SKIP() << kModel << " not found: run tools/fetch_smollm2.sh to download it"

TEST(SmolLM2Tokenizer, FactsFromTheGguf) {
  SKIP_WITHOUT_MODEL();
  Tokenizer t = Tokenizer::from_gguf(gguf::File::open(kModel));
  EXPECT_EQ(t.vocab_size(), 49152);
  EXPECT_EQ(t.token_to_id("<|im_start|>"), 1);
  EXPECT_EQ(t.token_to_id("<|im_end|>"), 2);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.pad_id(), 2);
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.spec().merges.size(), 48900u);
  EXPECT_EQ(t.token_type(1), TokenType::Control);
}

TEST(SmolLM2Tokenizer, MatchesHuggingFaceTokenizers) {
  SKIP_WITHOUT_MODEL();
  Tokenizer t = Tokenizer::from_gguf(gguf::File::open(kModel));
  std::ifstream in(kGolden);
  ASSERT_TRUE(in) << kGolden << " missing: run tools/gen_tokenizer_golden.py";
  std::string line;
  int n = 0, mismatches = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    std::string text = j["text"];
    std::vector<int32_t> want = j["ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> got = t.encode(text);
    ++n;
    if (got != want && ++mismatches <= 10) {
      ADD_FAILURE() << "text " << nlohmann::json(text).dump() << "\n  want "
                    << nlohmann::json(want).dump() << "\n  got  " << nlohmann::json(got).dump();
    }
    EXPECT_EQ(t.decode(got), text);
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(n, 900);
}

TEST(SmolLM2Tokenizer, SurvivesTheModelFile) {
  SKIP_WITHOUT_MODEL();
  Tokenizer t = Tokenizer::from_gguf(gguf::File::open(kModel));
  fs::path path = fs::temp_directory_path() / "sptrain_smollm2_tok.h5";
  {
    h5::File f = h5::File::create(path.string());
    t.save(f);
  }
  Tokenizer u = Tokenizer::load(h5::File::open_read(path.string()));
  fs::remove(path);
  EXPECT_EQ(u.spec().tokens, t.spec().tokens);
  EXPECT_EQ(u.spec().merges, t.spec().merges);
  std::string text = "<|im_start|>user\nA 12345-word r\xC3\xA9sum\xC3\xA9, isn't it?<|im_end|>";
  EXPECT_EQ(u.encode(text), t.encode(text));
}

}  // namespace
}  // namespace sptrain

namespace sptrain {
namespace {

// A second reference: the ids Hugging Face transformers' own GGUF tokenizer gave
// for the sentences of tests/golden/smollm2_logits.h5 (tools/gen_logits_golden.py).
TEST(SmolLM2Tokenizer, MatchesTransformersGgufTokenizer) {
  SKIP_WITHOUT_MODEL();
  const std::string golden = std::string(SPTRAIN_SOURCE_DIR) + "/tests/golden/smollm2_logits.h5";
  ASSERT_TRUE(fs::exists(golden)) << golden << " missing: run tools/gen_logits_golden.py";
  Tokenizer t = Tokenizer::from_gguf(gguf::File::open(kModel));
  h5::File f = h5::File::open_read(golden);
  std::vector<std::string> sentences = f.read_strings("sentences");
  ASSERT_EQ(sentences.size(), 5u);
  for (size_t k = 0; k < sentences.size(); ++k) {
    std::string name = "ids/" + std::to_string(k);
    std::vector<int32_t> want(size_t(f.info(name).shape.numel()));
    f.read(name, DType::I32, want.data());
    EXPECT_EQ(t.encode(sentences[k]), want) << sentences[k];
  }
}

}  // namespace
}  // namespace sptrain
