#include "sptrain/train/sampler.hpp"

#include <numeric>
#include <utility>

#include "sptrain/core/error.hpp"
#include "sptrain/model/random_model.hpp"

namespace sptrain {

DataSampler::DataSampler(int64_t size, uint64_t seed, bool shuffle)
    : size_(size), seed_(seed), shuffle_(shuffle) {
  SPT_CHECK(size > 0, "the training set is empty");
  make_order();
}

void DataSampler::make_order() {
  order_.resize(size_t(size_));
  std::iota(order_.begin(), order_.end(), int64_t(0));
  if (!shuffle_) return;
  // Fisher-Yates with our own generator: the same order on every platform.
  Rng rng(seed_ * 0x9e3779b97f4a7c15ull + uint64_t(epoch_) + 1);
  for (int64_t i = size_ - 1; i > 0; --i)
    std::swap(order_[size_t(i)], order_[rng.below(uint64_t(i) + 1)]);
}

void DataSampler::next(int64_t count, std::vector<int64_t>& out) {
  out.clear();
  while (int64_t(out.size()) < count) {
    if (position_ == size_) {
      ++epoch_;
      position_ = 0;
      make_order();
    }
    out.push_back(order_[size_t(position_++)]);
  }
}

void DataSampler::seek(int64_t epoch, int64_t position) {
  SPT_CHECK(epoch >= 0 && position >= 0 && position <= size_, "checkpoint data position (",
            epoch, ", ", position, ") does not fit a training set of ", size_, " examples");
  epoch_ = epoch;
  position_ = position;
  make_order();
}

}  // namespace sptrain
