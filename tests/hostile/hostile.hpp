#pragma once
// Helpers for the regression tests of issue 19 ("hostile files", one test per
// defect): a tiny model and a prompt checkpoint for it, and edits that
// damage an sptrain HDF5 file the way a stranger's file could be damaged,
// then reseal it (write sptrain's checksum again), so that what is left to
// catch the damage is the reader's own checks, not the checksum block.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>

#include <functional>
#include <string>
#include <vector>

#include "../support/test_util.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/infer/predictor.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/random_model.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain::test {

// A llama model of width d_model (4 heads, 2 kv heads) with the byte tokenizer.
inline std::string write_hostile_model(const std::string& path, int d_model = 16) {
  ModelConfig c = tiny_config(Family::Llama);
  c.d_model = d_model;
  c.head_dim = d_model / c.n_heads;
  c.d_ffn = 2 * d_model;
  c.vocab_size = 256;
  c.max_positions = 128;
  const Tokenizer tok = Tokenizer::bytes_only();
  write_random_model(path, c, 5, 0.2, [&](h5::File& f) { tok.save(f); });
  return path;
}

// A classify checkpoint of 4 prompt rows for the model at model_path.
inline Checkpoint hostile_checkpoint(const std::string& model_path) {
  const ModelConfig m = read_model_config(h5::File::open_read(model_path));
  Checkpoint k;
  k.step = 3;
  k.prompt_rows = 4;
  k.prompt_cols = m.d_model;
  Rng rng(9);
  for (int64_t i = 0; i < k.prompt_rows * k.prompt_cols; ++i) k.prompt.push_back(float(0.3 * rng.normal()));
  k.optimizer_name = "adamw";
  k.config_yaml = "task:\n  max_length: 24\n";
  k.model_fingerprint = m.fingerprint;
  k.model_path = model_path;
  k.task_template = "Review: {text}\nSentiment:";
  k.labels = {{"0", "n"}, {"1", "p"}};
  return k;
}

// What `sptrain infer` does with a model and a prompt file before answering.
inline void load_for_infer(const std::string& model, const std::string& prompt) {
  std::vector<TaskPrompt> tasks;
  tasks.push_back(parse_task_prompt("t=" + prompt));
  Predictor predictor(model, std::move(tasks), PredictorOptions{1, 1});
}

// Changes an sptrain HDF5 file with the HDF5 C API, then reseals it.
inline void edit_and_reseal(const std::string& path, const std::function<void(hid_t)>& edit) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) fail(path, ": H5Fopen failed in the test");
  edit(f);
  if (H5Fclose(f) < 0) fail(path, ": H5Fclose failed in the test");
  h5::write_checksum(path);
}

inline void delete_root_attr(const std::string& path, const std::string& name) {
  edit_and_reseal(path, [&](hid_t f) {
    if (H5Adelete(f, name.c_str()) < 0) fail(path, ": cannot delete attribute ", name);
  });
}

// Replaces dataset `name` with one of the same shape holding int32 zeros.
inline void make_dataset_int32(const std::string& path, const std::string& name) {
  edit_and_reseal(path, [&](hid_t f) {
    const hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
    if (d < 0) fail(path, ": no dataset ", name);
    const hid_t space = H5Dget_space(d);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    H5Dclose(d);
    if (H5Ldelete(f, name.c_str(), H5P_DEFAULT) < 0) fail(path, ": cannot delete ", name);
    const hid_t nd = H5Dcreate2(f, name.c_str(), H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<int32_t> zeros(size_t(n), 0);
    if (nd < 0 || H5Dwrite(nd, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()) < 0)
      fail(path, ": cannot write ", name);
    H5Dclose(nd);
    H5Sclose(space);
  });
}

// Sets element `index` of a float dataset (any shape) to `value`.
inline void set_float_element(const std::string& path, const std::string& name, int64_t index, float value) {
  edit_and_reseal(path, [&](hid_t f) {
    const hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
    if (d < 0) fail(path, ": no dataset ", name);
    const hid_t space = H5Dget_space(d);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    std::vector<float> v(static_cast<size_t>(n));
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    v[size_t(index)] = value;
    if (H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
      fail(path, ": cannot write ", name);
    H5Sclose(space);
    H5Dclose(d);
  });
}

// Root attributes set through sptrain's writer (open_rw reseals on close).
template <typename T>
inline void set_root_attr(const std::string& path, const std::string& name, T value) {
  h5::File f = h5::File::open_rw(path);
  f.set_attr("/", name, value);
  f.close();
}

}  // namespace sptrain::test
