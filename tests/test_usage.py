"""Codebook usage, perplexity and entropy over batches; dense and sparse counts agree; FSQ's
per-channel level statistics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsq import FSQ, CodebookUsage
from fsq.quantizers.usage import level_usage


@pytest.mark.parametrize("dense_limit", [2**24, 1])
def test_usage_perplexity_entropy(dense_limit):
  usage = CodebookUsage(8, dense_limit=dense_limit)
  usage.update(np.array([0, 1, 1, 2]))
  usage.update(jnp.array([[3, 3], [3, 3]]))
  assert usage.total == 8 and usage.num_used == 4
  assert usage.usage() == 0.5
  p = np.array([1, 2, 1, 4]) / 8
  np.testing.assert_allclose(usage.entropy_bits(), -np.sum(p * np.log2(p)))
  np.testing.assert_allclose(usage.perplexity(), 2 ** -np.sum(p * np.log2(p)))


def test_uniform_usage_has_full_perplexity():
  usage = CodebookUsage(1000)
  usage.update(np.arange(1000).repeat(3))
  assert usage.usage() == 1.0
  np.testing.assert_allclose(usage.perplexity(), 1000, rtol=1e-9)


def test_valid_mask_drops_padding_rows():
  usage = CodebookUsage(16)
  usage.update(np.array([[1, 2], [5, 6], [9, 9]]), valid=np.array([1, 1, 0]))
  assert usage.num_used == 4 and usage.total == 4


def test_codebook_too_large_to_materialise():
  q = FSQ([8] * 10)  # 2^30 codes: counts stay sparse.
  usage = CodebookUsage(q.codebook_size)
  assert not usage.dense
  rng = np.random.default_rng(0)
  batches = [rng.integers(0, q.codebook_size, 50_000) for _ in range(3)]
  for batch in batches:
    usage.update(batch)
  everything = np.concatenate(batches)
  assert usage.num_used == len(np.unique(everything))
  assert usage.total == everything.size


def test_out_of_range_is_a_clear_error():
  with pytest.raises(ValueError, match=r"\[0, 4\)"):
    CodebookUsage(4).update(np.array([0, 4]))


@pytest.mark.parametrize("dense_limit", [2**24, 1])
def test_level_usage_matches_the_digits_of_fsq_codes(dense_limit):
  fsq = FSQ([8, 5, 3])
  z = jax.random.normal(jax.random.key(0), (2000, 3)) * jnp.array([0.5, 1.0, 3.0])
  codes, indices = fsq(z)
  usage = CodebookUsage(fsq.codebook_size, dense_limit=dense_limit)
  usage.update(indices)
  stats = level_usage(usage, fsq.levels)
  digits = np.asarray(fsq.codes_to_digits(codes))
  for i, n in enumerate(fsq.levels):
    expected = np.bincount(digits[:, i], minlength=n) / len(digits)
    got = [stats[f"level_mass/c{i}_l{j}"] for j in range(n)]
    np.testing.assert_allclose(got, expected, atol=1e-12)
  # The narrow first channel (scale 0.5 through tanh) starves its outer levels; the wide
  # third piles onto them.
  outer = [(stats[f"level_mass/c{i}_l0"] + stats[f"level_mass/c{i}_l{n - 1}"]) * n / 2
           for i, n in enumerate(fsq.levels)]
  assert outer[0] < 0.5 and outer[2] > 1.2
  np.testing.assert_allclose(stats["level_outer_ratio"], np.mean(outer))


def test_level_usage_of_every_code_once_is_uniform():
  usage = CodebookUsage(4 * 3)
  usage.update(np.arange(12))
  stats = level_usage(usage, [4, 3])
  assert stats["level_usage"] == 1.0
  np.testing.assert_allclose([stats["level_entropy"], stats["level_outer_ratio"]], [1.0, 1.0])
  with pytest.raises(ValueError, match="make 6 codes"):
    level_usage(usage, [3, 2])
