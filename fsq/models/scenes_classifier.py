"""A small CNN judging procedural scenes: the domain feature network of the scenes evaluators.

Its penultimate features stand in for Inception's pool3 in a "scenes-FID" and in precision /
recall; its class head gives the class consistency of class-conditional samples
(fsq/evaluators/scenes_features.py). Trained by fsq/stages/classifier.py.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fsq.data.scenes import FIRST_THING, SHAPES

NUM_CLASSES = len(SHAPES)  # `label`: the shape of the object covering the most pixels.
MAX_OBJECTS = 4  # A scene shows 1-4 objects.


def scene_targets(batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """The heads' targets from a scenes batch (label (B,), semantic and instance (B, H, W)).

  class: the label, (B,) int32. count: number of visible objects minus one, (B,) int32 in
  [0, MAX_OBJECTS). presence: whether each shape is visible, (B, NUM_CLASSES) float32.
  """
  instance, semantic = batch["instance"], batch["semantic"]
  visible = jnp.stack([jnp.any(instance == k, axis=(1, 2))
                       for k in range(1, MAX_OBJECTS + 1)], axis=-1)
  presence = jnp.stack([jnp.any(semantic == FIRST_THING + k, axis=(1, 2))
                        for k in range(NUM_CLASSES)], axis=-1)
  count = jnp.clip(jnp.sum(visible, axis=-1) - 1, 0, MAX_OBJECTS - 1)
  return {"class": batch["label"].astype(jnp.int32), "count": count.astype(jnp.int32),
          "presence": presence.astype(jnp.float32)}


class ScenesClassifier(nn.Module):
  """Image (B, 64, 64, 3) in [-1, 1] -> features (B, feature_dim) and the heads' logits.

  A stride-2 conv3x3 stem, then per width a stride-2 conv3x3 and a conv3x3, each followed by
  GroupNorm and swish (64 px -> 32 -> 16 -> 8 -> 4 with the default widths); a global average
  pool; a dense feature layer (swish), read linearly by three heads: `class` (NUM_CLASSES-way
  softmax), `count` (visible objects 1..MAX_OBJECTS, softmax) and `presence` (one sigmoid per
  shape).
  """
  widths: Sequence[int] = (64, 128, 128)
  stem_width: int = 32
  feature_dim: int = 256
  groups: int = 8

  @nn.compact
  def __call__(self, x_bhwc: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    def conv_norm_act(h, features, strides=1):
      h = nn.Conv(features, (3, 3), strides=strides, use_bias=False)(h)
      return nn.swish(nn.GroupNorm(num_groups=min(self.groups, features))(h))

    h = conv_norm_act(x_bhwc, self.stem_width, strides=2)
    for width in self.widths:
      h = conv_norm_act(h, width, strides=2)
      h = conv_norm_act(h, width)
    features_bd = nn.swish(nn.Dense(self.feature_dim, name="features")(jnp.mean(h, axis=(1, 2))))
    logits = {"class": nn.Dense(NUM_CLASSES, name="class_head")(features_bd),
              "count": nn.Dense(MAX_OBJECTS, name="count_head")(features_bd),
              "presence": nn.Dense(NUM_CLASSES, name="presence_head")(features_bd)}
    return features_bd, logits
