"""Reconstruction evaluator: PSNR, MSE, codebook usage, and optionally FID and class consistency.

The stage provides `reconstruct(state, batch) -> (x_hat (B, H, W, 3) in [-1, 1], indices)`
(jitted; named by the `pred` option) and `codebook_size`; with an FSQ quantizer
(`stage.model.quantizer`), the per-channel level statistics of the codes too
(fsq.quantizers.usage.level_usage).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fsq.distributed import to_host
from fsq.evaluators import colour, networks
from fsq.evaluators.fid import RunningStatistics, frechet_distance
from fsq.images import image_grid, to_model_range, to_uint8
from fsq.quantizers.fsq import FSQQuantizer
from fsq.quantizers.usage import CodebookUsage, level_usage


def reconstruction_errors(x: jax.Array, x_hat: jax.Array) -> dict[str, jax.Array]:
  """Per-image MSE and PSNR (dB) on [0, 1] images, from images in [-1, 1]."""
  mse = jnp.mean(((jnp.clip(x_hat, -1.0, 1.0) - x) / 2.0) ** 2, axis=(1, 2, 3))
  return {"mse": mse, "psnr": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))}


class Evaluator:
  """Reconstructions of every real (unmasked) held-out example.

  Metrics: mse and psnr (per image, averaged), usage / perplexity / entropy over the whole
  split (fsq.quantizers.CodebookUsage); with a feature `network` ("scenes" | "inception",
  fsq/evaluators/networks.py), fid between the reconstructions and their originals and, for a
  network with a classifier (scenes), class_consistency: the fraction of reconstructions
  classified as their image's label (the ceiling of a Stage II model's class consistency on
  these tokens); luma_detail, chroma_detail and false_colour of the reconstructions against
  their originals (fsq/evaluators/colour.py). Image: 8 originals above their reconstructions.
  """

  def __init__(self, stage: Any, *, batch_size: int, seed: int, pred: str = "reconstruct",
               network: str = "", weights: str = ""):
    del batch_size, seed  # One pass over the given batches, no randomness.
    self.predict = getattr(stage, pred)
    self.errors = jax.jit(reconstruction_errors)
    self.codebook_size = stage.codebook_size
    quantizer = getattr(getattr(stage, "model", None), "quantizer", None)
    self.levels = quantizer.levels if isinstance(quantizer, FSQQuantizer) else None
    self.judge = networks.judge_fn(network, weights) if network else None

  def run(self, state: Any, batches: Iterable[dict[str, jax.Array]]
          ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    usage = CodebookUsage(self.codebook_size)
    sums, count, grid = {"mse": 0.0, "psnr": 0.0}, 0, None
    fid_stats = None if self.judge is None else (RunningStatistics(), RunningStatistics())
    detail = {"real": colour.DetailEnergy(), "reconstructed": colour.DetailEnergy()}
    for batch in batches:
      x_hat, indices = self.predict(state, batch)
      per_image = self.errors(to_model_range(batch["image"]), x_hat)
      mask, image, x_hat = to_host(batch["mask"]), to_host(batch["image"]), to_host(x_hat)
      for k, v in per_image.items():
        sums[k] += float(np.sum(to_host(v)[mask]))
      count += int(mask.sum())
      usage.update(indices, valid=batch["mask"])
      if mask.any():
        detail["real"].update(image[mask])
        detail["reconstructed"].update(to_uint8(x_hat[mask]))
      if self.judge is not None and mask.any():
        fid_stats[0].update(self.judge(np.asarray(to_model_range(image[mask])))[0])
        features, probs = self.judge(x_hat[mask])
        fid_stats[1].update(features)
        if probs is not None:
          predicted = np.argmax(probs, axis=-1)
          sums["class_consistency"] = sums.get("class_consistency", 0.0) + float(
              np.sum(predicted == to_host(batch["label"])[mask]))
      if grid is None:
        n = min(8, x_hat.shape[0])
        grid = image_grid([image[:n], to_uint8(x_hat[:n])])
    metrics = {k: v / count for k, v in sums.items()}
    metrics.update(usage.summary())
    metrics.update(detail["reconstructed"].relative_to(detail["real"]))
    if self.levels is not None:
      metrics.update(level_usage(usage, self.levels))
    if fid_stats is not None:
      real, reconstructed = (s.result() for s in fid_stats)
      metrics["fid"] = frechet_distance(*reconstructed, *real)
    return metrics, {"reconstructions": grid}
