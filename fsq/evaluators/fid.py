"""Fréchet Inception Distance: streamed feature statistics, cached references, the distance.

Typical use (features from `inception.make_feature_fn`, images in [-1, 1]):

  features = make_feature_fn(load_variables())
  ref = load_or_compute_statistics("stats/imagenet256_train.npz",
                                   lambda: feature_statistics(map(features, real_batches)))
  fid = frechet_distance(*feature_statistics(map(features, sample_batches)), *ref)
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np


class Statistics(NamedTuple):
  """Mean (D,) and covariance (D, D) of feature vectors, float64."""
  mu: np.ndarray
  sigma: np.ndarray


class RunningStatistics:
  """Mean and covariance of a stream of feature batches, from float64 running sums.

  Only sum(x) and sum(x x^T) are kept, so 50k images never sit in memory at once.
  """

  def __init__(self):
    self.count = 0
    self.sum = None
    self.sum_outer = None

  def update(self, features_nd) -> None:
    f = np.asarray(features_nd, np.float64)
    if f.ndim != 2:
      raise ValueError(f"features must be (N, D), got shape {f.shape}.")
    if self.sum is None:
      self.sum = np.zeros(f.shape[1])
      self.sum_outer = np.zeros((f.shape[1], f.shape[1]))
    self.count += f.shape[0]
    self.sum += f.sum(axis=0)
    self.sum_outer += f.T @ f

  def result(self) -> Statistics:
    if self.count < 2:
      raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}.")
    mu = self.sum / self.count
    sigma = (self.sum_outer - self.count * np.outer(mu, mu)) / (self.count - 1)
    return Statistics(mu, sigma)


def feature_statistics(feature_batches: Iterable[np.ndarray]) -> Statistics:
  """Statistics of (N_i, D) feature batches, e.g. `map(feature_fn, image_batches)`."""
  stats = RunningStatistics()
  for features in feature_batches:
    stats.update(features)
  return stats.result()


def save_statistics(path: str, stats: Statistics) -> None:
  """Writes `mu` and `sigma` to an .npz (the keys of the ADM suite's reference batches)."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, mu=stats.mu, sigma=stats.sigma)
  os.replace(tmp, path)  # Never leave a half-written cache behind.


def load_statistics(path: str) -> Statistics:
  with np.load(path) as npz:
    return Statistics(npz["mu"].astype(np.float64), npz["sigma"].astype(np.float64))


def load_or_compute_statistics(path: str, compute: Callable[[], Statistics]) -> Statistics:
  """Reference statistics cached at `path` (one file per dataset and split)."""
  if os.path.exists(path):
    return load_statistics(path)
  stats = compute()
  save_statistics(path, stats)
  return stats


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
  # tr(sqrtm(S1 S2)) = sum(sqrt(eig(S1^1/2 S2 S1^1/2))): the product S1 S2 is similar to a
  # symmetric PSD matrix, so symmetric eigensolvers give its real, non-negative spectrum where
  # scipy's sqrtm of the non-symmetric product can return complex or NaN entries
  # (rank-deficient covariances, fewer samples than dimensions).
  w1, v1 = np.linalg.eigh(sigma1)
  sqrt_sigma1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
  m = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
  eigenvalues = np.linalg.eigvalsh((m + m.T) / 2)
  # The analogue of the usual "imaginary component" check: S1, S2 must be PSD up to round-off.
  tolerance = 1e-6 * max(np.abs(eigenvalues).max(), np.finfo(np.float64).tiny)
  if eigenvalues.min() < -tolerance:
    raise ValueError(f"covariances are not positive semi-definite: S1^1/2 S2 S1^1/2 has "
                     f"eigenvalue {eigenvalues.min():.3g} (largest {eigenvalues.max():.3g}).")
  return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2) between two Gaussians, in float64."""
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f"statistics differ in shape: {mu1.shape}/{sigma1.shape} vs "
                     f"{mu2.shape}/{sigma2.shape}.")
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
               - 2 * _trace_sqrt_product(sigma1, sigma2))


def colorization_fid(feature_fn: Callable[[np.ndarray], np.ndarray],
                     colorized_batches: Iterable[np.ndarray],
                     reference_batches: Iterable[np.ndarray]) -> float:
  """FID between colourised and real images (the paper's FID-5k: 5k of each).

  As in UViM's ColTran protocol, the real images are a different 5k of ImageNet validation
  than the ones colourised; both sets come in as batches of (N, H, W, 3) images in [-1, 1].
  """
  return frechet_distance(*feature_statistics(map(feature_fn, colorized_batches)),
                          *feature_statistics(map(feature_fn, reference_batches)))
