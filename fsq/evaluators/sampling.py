"""Sampling evaluator: FID, precision/recall and class consistency of class-conditional samples.

The stage provides `sample_images(state, labels (N,), guidance, batch_size, seed) -> (N, H, W,
3) uint8` (named by the `pred` option) and `num_classes`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

from fsq.distributed import to_host
from fsq.evaluators import colour, networks
from fsq.evaluators.fid import Statistics, feature_statistics, frechet_distance
from fsq.evaluators.precision_recall import precision_recall
from fsq.images import image_grid


class Evaluator:
  """One sample per held-out label (up to `num_samples`) at guidance `guidance` and at each
  of `guidance_sweep`, judged in the features of `network` against those held-out images.

  Metrics: fid, precision and recall (k = 3), class_consistency for a network with a
  classifier (scenes), and luma_detail, chroma_detail and false_colour against the held-out
  images (fsq/evaluators/colour.py); values of the sweep get the suffix `_cfg{alpha}`.
  Image: a grid of `grid_per_class` samples of every class at `guidance`.
  """

  def __init__(self, stage: Any, *, batch_size: int, seed: int, network: str,
               weights: str = "", guidance: float = 0.0, guidance_sweep: tuple = (),
               num_samples: int = 50_000, grid_per_class: int = 8,
               pred: str = "sample_images"):
    self.sample = getattr(stage, pred)
    self.num_classes = stage.num_classes
    self.batch_size, self.seed = batch_size, seed
    self.judge = networks.judge_fn(network, weights)
    self.guidance, self.guidance_sweep = guidance, tuple(guidance_sweep)
    self.num_samples, self.grid_per_class = num_samples, grid_per_class

  def _metrics(self, state: Any, labels: np.ndarray, real_features: np.ndarray,
               real: Statistics, real_detail: colour.DetailEnergy, guidance: float
               ) -> dict[str, float]:
    images = self.sample(state, labels, guidance, self.batch_size, self.seed)
    features, probs = self.judge(images)
    metrics = {"fid": frechet_distance(*feature_statistics([features]), *real)}
    detail = colour.DetailEnergy()
    detail.update(images)
    metrics.update(detail.relative_to(real_detail))
    metrics["precision"], metrics["recall"] = precision_recall(real_features, features)
    if probs is not None:
      metrics["class_consistency"] = float(np.mean(np.argmax(probs, axis=-1) == labels))
    return metrics

  def run(self, state: Any, batches: Iterable[dict[str, jax.Array]]
          ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    labels, real_features, real_detail = [], [], colour.DetailEnergy()
    for batch in batches:
      if sum(map(len, labels)) >= self.num_samples:
        break
      mask = to_host(batch["mask"])
      labels.append(to_host(batch["label"])[mask])
      images = to_host(batch["image"])[mask]
      real_features.append(self.judge(images)[0])
      real_detail.update(images)
    labels = np.concatenate(labels)[:self.num_samples]
    real_features = np.concatenate(real_features)[:self.num_samples]
    real, metrics = feature_statistics([real_features]), {}
    for guidance in sorted({self.guidance, *self.guidance_sweep}):
      suffix = "" if guidance == self.guidance else f"_cfg{guidance:g}"
      for k, v in self._metrics(state, labels, real_features, real, real_detail,
                                guidance).items():
        metrics[f"{k}{suffix}"] = v
    grid_labels = np.repeat(np.arange(self.num_classes), self.grid_per_class)
    images = self.sample(state, grid_labels, self.guidance, len(grid_labels), self.seed)
    images = images.reshape(self.num_classes, self.grid_per_class, *images.shape[1:])
    return metrics, {"samples": image_grid(list(images))}
