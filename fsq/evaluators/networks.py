"""Frozen feature networks chosen by name in a config: perceptual features and FID features.

  "scenes"     the committed scenes domain network (fsq/evaluators/scenes_features.py), or the
               file `weights` names; the judge on the embedded data.
  "scenes_seed1"  the same network trained from seed 1: the scenes tokenizers' perceptual loss,
               so that the loss does not optimise the judge's own features.
  "inception"  the FID InceptionV3 from a converted weights file the user supplies
               (docs/evaluators.md); the ImageNet choice.

Perceptual features are LPIPS-style (Zhang et al. 2018): intermediate maps, each position's
channel vector scaled to unit RMS, compared by mean squared difference
(maskgit/losses.py:perceptual_loss). A perceptual loss on the judge itself pulls a tokenizer
towards what scenes-FID and class consistency measure, with patterns no real scene has
(docs/results/maskgit_scenes.md): the scenes tokenizers use "scenes_seed1".
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fsq.evaluators import inception, scenes_features
from fsq.images import map_batches

# The scenes networks by name ("scenes", "scenes_seed1"): the seed of configs/scenes_classifier.py
# their committed weights come from.
SCENES_SEEDS = {"scenes" + (f"_seed{k}" if k else ""): k for k in scenes_features.COMMITTED_SEEDS}
NETWORKS = (*SCENES_SEEDS, "inception")
# Images per Inception call of fid_feature_fn: 256 at 299 px is ~0.3 GB of input.
INCEPTION_BATCH = 256
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
  if name in SCENES_SEEDS:
    net = _scenes_network(name, weights)
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
def _scenes_network(name: str, weights: str) -> scenes_features.ScenesNetwork:
  """The file `weights`, by default the committed weights of the network `name`."""
  return scenes_features.load_scenes_network(
      weights or scenes_features.weights_path(SCENES_SEEDS[name]))


def fid_feature_fn(name: str, weights: str = "") -> Callable[[np.ndarray], np.ndarray]:
  """`features(images_nhwc uint8 or [-1, 1]) -> (N, D) float32`: scenes (256-d) or pool3, for any
  N (in batches: INCEPTION_BATCH for Inception, the network's own for scenes)."""
  _check(name)
  if name in SCENES_SEEDS:
    return _scenes_network(name, weights).features
  features = inception.make_feature_fn(
      inception.load_variables(weights or inception.DEFAULT_NPZ))
  return lambda images_nhwc: map_batches(features, np.asarray(images_nhwc),
                                         min(INCEPTION_BATCH, len(images_nhwc)))


def judge_fn(name: str, weights: str = ""
             ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
  """`judge(images_nhwc) -> (FID features (N, D), class probabilities (N, classes) or None)` in
  one forward pass, for any N: the scenes network's classifier head shares it; Inception has
  none (the FID graph stops at pool3)."""
  _check(name)
  if name in SCENES_SEEDS:
    return _scenes_network(name, weights)
  features = fid_feature_fn(name, weights)
  return lambda images_nhwc: (features(images_nhwc), None)
