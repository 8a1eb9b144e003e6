#pragma once
// The buffers a part of the model allocates, listed once. The code allocates
// a list (allocate) and the memory planner adds the same list up (bytes, in
// plan/), so a plan of a rank's memory follows the code by construction
// (docs/plan.md).
#include <vector>

#include "sptrain/model/context.hpp"

namespace sptrain {

// A buffer's element type by role: the run's activation or statistic dtype
// (ModelContext::act and ::stat), or a fixed integer type.
enum class Elem : uint8_t { Act, Stat, I32, I64 };

struct BufferSpec {
  Buffer* target;  // where allocate() puts it
  Elem elem;
  Shape shape;
};
using BufferList = std::vector<BufferSpec>;

// The dtypes Elem::Act and Elem::Stat stand for in a run.
struct ElemTypes {
  DType act = DType::F32;
  DType stat = DType::F32;
  DType of(Elem e) const;
};

// Allocates every buffer of the list (zero-filled) into its target.
void allocate(Backend& backend, const ElemTypes& types, const BufferList& list);
inline void allocate(const ModelContext& ctx, const BufferList& list) {
  allocate(ctx.backend, ElemTypes{ctx.act, ctx.stat}, list);
}
// The bytes allocate() takes for the list.
int64_t bytes(const BufferList& list, const ElemTypes& types);

}  // namespace sptrain
