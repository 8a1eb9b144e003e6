#pragma once
// Tensor: a non-owning view (pointer, dtype, device, shape). Buffer: the owning
// allocation behind a view, freed by its destructor. Ops take views; layers own
// Buffers. Row-major, dim 0 outermost.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "sptrain/core/dtype.hpp"
#include "sptrain/core/error.hpp"

namespace sptrain {

enum class Device : uint8_t { CPU, CUDA };

struct Shape {
  std::array<int64_t, 4> dims{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d) {
    SPT_ASSERT(d.size() <= 4);
    for (int64_t v : d) dims[size_t(rank++)] = v;
  }
  int64_t operator[](int i) const { return dims[size_t(i)]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[size_t(i)];
    return rank == 0 ? 0 : n;
  }
  // Product of all dims but the first: the length of one row.
  int64_t row_size() const {
    int64_t n = 1;
    for (int i = 1; i < rank; ++i) n *= dims[size_t(i)];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (rank != o.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (dims[size_t(i)] != o.dims[size_t(i)]) return false;
    return true;
  }
  std::string to_string() const {
    std::string s = "[";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[size_t(i)]);
    return s + "]";
  }
};

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  Shape shape;

  bool empty() const { return data == nullptr || shape.numel() == 0; }
  int64_t numel() const { return shape.numel(); }
  size_t bytes() const { return size_t(numel()) * dtype_size(dtype); }
  int64_t rows() const { return shape.rank ? shape[0] : 0; }
  int64_t cols() const { return shape.row_size(); }

  template <typename T>
  T* ptr() const {
    SPT_ASSERT(dtype == dtype_of<T>());
    return static_cast<T*>(data);
  }
  // Rows [begin, begin + count) along dim 0.
  Tensor slice_rows(int64_t begin, int64_t count) const {
    SPT_ASSERT(begin >= 0 && count >= 0 && begin + count <= rows());
    Tensor t = *this;
    t.data = static_cast<char*>(data) + size_t(begin * cols()) * dtype_size(dtype);
    t.shape.dims[0] = count;
    return t;
  }
  Tensor reshape(Shape s) const {
    SPT_ASSERT(s.numel() == numel());
    Tensor t = *this;
    t.shape = s;
    return t;
  }
};

// Owns device or host memory; frees it on destruction. Move-only.
class Buffer {
 public:
  using Deleter = void (*)(void*);
  Buffer() = default;
  Buffer(Tensor view, Deleter deleter) : view_(view), mem_(view.data, deleter) {}

  const Tensor& view() const { return view_; }
  operator const Tensor&() const { return view_; }  // NOLINT: a Buffer is usable wherever a view is
  bool empty() const { return view_.empty(); }
  template <typename T>
  T* ptr() const { return view_.ptr<T>(); }
  const Shape& shape() const { return view_.shape; }

 private:
  Tensor view_;
  std::unique_ptr<void, Deleter> mem_{nullptr, [](void*) {}};
};

}  // namespace sptrain
