"""Improved precision/recall: known configurations and a brute-force reference."""
import numpy as np
import pytest

from fsq.evaluators.precision_recall import manifold_radii, precision_recall


def _brute_force(real, fake, k):
  """Full-matrix version of the ADM suite's ManifoldEstimator."""
  d = lambda a, b: ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
  radii_real = np.sort(d(real, real), axis=1)[:, k]
  radii_fake = np.sort(d(fake, fake), axis=1)[:, k]
  d_rf = d(real, fake)
  precision = (d_rf <= radii_real[:, None]).any(axis=0).mean()
  recall = (d_rf <= radii_fake[None, :]).any(axis=1).mean()
  return radii_real, precision, recall


def test_identical_clouds():
  x = np.random.default_rng(0).normal(size=(50, 16))
  assert precision_recall(x, x) == (1.0, 1.0)


def test_disjoint_far_apart_clouds():
  rng = np.random.default_rng(1)
  real, fake = rng.normal(size=(40, 8)), rng.normal(size=(30, 8)) + 100.0
  assert precision_recall(real, fake) == (0.0, 0.0)


def test_partial_overlap():
  # real = A + B, fake = A + C with A, B, C far apart: the 30 fake points of A are in the real
  # manifold (precision 30/50), the 30 real points of A in the fake one (recall 30/40).
  rng = np.random.default_rng(2)
  a, b, c = (rng.normal(size=(n, 8)) + offset for n, offset in ((30, 0), (10, 100), (20, -100)))
  precision, recall = precision_recall(np.concatenate([a, b]), np.concatenate([a, c]))
  assert (precision, recall) == (pytest.approx(0.6), pytest.approx(0.75))


def test_hand_computed_line_k1():
  # Real {0, 1, 3}: squared radii (1st neighbour) 1, 1, 4. Fake {0.5, 2.5, 10}: 4, 4, 56.25.
  # 0.5 and 2.5 lie in real balls, 10 does not; every real point lies in a fake ball.
  real, fake = np.array([[0.0], [1.0], [3.0]]), np.array([[0.5], [2.5], [10.0]])
  np.testing.assert_allclose(manifold_radii(real, k=1), [1, 1, 4])
  np.testing.assert_allclose(manifold_radii(fake, k=1), [4, 4, 56.25])
  precision, recall = precision_recall(real, fake, k=1)
  assert (precision, recall) == (pytest.approx(2 / 3), 1.0)


@pytest.mark.parametrize("block_size", [7, 1000])
def test_blocked_matches_brute_force(block_size):
  rng = np.random.default_rng(3)
  real = rng.normal(size=(61, 5))
  fake = rng.normal(size=(45, 5)) * 1.3 + 0.4
  radii_real, precision, recall = _brute_force(real, fake, k=3)
  np.testing.assert_allclose(manifold_radii(real, block_size=block_size), radii_real, rtol=1e-4)
  got = precision_recall(real, fake, block_size=block_size)
  assert got == (pytest.approx(precision), pytest.approx(recall))
  assert 0 < got[0] < 1 and 0 < got[1] < 1


def test_too_few_points():
  with pytest.raises(ValueError, match="more than 3 points"):
    manifold_radii(np.zeros((3, 2)))
