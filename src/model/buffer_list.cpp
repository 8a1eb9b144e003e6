#include "sptrain/model/buffer_list.hpp"

namespace sptrain {

DType ElemTypes::of(Elem e) const {
  switch (e) {
    case Elem::Act: return act;
    case Elem::Stat: return stat;
    case Elem::I32: return DType::I32;
    case Elem::I64: return DType::I64;
  }
  return act;
}

void allocate(Backend& backend, const ElemTypes& types, const BufferList& list) {
  for (const BufferSpec& b : list) *b.target = backend.allocate(types.of(b.elem), b.shape);
}

int64_t bytes(const BufferList& list, const ElemTypes& types) {
  int64_t n = 0;
  for (const BufferSpec& b : list) n += b.shape.numel() * int64_t(dtype_size(types.of(b.elem)));
  return n;
}

}  // namespace sptrain
