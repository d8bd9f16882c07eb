"""Colourisation as UViM predicts it: RGB from the greyscale image, with an L2 loss."""
from __future__ import annotations

from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from fsq.data.image_ops import LUMA_WEIGHTS
from fsq.evaluators.reconstruction import reconstruction_errors
from fsq.images import to_model_range, to_uint8


def grey(image_uint8: jax.Array) -> jax.Array:
  """(B, H, W, 3) uint8 -> (B, H, W, 1) luma in [-1, 1] (the weights of fsq.data.rgb_to_grey)."""
  return to_model_range(image_uint8) @ jnp.asarray(LUMA_WEIGHTS)[:, None]


class Colorization:
  """The oracle embeds and predicts the RGB image in [-1, 1]; its context is the greyscale
  image. Loss: mean squared error per image; prediction: the output clipped to [-1, 1]
  (UViM, arXiv 2205.10337; arXiv 2309.15505, Sec. 4). Metrics: PSNR and MSE per image,
  averaged (the evaluator adds FID in a feature network's space)."""
  name = "colorization"
  outputs = {"color": 3}

  def targets(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return {"color": to_model_range(batch["image"])}

  def context(self, batch: dict[str, jax.Array]) -> jax.Array:
    return grey(batch["image"])

  def loss(self, outputs: dict[str, jax.Array], batch: dict[str, jax.Array]):
    error = (outputs["color"] - to_model_range(batch["image"])) ** 2
    return jnp.mean(error, axis=(1, 2, 3)), {}

  def predict(self, outputs: dict[str, jax.Array]) -> jax.Array:
    """(B, H, W, 3) RGB in [-1, 1]."""
    return jnp.clip(outputs["color"], -1.0, 1.0)

  def metrics(self) -> "_Metrics":
    return _Metrics()

  def show(self, prediction: np.ndarray) -> np.ndarray:
    return to_uint8(prediction)

  def show_target(self, batch: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(batch["image"])

  def baseline_fit(self, batches: Iterable[dict[str, np.ndarray]]) -> None:
    del batches  # The greyscale input itself needs no fitting.

  def baseline_predict(self, fitted: None, batch: dict[str, np.ndarray]) -> np.ndarray:
    """The greyscale input as RGB."""
    return np.repeat(np.asarray(grey(batch["image"])), 3, axis=-1)


class _Metrics:
  """PSNR (dB) and MSE on [0, 1] images, per real example, averaged."""

  def __init__(self):
    self.sums, self.count = {"psnr": 0.0, "mse": 0.0}, 0

  def update(self, prediction: np.ndarray, batch: dict[str, np.ndarray], mask: np.ndarray):
    errors = reconstruction_errors(to_model_range(batch["image"][mask]),
                                   jnp.asarray(prediction)[mask])
    for k in self.sums:
      self.sums[k] += float(jnp.sum(errors[k]))
    self.count += int(mask.sum())

  def result(self) -> dict[str, float]:
    return {k: v / self.count for k, v in self.sums.items()}
