"""Monocular depth as UViM predicts it: classification over uniform depth bins."""
from __future__ import annotations

from collections.abc import Iterable

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

from fsq.evaluators.depth import DepthMetrics
from fsq.images import resize_nearest, to_model_range


def colour_depth(depth_bhw: np.ndarray, max_depth: float) -> np.ndarray:
  """(B, H, W) metres -> uint8 (B, H, W, 3) in the viridis colour map, near dark; 0 black."""
  rgb = matplotlib.colormaps["viridis"](np.clip(np.asarray(depth_bhw) / max_depth, 0, 1))[..., :3]
  return np.where(np.asarray(depth_bhw)[..., None] > 0, np.round(rgb * 255), 0).astype(np.uint8)


class Depth:
  """Depth in `num_bins` uniform bins over [min_depth, max_depth] metres (UViM, arXiv
  2205.10337; the FSQ paper's NYU Depth v2 runs, arXiv 2309.15505, Sec. 4).

  The oracle embeds the depth map scaled to [-1, 1] (one channel) and predicts bin logits;
  the loss is the per-pixel softmax cross-entropy over the pixels with a depth signal (depth
  > min_depth, the others are masked out), averaged per image; the prediction is the centre
  of the argmax bin. Metrics: fsq.evaluators.depth (RMSE, abs-rel, log10, delta1..3, per image
  and averaged) against `depth`, or, where the batch has it, against `depth_native` (NYU's
  Eigen crop at the sensor's resolution) with the prediction resized to it nearest-neighbour,
  as UViM's evaluator does.
  """
  name = "depth"

  def __init__(self, num_bins: int = 256, min_depth: float = 1e-3, max_depth: float = 10.0):
    self.num_bins, self.min_depth, self.max_depth = num_bins, min_depth, max_depth
    self.outputs = {"depth": num_bins}

  def _bins(self, depth_bhw: jax.Array) -> jax.Array:
    scaled = (depth_bhw - self.min_depth) / (self.max_depth - self.min_depth)
    return jnp.clip(jnp.floor(scaled * self.num_bins), 0, self.num_bins - 1).astype(jnp.int32)

  def targets(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    depth = jnp.clip(batch["depth"] / self.max_depth, 0.0, 1.0) * 2.0 - 1.0
    return {"depth": depth[..., None]}

  def context(self, batch: dict[str, jax.Array]) -> jax.Array:
    return to_model_range(batch["image"])

  def loss(self, outputs: dict[str, jax.Array], batch: dict[str, jax.Array]):
    valid = (batch["depth"] > self.min_depth).astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs["depth"],
                                                         self._bins(batch["depth"]))
    per_image = jnp.sum(ce * valid, axis=(1, 2)) / jnp.maximum(jnp.sum(valid, axis=(1, 2)), 1.0)
    accuracy = jnp.sum((jnp.argmax(outputs["depth"], -1) == self._bins(batch["depth"]))
                       * valid, axis=(1, 2)) / jnp.maximum(jnp.sum(valid, axis=(1, 2)), 1.0)
    return per_image, {"bin_accuracy": accuracy}

  def bin_centres(self) -> jax.Array:
    width = (self.max_depth - self.min_depth) / self.num_bins
    return self.min_depth + (jnp.arange(self.num_bins) + 0.5) * width

  def predict(self, outputs: dict[str, jax.Array]) -> jax.Array:
    """(B, H, W) metres: the centre of each pixel's most likely bin."""
    return self.bin_centres()[jnp.argmax(outputs["depth"], axis=-1)]

  def metrics(self) -> "_Metrics":
    return _Metrics(DepthMetrics(min_depth=self.min_depth, max_depth=self.max_depth))

  def show(self, prediction: np.ndarray) -> np.ndarray:
    return colour_depth(prediction, self.max_depth)

  def show_target(self, batch: dict[str, np.ndarray]) -> np.ndarray:
    return colour_depth(batch["depth"], self.max_depth)

  def baseline_fit(self, batches: Iterable[dict[str, np.ndarray]]) -> np.ndarray:
    """The per-pixel mean depth (over pixels with a signal) of the training batches."""
    total, count = 0.0, 0.0
    for batch in batches:
      mask = batch["mask"][:, None, None]
      valid = (batch["depth"] > self.min_depth) & mask
      total = total + np.sum(np.where(valid, batch["depth"], 0.0), axis=0)
      count = count + np.sum(valid, axis=0)
    return (total / np.maximum(count, 1)).astype(np.float32)

  def baseline_predict(self, fitted: np.ndarray, batch: dict[str, np.ndarray]) -> np.ndarray:
    return np.broadcast_to(fitted, np.shape(batch["depth"]))


class _Metrics:
  """DepthMetrics over the real (unmasked) examples."""

  def __init__(self, depth_metrics: DepthMetrics):
    self.depth_metrics = depth_metrics

  def update(self, prediction: np.ndarray, batch: dict[str, np.ndarray], mask: np.ndarray):
    if mask.any():
      truth = batch.get("depth_native", batch["depth"])[mask]
      self.depth_metrics.update(resize_nearest(np.asarray(prediction)[mask], truth.shape[1:]),
                                truth)

  def result(self) -> dict[str, float]:
    return self.depth_metrics.result()
