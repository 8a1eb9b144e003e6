#pragma once
// Collective communication within one group of ranks (tensor-, pipeline- or
// data-parallel). One interface, two implementations: MPI (CPU back end, and
// the bootstrap of NCCL) and NCCL (CUDA back end). Every byte this rank sends
// is counted under the group's kind.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "sptrain/core/tensor.hpp"

namespace sptrain {

enum class CommKind : uint8_t { Tensor = 0, Pipeline = 1, Data = 2 };
enum class ReduceOp : uint8_t { Sum, Max };

inline const char* comm_kind_name(CommKind k) {
  switch (k) {
    case CommKind::Tensor: return "tensor";
    case CommKind::Pipeline: return "pipeline";
    case CommKind::Data: return "data";
  }
  return "?";
}

// One figure per kind of traffic (bytes, seconds).
template <typename T>
struct PerKind {
  T tensor{}, pipeline{}, data{};
  T& operator[](CommKind k) { return k == CommKind::Tensor ? tensor : k == CommKind::Pipeline ? pipeline : data; }
  const T& operator[](CommKind k) const {
    return k == CommKind::Tensor ? tensor : k == CommKind::Pipeline ? pipeline : data;
  }
};
constexpr CommKind kCommKinds[] = {CommKind::Tensor, CommKind::Pipeline, CommKind::Data};

// Bytes sent by this rank, by kind. Collectives count their payload (the
// tensor's size) once per call, point-to-point counts what this rank sends,
// and a group of one rank counts nothing; see docs/parallelism.md.
// Seconds spent inside the calls are kept beside the bytes (wall time of
// the blocking call, waiting for peers included).
struct ByteCounter {
  std::array<uint64_t, 3> bytes{};
  std::array<double, 3> seconds{};
  void add(CommKind k, uint64_t n) { bytes[size_t(k)] += n; }
  uint64_t get(CommKind k) const { return bytes[size_t(k)]; }
  double time(CommKind k) const { return seconds[size_t(k)]; }
  // What was added since `before` (an earlier copy of this counter).
  PerKind<uint64_t> bytes_since(const ByteCounter& before) const {
    PerKind<uint64_t> d;
    for (CommKind k : kCommKinds) d[k] = get(k) - before.get(k);
    return d;
  }
  PerKind<double> seconds_since(const ByteCounter& before) const {
    PerKind<double> d;
    for (CommKind k : kCommKinds) d[k] = time(k) - before.time(k);
    return d;
  }
  void reset() {
    bytes = {};
    seconds = {};
  }
};

class Group {
 public:
  Group(CommKind kind, ByteCounter* counter) : kind_(kind), counter_(counter) {}
  virtual ~Group() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place over all ranks of the group.
  virtual void all_reduce(const Tensor& t, ReduceOp op) = 0;
  virtual void broadcast(const Tensor& t, int root) = 0;
  // out = the ranks' `in` tensors stacked along dim 0, rank order.
  virtual void all_gather(const Tensor& out, const Tensor& in) = 0;
  // Point-to-point, blocking: returns when `t` may be reused (send) or holds
  // the message (recv). Messages from one rank to another arrive in the order
  // they were sent (MPI and NCCL both guarantee it), so sender and receiver
  // must post them in the same order; docs/parallelism.md says how MpiGroup
  // catches a mismatch.
  virtual void send(const Tensor& t, int peer) = 0;
  virtual void recv(const Tensor& t, int peer) = 0;
  // Sends `send` to send_peer while receiving `recv` from recv_peer, as one
  // operation, so that neighbouring pipeline stages exchanging in opposite
  // directions can never deadlock. Either side is skipped with peer kNoPeer.
  static constexpr int kNoPeer = -1;
  virtual void send_recv(const Tensor& send, int send_peer, const Tensor& recv, int recv_peer) {
    (void)send, (void)send_peer, (void)recv, (void)recv_peer;
    fail("send_recv is not implemented for this group");
  }
  virtual void barrier() = 0;

  CommKind kind() const { return kind_; }

 protected:
  void count(uint64_t n) {
    if (counter_) counter_->add(kind_, n);
  }
  // Adds the lifetime of the returned object to this kind's seconds:
  // `auto timer = timed();` at the top of each communicating call.
  class Timer {
   public:
    explicit Timer(Group& g) : g_(g), start_(std::chrono::steady_clock::now()) {}
    ~Timer() {
      if (g_.counter_)
        g_.counter_->seconds[size_t(g_.kind_)] +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

   private:
    Group& g_;
    std::chrono::steady_clock::time_point start_;
  };
  Timer timed() { return Timer(*this); }

 private:
  CommKind kind_;
  ByteCounter* counter_;
};

// A group of one rank: every collective is the identity and nothing is sent.
class SoloGroup final : public Group {
 public:
  using Group::Group;
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce(const Tensor&, ReduceOp) override {}
  void broadcast(const Tensor&, int) override {}
  void all_gather(const Tensor& out, const Tensor& in) override;
  void send(const Tensor&, int) override { fail("send in a group of one rank"); }
  void recv(const Tensor&, int) override { fail("recv in a group of one rank"); }
  void send_recv(const Tensor&, int, const Tensor&, int) override;
  void barrier() override {}
};

}  // namespace sptrain
