"""A port of sptrain's training-batch sampler, so the PEFT side can run the
same batches when no `sptrain bench --batches-out` file is at hand.

Ported exactly from src/train/sampler.cpp (DataSampler) and
include/sptrain/model/random_model.hpp (Rng: SplitMix64, below(n) = next() % n).
All arithmetic is modulo 2**64, as C++'s uint64_t. check_sampler.py compares
it with the C++ output.
"""

MASK = (1 << 64) - 1


class Rng:
    """SplitMix64, as sptrain::Rng."""

    def __init__(self, seed: int):
        self.state = seed & MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform integer in [0, n) (modulo bias included, as in C++)."""
        return self.next() % n if n else 0


class DataSampler:
    """A fresh permutation per epoch, drawn from the seed and the epoch alone."""

    def __init__(self, size: int, seed: int, shuffle: bool = True):
        if size <= 0:
            raise ValueError("the training set is empty")
        self.size = size
        self.seed = seed & MASK
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0
        self._make_order()

    def _make_order(self):
        self.order = list(range(self.size))
        if not self.shuffle:
            return
        # Fisher-Yates, exactly as the C++ loop.
        rng = Rng((self.seed * 0x9E3779B97F4A7C15 + self.epoch + 1) & MASK)
        order = self.order
        for i in range(self.size - 1, 0, -1):
            j = rng.below(i + 1)
            order[i], order[j] = order[j], order[i]

    def next(self, count: int) -> list:
        out = []
        while len(out) < count:
            if self.position == self.size:
                self.epoch += 1
                self.position = 0
                self._make_order()
            out.append(self.order[self.position])
            self.position += 1
        return out


def batches(size: int, seed: int, batch_size: int, steps: int, shuffle: bool = True):
    """The first `steps` global batches, as `sptrain bench --batches-out` writes
    them: [{"step": 1, "examples": [...]}, ...]."""
    s = DataSampler(size, seed, shuffle)
    return [{"step": i + 1, "examples": s.next(batch_size)} for i in range(steps)]
