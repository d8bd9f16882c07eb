"""Monocular depth metrics (NYU Depth v2 protocol, as UViM evaluates it).

Each metric is computed per image over its valid pixels (ground truth strictly inside
(min_depth, max_depth), and inside the Eigen crop when asked), then averaged over images.
Predictions are clipped to [min_depth, max_depth] first, as the reference evaluators do
(AdaBins, BTS, GLPDepth); UViM's predictions lie in that range already.
"""
from __future__ import annotations

import numpy as np

from fsq.data.tfds_sources import EIGEN_CROP
NYU_SHAPE = (480, 640)
METRICS = ("rmse", "abs_rel", "log10", "delta1", "delta2", "delta3")


def depth_metrics_per_image(pred_bhw, gt_bhw, *, min_depth: float = 1e-3,
                            max_depth: float = 10.0, eigen_crop: bool = False
                            ) -> dict[str, np.ndarray]:
  """Per-image metrics, each (B,) float64; NaN for an image without valid pixels.

  Args:
    pred_bhw: predicted depth in metres, (B, H, W) (or (H, W) for one image).
    gt_bhw: ground-truth depth, same shape; pixels outside (min_depth, max_depth) are invalid.
    min_depth: smallest valid depth (exclusive).
    max_depth: largest valid depth (exclusive).
    eigen_crop: evaluate only the Eigen crop; needs full 480x640 maps.
  """
  pred = np.asarray(pred_bhw, np.float64)
  gt = np.asarray(gt_bhw, np.float64)
  if pred.shape != gt.shape or pred.ndim not in (2, 3):
    raise ValueError(f"pred and gt must both be (B, H, W) or (H, W); got {pred.shape}, {gt.shape}.")
  pred, gt = pred.reshape((-1,) + pred.shape[-2:]), gt.reshape((-1,) + gt.shape[-2:])
  valid = (gt > min_depth) & (gt < max_depth)
  if eigen_crop:
    if gt.shape[1:] != NYU_SHAPE:
      raise ValueError(f"the Eigen crop is defined on {NYU_SHAPE} maps, got {gt.shape[1:]}.")
    crop = np.zeros(NYU_SHAPE, bool)
    crop[EIGEN_CROP] = True
    valid &= crop
  pred = np.clip(pred, min_depth, max_depth)
  gt = np.where(valid, gt, 1.0)  # Any positive value: invalid pixels are masked out below.
  count = valid.sum(axis=(1, 2))

  def mean(per_pixel):
    with np.errstate(invalid="ignore", divide="ignore"):
      return np.where(valid, per_pixel, 0.0).sum(axis=(1, 2)) / count

  ratio = np.maximum(gt / pred, pred / gt)
  return {
      "rmse": np.sqrt(mean((gt - pred) ** 2)),
      "abs_rel": mean(np.abs(gt - pred) / gt),
      "log10": mean(np.abs(np.log10(gt) - np.log10(pred))),
      **{f"delta{k}": mean(ratio < 1.25**k) for k in (1, 2, 3)},
  }


class DepthMetrics:
  """Accumulates per-image depth metrics over batches; `result()` averages over images.

  Images without a single valid pixel are left out of the average.
  """

  def __init__(self, *, min_depth: float = 1e-3, max_depth: float = 10.0,
               eigen_crop: bool = False):
    self.options = dict(min_depth=min_depth, max_depth=max_depth, eigen_crop=eigen_crop)
    self.per_image: dict[str, list[np.ndarray]] = {name: [] for name in METRICS}

  def update(self, pred_bhw, gt_bhw) -> None:
    for name, values in depth_metrics_per_image(pred_bhw, gt_bhw, **self.options).items():
      self.per_image[name].append(values)

  def result(self) -> dict[str, float]:
    values = {name: np.concatenate(v) if v else np.zeros(0) for name, v in self.per_image.items()}
    evaluated = ~np.isnan(values["rmse"])
    if not evaluated.any():
      raise ValueError("no image with valid ground-truth pixels was evaluated.")
    return {name: float(v[evaluated].mean()) for name, v in values.items()}
