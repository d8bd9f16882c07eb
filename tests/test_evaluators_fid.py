"""Fréchet distance, streamed statistics, the statistics cache and colourisation FID."""
import numpy as np
import pytest
import scipy.linalg

from fsq.evaluators import fid


def _random_cov(rng, d, rank=None):
  a = rng.normal(size=(d, rank or d))
  return a @ a.T / d + (0 if rank else 0.1 * np.eye(d))


def test_diagonal_gaussians_match_closed_form():
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
  a, b = rng.uniform(0.1, 3, 16), rng.uniform(0.1, 3, 16)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected,
                                                                                   rel=1e-12)


def test_scaled_covariance_matches_closed_form():
  # S2 = c S1 commutes with S1: tr(S1 + S2 - 2 (S1 S2)^1/2) = tr(S1) (1 - sqrt(c))^2.
  rng = np.random.default_rng(1)
  sigma = _random_cov(rng, 32)
  mu = rng.normal(size=32)
  expected = np.trace(sigma) * (1 - np.sqrt(2.5)) ** 2
  assert fid.frechet_distance(mu, sigma, mu, 2.5 * sigma) == pytest.approx(expected, rel=1e-10)


def test_general_covariances_match_sqrtm_formula():
  rng = np.random.default_rng(2)
  mu1, mu2 = rng.normal(size=24), rng.normal(size=24)
  s1, s2 = _random_cov(rng, 24), _random_cov(rng, 24)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
  assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
  assert fid.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-9)


def test_rank_deficient_identical_statistics_give_zero():
  # Fewer samples than dimensions: a singular covariance, where sqrtm goes complex. The square
  # root of round-off in the null space (~1e-16) bounds the accuracy to ~1e-8 per dimension.
  rng = np.random.default_rng(3)
  sigma, mu = _random_cov(rng, 64, rank=10), rng.normal(size=64)
  assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-6 * np.trace(sigma)


def test_non_psd_covariance_is_rejected():
  with pytest.raises(ValueError, match="positive semi-definite"):
    fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -1.0]))


def test_shape_mismatch_is_rejected():
  with pytest.raises(ValueError, match="differ in shape"):
    fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_streamed_statistics_match_numpy():
  rng = np.random.default_rng(4)
  x = rng.normal(loc=3.0, size=(101, 8)).astype(np.float32)
  stats = fid.feature_statistics([x[:7], x[7:50], x[50:]])
  np.testing.assert_allclose(stats.mu, x.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(stats.sigma, np.cov(x.astype(np.float64), rowvar=False),
                             rtol=1e-10, atol=1e-12)
  assert stats.mu.dtype == stats.sigma.dtype == np.float64


def test_statistics_need_two_vectors():
  with pytest.raises(ValueError, match="at least 2"):
    fid.feature_statistics([np.zeros((1, 4))])


def test_reference_statistics_are_computed_once_then_loaded(tmp_path):
  path = str(tmp_path / "stats" / "toy_train.npz")
  calls = []

  def compute():
    calls.append(1)
    return fid.Statistics(np.arange(3.0), np.eye(3))

  first = fid.load_or_compute_statistics(path, compute)
  second = fid.load_or_compute_statistics(path, compute)
  assert len(calls) == 1
  np.testing.assert_array_equal(first.mu, second.mu)
  np.testing.assert_array_equal(first.sigma, second.sigma)
  with np.load(path) as npz:
    assert sorted(npz.files) == ["mu", "sigma"]


def test_colorization_fid_of_shifted_images():
  rng = np.random.default_rng(5)
  images = [rng.uniform(-1, 1, size=(40, 2, 2, 3)) for _ in range(3)]
  flatten = lambda x: x.reshape(len(x), -1)
  assert abs(fid.colorization_fid(flatten, images, images)) < 1e-9
  # Adding 0.5 to every pixel moves the mean by 0.5 in each of 12 dimensions only.
  shifted = [x + 0.5 for x in images]
  assert fid.colorization_fid(flatten, shifted, images) == pytest.approx(12 * 0.25, rel=1e-9)
