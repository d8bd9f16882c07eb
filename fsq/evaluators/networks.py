"""Frozen feature networks chosen by name in a config: perceptual features and FID features.

  "scenes"     the committed scenes domain network (fsq/evaluators/scenes_features.py), or the
               file `weights` names; the default on the embedded data.
  "inception"  the FID InceptionV3 from a converted weights file the user supplies
               (docs/evaluators.md); the ImageNet choice.

Perceptual features are LPIPS-style (Zhang et al. 2018): intermediate maps, each position's
channel vector scaled to unit RMS, compared by mean squared difference
(maskgit/losses.py:perceptual_loss). On the scenes the same network also computes scenes-FID,
so a perceptual loss on it pulls the tokenizer towards what that FID measures: compare FIDs
between runs with the same perceptual setting.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fsq.evaluators import inception, scenes_features

NETWORKS = ("scenes", "inception")
# Inception blocks at 35x35, 17x17 and 8x8: one map per resolution.
INCEPTION_PERCEPTUAL_BLOCKS = ("Mixed_5d", "Mixed_6e", "Mixed_7c")


def _check(name: str) -> None:
  if name not in NETWORKS:
    raise ValueError(f"feature network {name!r}: choose one of {', '.join(NETWORKS)} "
                     "(or '' for none).")


def _unit_rms(f_bhwc: jax.Array) -> jax.Array:
  return f_bhwc * jax.lax.rsqrt(jnp.mean(f_bhwc**2, axis=-1, keepdims=True) + 1e-10)


def _captured(model: nn.Module, variables, x: jax.Array,
              keep: Callable[[nn.Module], bool]) -> list[jax.Array]:
  """Outputs (4-D) of the submodules `keep` selects, in a fixed order."""
  _, state = model.apply(variables, x, capture_intermediates=lambda m, _: keep(m),
                         mutable=["intermediates"])
  return [v for v in jax.tree.leaves(state["intermediates"]) if v.ndim == 4]


def perceptual_feature_fn(name: str, weights: str = "") -> Callable[[jax.Array], list]:
  """`features(images_bhwc in [-1, 1]) -> [unit-RMS maps]`, jax-traceable, weights frozen.

  scenes: the output of every GroupNorm (4 resolutions, 64 px input -> 32 .. 4).
  inception: the outputs of INCEPTION_PERCEPTUAL_BLOCKS (the input is resized to 299 px).
  """
  _check(name)
  if name == "scenes":
    net = _scenes_network(weights)
    variables = {"params": net.params}

    def features(x_bhwc):
      return [_unit_rms(f) for f in _captured(
          net.model, variables, scenes_features.preprocess(x_bhwc, net.image_size),
          lambda m: isinstance(m, nn.GroupNorm))]
    return features
  variables = jax.device_put(inception.load_variables(weights or inception.DEFAULT_NPZ))
  model = inception.InceptionV3()

  def features(x_bhwc):
    return [_unit_rms(f) for f in _captured(
        model, variables, x_bhwc, lambda m: m.name in INCEPTION_PERCEPTUAL_BLOCKS)]
  return features


@functools.lru_cache(maxsize=4)
def _scenes_network(weights: str) -> scenes_features.ScenesNetwork:
  return scenes_features.load_scenes_network(weights or scenes_features.DEFAULT_WEIGHTS)


def fid_feature_fn(name: str, weights: str = "") -> Callable[[np.ndarray], np.ndarray]:
  """`features(images_nhwc uint8 or [-1, 1]) -> (N, D) float32`: scenes (256-d) or pool3."""
  _check(name)
  if name == "scenes":
    return _scenes_network(weights).features
  return inception.make_feature_fn(inception.load_variables(weights or inception.DEFAULT_NPZ))


def class_probability_fn(name: str, weights: str = ""
                         ) -> Callable[[np.ndarray], np.ndarray] | None:
  """`probs(images_nhwc) -> (N, classes)` of the network's classifier; None for Inception
  (the FID graph stops at pool3)."""
  _check(name)
  return _scenes_network(weights).class_probabilities if name == "scenes" else None
