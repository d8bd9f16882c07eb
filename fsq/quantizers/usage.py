"""Codebook usage statistics accumulated over many batches, devices and hosts."""
from __future__ import annotations

import numpy as np

from fsq.distributed import to_host

# Above this many codes the counts are kept sparse (only the codes seen), so usage works
# for FSQ codebooks far too large to materialise.
DENSE_LIMIT = 2**24


class CodebookUsage:
  """Per-code counts; usage = fraction of codes used at least once (arXiv 2309.15505, Sec. 4, MaskGIT).

  `update` takes integer indices of any shape (numpy, or a jax array sharded over the
  devices of every host); pass `valid` to drop padded rows.
  """

  def __init__(self, codebook_size: int, dense_limit: int = DENSE_LIMIT):
    if codebook_size < 1:
      raise ValueError(f"codebook_size must be >= 1, got {codebook_size}.")
    self.codebook_size = int(codebook_size)
    self.dense = self.codebook_size <= dense_limit
    self._counts = np.zeros(self.codebook_size, np.int64) if self.dense else None
    self._keys = np.zeros(0, np.int64)
    self._values = np.zeros(0, np.int64)

  def update(self, indices, valid=None) -> None:
    indices = to_host(indices).astype(np.int64)
    if valid is None:
      flat = indices.reshape(-1)
    else:  # valid's shape is a prefix of the indices' shape, e.g. (batch,).
      valid = to_host(valid).astype(bool)
      valid = valid.reshape(valid.shape + (1,) * (indices.ndim - valid.ndim))
      flat = indices[np.broadcast_to(valid, indices.shape)]
    if flat.size and (flat.min() < 0 or flat.max() >= self.codebook_size):
      raise ValueError(f"indices must lie in [0, {self.codebook_size}), got values in "
                       f"[{flat.min()}, {flat.max()}].")
    if self.dense:
      self._counts += np.bincount(flat, minlength=self.codebook_size)
      return
    new_keys, new_counts = np.unique(flat, return_counts=True)
    merged = np.concatenate([self._keys, new_keys])
    keys, inverse = np.unique(merged, return_inverse=True)
    values = np.bincount(inverse, weights=np.concatenate([self._values, new_counts]))
    self._keys, self._values = keys, values.astype(np.int64)

  @property
  def total(self) -> int:
    return int(self._counts.sum() if self.dense else self._values.sum())

  @property
  def num_used(self) -> int:
    return int(np.count_nonzero(self._counts) if self.dense else self._keys.size)

  def used(self) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the codes used at least once, their counts)."""
    if self.dense:
      keys = np.flatnonzero(self._counts)
      return keys, self._counts[keys]
    return self._keys, self._values

  def counts_of_used(self) -> np.ndarray:
    """Counts of the codes used at least once (order unspecified)."""
    return self.used()[1]

  def usage(self) -> float:
    """Fraction of the codebook used at least once, in [0, 1]."""
    return self.num_used / self.codebook_size

  def entropy_bits(self) -> float:
    """Entropy of the empirical code distribution, in bits (log2 codebook_size at best)."""
    counts = self.counts_of_used().astype(np.float64)
    if counts.size == 0:
      return 0.0
    p = counts / counts.sum()
    return float(-np.sum(p * np.log2(p)))

  def perplexity(self) -> float:
    """2^entropy: the number of equally used codes with the same entropy."""
    return float(2.0 ** self.entropy_bits())

  def summary(self) -> dict[str, float]:
    return {"usage": self.usage(), "perplexity": self.perplexity(),
            "entropy_bits": self.entropy_bits(), "num_used": float(self.num_used)}


def level_usage(usage: CodebookUsage, levels) -> dict[str, float]:
  """Per-channel level statistics of FSQ indices (first channel least significant).

  The diagnostic of iFSQ's "activation collapse" (arXiv 2601.17124): `level_usage` (fraction of
  the (channel, level) pairs used at all), `level_entropy` (mean over channels of the entropy
  of its levels / log2 L_i: 1 is uniform), `level_outer_ratio` (mean over channels of the mass
  on the two outermost levels / (2 / L_i): 1 is uniform, < 1 the outer levels are starved) and
  every channel's level fractions `level_mass/c{i}_l{j}` (level j = the j-th lowest value).
  """
  levels = np.asarray(levels, np.int64)
  if int(np.prod(levels)) != usage.codebook_size:
    raise ValueError(f"levels {levels.tolist()} make {int(np.prod(levels))} codes, but the "
                     f"usage counts {usage.codebook_size}.")
  keys, counts = usage.used()
  total = max(int(counts.sum()), 1)
  basis = np.cumprod(np.concatenate([[1], levels[:-1]]))
  out, used, entropy, outer = {}, 0, [], []
  for i, n in enumerate(levels):
    mass = np.bincount((keys // basis[i]) % n, weights=counts, minlength=n) / total
    used += int(np.count_nonzero(mass))
    p = mass[mass > 0]
    entropy.append(float(-np.sum(p * np.log2(p)) / np.log2(n)))
    outer.append(float((mass[0] + mass[-1]) / (2.0 / n)))
    out.update({f"level_mass/c{i}_l{j}": float(m) for j, m in enumerate(mass)})
  out.update(level_usage=used / float(levels.sum()), level_entropy=float(np.mean(entropy)),
             level_outer_ratio=float(np.mean(outer)))
  return out
