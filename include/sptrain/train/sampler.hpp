#pragma once
// Which examples each step trains on: a fresh permutation per epoch, drawn
// from the run's seed and the epoch number alone, so that a position
// (epoch, index) is all a checkpoint needs to continue exactly, and every
// rank draws the same global batches whatever the parallel layout.
#include <cstdint>
#include <vector>

namespace sptrain {

class DataSampler {
 public:
  DataSampler(int64_t size, uint64_t seed, bool shuffle);

  // The next `count` example indices, continuing into the next epoch when
  // this one runs out.
  void next(int64_t count, std::vector<int64_t>& out);

  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }
  void seek(int64_t epoch, int64_t position);

 private:
  void make_order();

  int64_t size_;
  uint64_t seed_;
  bool shuffle_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace sptrain
