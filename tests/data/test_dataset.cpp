// read_dataset / check_labels on small temporary files, every error with its
// exact line, and the real SST-2 splits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "sptrain/core/error.hpp"
#include "sptrain/data/dataset.hpp"

namespace fs = std::filesystem;
using sptrain::Example;
using sptrain::read_dataset;
using ::testing::HasSubstr;

namespace {

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sptrain_test_data_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `bytes` exactly (no newline added) and returns the path.
  std::string file(const std::string& name, const std::string& bytes) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  fs::path dir_;
};

// The message of the sptrain::Error `f` throws; fails the test if none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const sptrain::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an sptrain::Error";
  return "";
}

TEST_F(DatasetTest, TsvBasic) {
  auto p = file("a.tsv", "good film\t1\nbad film\t0\n");
  auto ex = read_dataset(p);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].text, "good film");
  EXPECT_EQ(ex[0].label, "1");
  EXPECT_EQ(ex[0].line, 1);
  EXPECT_EQ(ex[1].text, "bad film");
  EXPECT_EQ(ex[1].label, "0");
  EXPECT_EQ(ex[1].line, 2);
}

TEST_F(DatasetTest, TsvHeaderSkippedAndLineNumbersKept) {
  auto p = file("a.tsv", "sentence\tlabel\nfine\tpos\n");
  auto ex = read_dataset(p);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].text, "fine");
  EXPECT_EQ(ex[0].label, "pos");
  EXPECT_EQ(ex[0].line, 2);
}

TEST_F(DatasetTest, TsvHeaderOnlyOnFirstLine) {
  // `label` as a label later in the file is data, not a header.
  auto ex = read_dataset(file("a.tsv", "x\t1\ny\tlabel\n"));
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[1].label, "label");
}

TEST_F(DatasetTest, TsvCrlfNoFinalNewlineTrailingBlanks) {
  auto ex = read_dataset(file("a.txt", "a b\t1\r\nc d\t0\r\n\r\n\n"));
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].label, "1");
  EXPECT_EQ(ex[1].label, "0");
  auto ex2 = read_dataset(file("b.tsv", "a\t1\nb\t0"));
  ASSERT_EQ(ex2.size(), 2u);
  EXPECT_EQ(ex2[1].text, "b");
  EXPECT_EQ(ex2[1].label, "0");
}

TEST_F(DatasetTest, TsvLastTabSeparatesLabel) {
  auto ex = read_dataset(file("a.tsv", "col one\tcol two\t1\n"));
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].text, "col one\tcol two");
  EXPECT_EQ(ex[0].label, "1");
}

TEST_F(DatasetTest, TsvUtf8AndBomAccepted) {
  auto ex = read_dataset(file("a.tsv", "\xEF\xBB\xBF" "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\t1\n"));
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].text, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST_F(DatasetTest, TsvErrorsNameTheLine) {
  auto p = file("blank.tsv", "a\t1\nb\t0\n\nc\t1\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":3: blank line"));

  p = file("notab.tsv", "a\t1\nb\t0\nno tab here\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":3: no tab"));

  p = file("nolabel.tsv", "a\t1\nb\t\nc\t0\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":2: empty label"));

  p = file("notext.tsv", "a\t1\nb\t0\nc\t1\n\t0\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":4: empty text"));

  p = file("utf8.tsv", "a\t1\nb\t0\nc\t1\nd\t0\nbad \xFF" " byte\t1\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":5: invalid UTF-8"));

  // Overlong encoding of '/', a lone surrogate, a truncated sequence.
  p = file("overlong.tsv", "x\xC0\xAF\t1\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":1: invalid UTF-8"));
  p = file("surrogate.tsv", "ok\t1\nx\xED\xA0\x80\t1\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":2: invalid UTF-8"));
  p = file("cut.tsv", "ok\t1\nok\t1\nx\xE2\x82\t1\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":3: invalid UTF-8"));

  // CRLF file: the line count is still exact.
  p = file("crlf.tsv", "a\t1\r\nb\t0\r\nc\r\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":3: no tab"));
}

TEST_F(DatasetTest, FileLevelErrors) {
  std::string missing = (dir_ / "nope.tsv").string();
  EXPECT_THAT(error_of([&] { read_dataset(missing); }), HasSubstr(missing + ": no such file"));

  auto empty = file("empty.tsv", "");
  EXPECT_THAT(error_of([&] { read_dataset(empty); }), HasSubstr(empty + ": no examples"));
  auto blanks = file("blanks.tsv", "\n\n\r\n");
  EXPECT_THAT(error_of([&] { read_dataset(blanks); }), HasSubstr("no examples"));
  auto header = file("header.tsv", "sentence\tlabel\n");
  EXPECT_THAT(error_of([&] { read_dataset(header); }), HasSubstr("no examples"));
  auto empty_jsonl = file("empty.jsonl", "\n");
  EXPECT_THAT(error_of([&] { read_dataset(empty_jsonl); }), HasSubstr("no examples"));

  auto csv = file("data.csv", "a,1\n");
  std::string msg = error_of([&] { read_dataset(csv); });
  EXPECT_THAT(msg, HasSubstr(csv));
  EXPECT_THAT(msg, HasSubstr("task.format"));
  // An explicit format overrides the extension.
  auto as_tsv = file("data.dat", "a\t1\n");
  EXPECT_EQ(read_dataset(as_tsv, "tsv").size(), 1u);
  EXPECT_THAT(error_of([&] { read_dataset(as_tsv, "csv"); }), HasSubstr("unknown data format 'csv'"));

  EXPECT_THAT(error_of([&] { read_dataset(dir_.string(), "tsv"); }), HasSubstr("is a directory"));
}

TEST_F(DatasetTest, JsonlBasic) {
  auto p = file("a.jsonl",
                "{\"text\": \"good\", \"label\": \"pos\", \"id\": 7}\n"
                "{\"label\": 1, \"text\": \"tab\\there \\u00e9\"}\r\n"
                "{\"text\": \"neg int\", \"label\": -3}\n\n");
  auto ex = read_dataset(p);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].text, "good");
  EXPECT_EQ(ex[0].label, "pos");
  EXPECT_EQ(ex[1].text, "tab\there \xC3\xA9");
  EXPECT_EQ(ex[1].label, "1");
  EXPECT_EQ(ex[1].line, 2);
  EXPECT_EQ(ex[2].label, "-3");
  // .json is read as JSON lines too.
  EXPECT_EQ(read_dataset(file("b.json", "{\"text\":\"x\",\"label\":0}")).size(), 1u);
}

TEST_F(DatasetTest, JsonlErrorsNameTheLine) {
  const std::string ok = "{\"text\": \"x\", \"label\": 1}\n";
  struct Case {
    std::string bad_line, expected;
  };
  std::vector<Case> cases = {
      {"{\"text\": \"x\", \"label\": 1", "invalid JSON"},
      {"not json", "invalid JSON"},
      {"[1, 2]", "expected a JSON object, got array"},
      {"{\"label\": 1}", "missing field \"text\""},
      {"{\"text\": \"x\"}", "missing field \"label\""},
      {"{\"text\": 5, \"label\": 1}", "field \"text\" must be a string, got number"},
      {"{\"text\": \"x\", \"label\": 1.5}", "field \"label\" must be a string or an integer, got a non-integer number"},
      {"{\"text\": \"x\", \"label\": true}", "field \"label\" must be a string or an integer, got boolean"},
      {"{\"text\": \"x\", \"label\": null}", "field \"label\" must be a string or an integer, got null"},
      {"{\"text\": \"\", \"label\": 1}", "empty \"text\""},
      {"{\"text\": \"x\", \"label\": \"\"}", "empty \"label\""},
      {"{\"text\": \"\xFF\", \"label\": 1}", "invalid UTF-8"},
  };
  int i = 0;
  for (const Case& c : cases) {
    // The bad line is line 3.
    auto p = file("bad" + std::to_string(i++) + ".jsonl", ok + ok + c.bad_line + "\n" + ok);
    std::string msg = error_of([&] { read_dataset(p); });
    EXPECT_THAT(msg, HasSubstr(p + ":3: " + c.expected)) << c.bad_line;
  }
  auto p = file("blank.jsonl", ok + "\n" + ok);
  EXPECT_THAT(error_of([&] { read_dataset(p); }), HasSubstr(p + ":2: blank line"));
}

TEST_F(DatasetTest, CheckLabels) {
  auto p = file("a.tsv", "a\t0\nb\t1\nc\t2\n");
  auto ex = read_dataset(p);
  EXPECT_NO_THROW(sptrain::check_labels(ex, std::vector<std::string>{"0", "1", "2"}, p));
  std::string msg = error_of([&] { sptrain::check_labels(ex, std::vector<std::string>{"0", "1"}, p); });
  EXPECT_THAT(msg, HasSubstr(p + ":3: label '2'"));
  EXPECT_THAT(msg, HasSubstr("'0', '1'"));
  std::vector<std::pair<std::string, std::string>> verbalizer = {{"0", " negative"}, {"2", " neutral"}};
  msg = error_of([&] { sptrain::check_labels(ex, verbalizer, p); });
  EXPECT_THAT(msg, HasSubstr(p + ":2: label '1'"));
  EXPECT_THAT(msg, HasSubstr("'0', '2'"));
}

// A line is at most kMaxLineBytes: a file without newlines is not read whole.
TEST_F(DatasetTest, OverlongLineIsAnErrorNamingTheLine) {
  const std::string ok(sptrain::kMaxLineBytes - 3, 'a');  // with "\t1\r": exactly the limit
  const std::string too_long(sptrain::kMaxLineBytes + 1, 'b');
  auto p = file("long.tsv", ok + "\t1\r\n" + too_long + "\t0\n");
  EXPECT_THAT(error_of([&] { read_dataset(p); }),
              HasSubstr(p + ":2: line longer than 1048576 bytes"));
  auto q = file("long.jsonl", "{\"text\": \"" + too_long + "\", \"label\": 1}\n");
  EXPECT_THAT(error_of([&] { read_dataset(q); }), HasSubstr(q + ":1: line longer than"));
  EXPECT_EQ(read_dataset(file("ok.tsv", ok + "\t1")).front().text.size(), ok.size());
}

TEST(DatasetDevice, EndlessInputStopsAtTheLineLimit) {
  EXPECT_THAT(error_of([] { read_dataset("/dev/zero", "tsv"); }),
              HasSubstr("/dev/zero:1: line longer than 1048576 bytes"));
}

TEST(Sst2, RealSplitsLoad) {
  const std::string dir = std::string(SPTRAIN_SOURCE_DIR) + "/data/sst2/";
  auto dev = read_dataset(dir + "dev.tsv");
  auto train = read_dataset(dir + "train.tsv");
  EXPECT_EQ(dev.size(), 872u);
  EXPECT_EQ(train.size(), 6920u);
  EXPECT_NO_THROW(sptrain::check_labels(dev, std::vector<std::string>{"0", "1"}, dir + "dev.tsv"));
  EXPECT_NO_THROW(sptrain::check_labels(train, std::vector<std::string>{"0", "1"}, dir + "train.tsv"));
  EXPECT_EQ(dev.front().text, "one long string of cliches");
  EXPECT_EQ(dev.front().label, "0");
  EXPECT_EQ(dev.back().line, 872);
  EXPECT_EQ(dev.back().label, "1");
  // Both labels occur (train: 3,310 negative, 3,610 positive).
  size_t pos = 0;
  for (const Example& e : train) pos += e.label == "1";
  EXPECT_EQ(pos, 3610u);
}

}  // namespace
