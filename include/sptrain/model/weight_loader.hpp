#pragma once
// Reads a rank's slice of each weight from the model file with hyperslab
// reads, straight into device buffers of the compute dtype. Counts the bytes
// it keeps resident so tests can check a rank holds only its share.
#include <string>
#include <vector>

#include "sptrain/io/h5.hpp"
#include "sptrain/model/context.hpp"

namespace sptrain {

class WeightLoader {
 public:
  WeightLoader(const h5::File& file, const ModelContext& ctx) : file_(file), ctx_(ctx) {}

  // The whole of a 1-D dataset, or rows x cols of a 2-D one, into a new buffer.
  Buffer read_vector(const std::string& name, Range cols);
  Buffer read_matrix(const std::string& name, Range rows, Range cols);
  // Rows x cols of a 2-D dataset into dst rows [dst_row, dst_row + rows.count)
  // (dst has cols.count columns): used to stack q, k and v into one matrix.
  void read_into(const Tensor& dst, int64_t dst_row, const std::string& name, Range rows,
                 Range cols);
  Buffer allocate(Shape shape);  // a weight buffer counted as resident

  const h5::File& file() const { return file_; }
  int64_t resident_bytes() const { return resident_bytes_; }
  int64_t bytes_read() const { return bytes_read_; }

 private:
  const h5::File& file_;
  const ModelContext& ctx_;
  std::vector<char> staging_;  // host bytes on their way to a device or converted dtype
  int64_t resident_bytes_ = 0;
  int64_t bytes_read_ = 0;
};

}  // namespace sptrain
