#include "sptrain/model/weight_loader.hpp"

#include <cmath>

namespace sptrain {

namespace {
// Fails on the first NaN or infinity of a block just read: such a weight makes
// every loss NaN, and a run would "succeed" with nothing learnt.
template <typename T>
void check_finite(const T* v, Range rows, Range cols, const std::string& path, const std::string& name) {
  const int64_t n = rows.count * cols.count;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]))
      fail(path, ": dataset '", name, "' holds ", double(v[i]), " at [", rows.begin + i / cols.count, ", ",
           cols.begin + i % cols.count, "]: weights must be finite (a damaged model?)");
}
}  // namespace

Buffer WeightLoader::allocate(Shape shape) {
  Buffer b = ctx_.alloc(shape);
  resident_bytes_ += int64_t(b.view().bytes());
  return b;
}

Buffer WeightLoader::read_vector(const std::string& name, Range cols) {
  const h5::DatasetInfo info = file_.info(name);
  SPT_CHECK(info.shape.rank == 1, file_.path(), ": dataset '", name, "' should be 1-D, is ",
            info.shape.to_string());
  Buffer b = allocate(Shape{cols.count});
  read_into(b.view().reshape(Shape{1, cols.count}), 0, name, Range{0, 1}, cols);
  return b;
}

Buffer WeightLoader::read_matrix(const std::string& name, Range rows, Range cols) {
  Buffer b = allocate(Shape{rows.count, cols.count});
  read_into(b, 0, name, rows, cols);
  return b;
}

void WeightLoader::read_into(const Tensor& dst, int64_t dst_row, const std::string& name,
                             Range rows, Range cols) {
  SPT_ASSERT(dst.cols() == cols.count && dst_row + rows.count <= dst.rows());
  const Tensor target = dst.slice_rows(dst_row, rows.count);
  const int64_t n = rows.count * cols.count;
  bytes_read_ += n * int64_t(dtype_size(ctx_.act));
  // The CPU back end computes in f32/f64: HDF5 converts straight into the buffer.
  if (target.device == Device::CPU && (ctx_.act == DType::F32 || ctx_.act == DType::F64)) {
    file_.read_block(name, rows.begin, rows.count, cols.begin, cols.count, ctx_.act, target.data);
    if (ctx_.act == DType::F32)
      check_finite(static_cast<const float*>(target.data), rows, cols, file_.path(), name);
    else
      check_finite(static_cast<const double*>(target.data), rows, cols, file_.path(), name);
    return;
  }
  // Otherwise read f32 on the host, round to the compute dtype, upload.
  staging_.resize(size_t(n) * 4);
  file_.read_block(name, rows.begin, rows.count, cols.begin, cols.count, DType::F32,
                   staging_.data());
  check_finite(reinterpret_cast<const float*>(staging_.data()), rows, cols, file_.path(), name);
  if (ctx_.act == DType::BF16) {
    auto* f = reinterpret_cast<const float*>(staging_.data());
    auto* h = reinterpret_cast<uint16_t*>(staging_.data());  // in place: writes trail reads
    for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(f[i]);
  } else {
    SPT_CHECK(ctx_.act == DType::F32, "weights in ", dtype_name(ctx_.act), " are not supported");
  }
  ctx_.backend.copy_from_host(target, staging_.data());
}

}  // namespace sptrain
