"""Panoptic segmentation as UViM predicts it: a semantic map and canonical segment ids."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fsq.evaluators.panoptic import PanopticQuality
from fsq.images import to_model_range


def colour_segments(ids_bhw: np.ndarray) -> np.ndarray:
  """(B, H, W) integer ids -> uint8 (B, H, W, 3), a fixed bright colour per id, 0 black."""
  palette = np.random.default_rng(0).integers(64, 256, (max(int(np.max(ids_bhw)) + 1, 1), 3))
  palette[0] = 0
  return palette[np.asarray(ids_bhw)].astype(np.uint8)


class Panoptic:
  """UViM's panoptic task (arXiv 2205.10337; arXiv 2309.15505, Sec. 4): the oracle embeds and
  predicts two maps, the semantic class (`num_classes` including void 0) and the canonical
  segment id (`max_segments` including 0 = no segment; fsq/data/segments.py), each as one-hot
  inputs and softmax logits. Loss: the sum of the two per-pixel cross-entropies, averaged per
  image. Prediction: (B, H, W, 2) [class, segment]: each pixel's most likely segment, and
  each segment the class most of its pixels predict. Metrics: COCO panoptic quality (PQ, SQ,
  RQ over all, thing and stuff classes; fsq.evaluators.panoptic) against (semantic,
  segments)."""
  name = "panoptic"

  def __init__(self, num_classes: int, max_segments: int, thing_classes: Sequence[int]):
    self.num_classes, self.max_segments = num_classes, max_segments
    self.thing_classes = tuple(thing_classes)
    self.outputs = {"semantics": num_classes, "segments": max_segments}

  def _labels(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return {"semantics": batch["semantic"],
            "segments": jnp.minimum(batch["segments"], self.max_segments - 1)}

  def targets(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return {k: jax.nn.one_hot(v, self.outputs[k]) for k, v in self._labels(batch).items()}

  def context(self, batch: dict[str, jax.Array]) -> jax.Array:
    return to_model_range(batch["image"])

  def loss(self, outputs: dict[str, jax.Array], batch: dict[str, jax.Array]):
    per_map = {k: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(outputs[k], v),
                           axis=(1, 2))
               for k, v in self._labels(batch).items()}
    return per_map["semantics"] + per_map["segments"], {
        f"{k}_loss": v for k, v in per_map.items()}

  def predict(self, outputs: dict[str, jax.Array]) -> jax.Array:
    """(B, H, W, 2) int32 [class, segment]."""
    segment = jnp.argmax(outputs["segments"], axis=-1)
    semantic = jnp.argmax(outputs["semantics"], axis=-1)
    # Majority vote: per image, the (segment, class) pixel counts, then each segment's class.
    votes = jnp.einsum("bhws,bhwc->bsc", jax.nn.one_hot(segment, self.max_segments),
                       jax.nn.one_hot(semantic, self.num_classes))
    segment_class = jnp.argmax(votes, axis=-1)  # (B, S)
    semantic = jnp.take_along_axis(segment_class, segment.reshape(segment.shape[0], -1),
                                   axis=1).reshape(segment.shape)
    semantic = jnp.where(segment == 0, 0, semantic)  # No segment: void.
    return jnp.stack([semantic, segment], axis=-1).astype(jnp.int32)

  def metrics(self) -> "_Metrics":
    return _Metrics(PanopticQuality(self.thing_classes, void_label=0))

  def show(self, prediction: np.ndarray) -> np.ndarray:
    return colour_segments(np.asarray(prediction)[..., 1])

  def show_target(self, batch: dict[str, np.ndarray]) -> np.ndarray:
    return colour_segments(batch["segments"])

  def baseline_fit(self, batches: Iterable[dict[str, np.ndarray]]) -> np.ndarray:
    """The most frequent class of each pixel over the training batches."""
    counts = 0
    for batch in batches:
      onehot = np.eye(self.num_classes, dtype=np.int64)[batch["semantic"][batch["mask"]]]
      counts = counts + onehot.sum(axis=0)
    return np.argmax(counts, axis=-1).astype(np.int32)

  def baseline_predict(self, fitted: np.ndarray, batch: dict[str, np.ndarray]) -> np.ndarray:
    """Every pixel its most frequent class, one segment per class."""
    semantic = np.broadcast_to(fitted, np.shape(batch["semantic"]))
    return np.stack([semantic, semantic], axis=-1).astype(np.int32)


class _Metrics:
  """PanopticQuality over the real (unmasked) examples, against (semantic, segments)."""

  def __init__(self, pq: PanopticQuality):
    self.pq = pq

  def update(self, prediction: np.ndarray, batch: dict[str, np.ndarray], mask: np.ndarray):
    if mask.any():
      truth = np.stack([batch["semantic"], batch["segments"]], axis=-1)[mask]
      self.pq.update(np.asarray(prediction)[mask], truth)

  def result(self) -> dict[str, float]:
    return self.pq.result()
