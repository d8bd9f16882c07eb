"""The scenes judge: features, class probabilities, scenes-FID and class consistency.

No Inception weights can be had offline, so the embedded scenes get their own feature network:
`fsq.models.scenes_classifier.ScenesClassifier`, trained on the scenes (class, visible-object
count, shape presence) by `python -m scripts.train_scenes_classifier`, whose weights are
committed under fsq/evaluators/weights/. Its 256-d penultimate features replace Inception's
pool3 in FID and precision/recall; its class head checks class-conditional samples.

  net = load_scenes_network()
  fid = scenes_fid(real_batches, sample_batches, net)   # iterables of (N, H, W, 3) images
  precision, recall = precision_recall(net.features(real), net.features(samples))
  consistency = class_consistency(samples, requested_labels, net)
"""
from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from fsq.evaluators.fid import feature_statistics, frechet_distance
from fsq.images import map_batches
from fsq.models.scenes_classifier import ScenesClassifier

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
TRAIN_COMMAND = "python -m scripts.train_scenes_classifier"
# The seeds of configs/scenes_classifier.py whose weights are committed (weights_path).
COMMITTED_SEEDS = (0, 1)


def weights_path(seed: int = 0) -> str:
  """The committed network of configs/scenes_classifier.py with `seed`: seed 0 is the judge
  (scenes-FID, class consistency), seed 1 the scenes tokenizers' perceptual loss."""
  return os.path.join(WEIGHTS_DIR, "scenes_classifier_64px"
                      + (f"_seed{seed}" if seed else "") + ".msgpack")


DEFAULT_WEIGHTS = weights_path(0)


def preprocess(images_nhwc: jax.Array, size: int) -> jax.Array:
  """uint8 [0, 255] or float [-1, 1] images -> float32 (N, size, size, 3) in [-1, 1].

  Other sizes are resized bilinearly (jax.image.resize, antialiased when shrinking).
  """
  if images_nhwc.dtype == jnp.uint8:
    x = images_nhwc.astype(jnp.float32) / 127.5 - 1.0
  else:
    x = images_nhwc.astype(jnp.float32)
  n, h, w, c = x.shape
  if (h, w) != (size, size):
    x = jax.image.resize(x, (n, size, size, c), "bilinear")
  return x


class ScenesNetwork:
  """A trained ScenesClassifier: images -> (features (N, D) float32, class probs (N, 4)).

  Images are (N, H, W, 3), uint8 in [0, 255] or float in [-1, 1], resized to the training
  `image_size` when they differ (see `preprocess`). Arrays of any length run in padded chunks
  of `batch_size`, so every call with the same image size reuses one compiled function.
  """

  def __init__(self, params, model_config: dict, image_size: int, batch_size: int = 256):
    self.model = ScenesClassifier(**model_config)
    self.params = params
    self.image_size = image_size
    self.batch_size = batch_size
    self.feature_dim = self.model.feature_dim
    self._forward = jax.jit(self._apply)

  def _apply(self, params, images_nhwc):
    features_nd, logits = self.model.apply({"params": params},
                                          preprocess(images_nhwc, self.image_size))
    return features_nd, jax.nn.softmax(logits["class"], axis=-1)

  def __call__(self, images_nhwc) -> tuple[np.ndarray, np.ndarray]:
    images_nhwc = np.asarray(images_nhwc)
    return map_batches(lambda x: self._forward(self.params, x), images_nhwc,
                       min(self.batch_size, len(images_nhwc)))

  def features(self, images_nhwc) -> np.ndarray:
    """Penultimate features (N, feature_dim) float32: the scenes-FID / precision-recall space."""
    return self(images_nhwc)[0]

  def class_probabilities(self, images_nhwc) -> np.ndarray:
    """Softmax over the 4 classes (sphere, cube, cylinder, cone), (N, 4) float32."""
    return self(images_nhwc)[1]


def load_scenes_network(path: str = DEFAULT_WEIGHTS, batch_size: int = 256) -> ScenesNetwork:
  """The network saved by `export_weights` (by default the committed one)."""
  if not os.path.exists(path):
    seed = next((k for k in COMMITTED_SEEDS if os.path.abspath(path) == weights_path(k)), None)
    if seed is None:
      rebuild = f"the committed judge is {DEFAULT_WEIGHTS}, rebuilt by `{TRAIN_COMMAND}`"
    else:
      flag = f" --config_arg=seed={seed}" if seed else ""
      rebuild = f"this committed file is rebuilt by `{TRAIN_COMMAND}{flag}`"
    raise FileNotFoundError(f"no scenes classifier weights at {path!r}: {rebuild} (about 15 "
                            "minutes on 2 CPU cores).")
  with open(path, "rb") as f:
    saved = flax.serialization.msgpack_restore(f.read())
  run_config = json.loads(saved["run_config"])
  return ScenesNetwork(jax.tree.map(jnp.asarray, saved["params"]), run_config["model"],
                       run_config["data"]["train"]["image_size"], batch_size)


def export_weights(params, run_config, path: str = DEFAULT_WEIGHTS) -> None:
  """Writes a trained classifier's `params` to `path`, with its run's config (a ConfigDict).

  The config (seed, steps, model, image size) is stored as JSON beside the parameters, so the
  file says how to reproduce it.
  """
  payload = {"params": jax.tree.map(np.asarray, params), "run_config": run_config.to_json()}
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "wb") as f:
    f.write(flax.serialization.msgpack_serialize(payload))


@functools.lru_cache(maxsize=1)
def _default_network() -> ScenesNetwork:
  return load_scenes_network()


def scenes_fid(real_batches: Iterable, fake_batches: Iterable,
               network: ScenesNetwork | None = None) -> float:
  """Fréchet distance between the scenes features of two iterables of image batches.

  `network` defaults to the committed one (loaded once per process).
  """
  network = network or _default_network()
  return frechet_distance(*feature_statistics(map(network.features, real_batches)),
                          *feature_statistics(map(network.features, fake_batches)))


def class_consistency(images_nhwc, labels_n, network: ScenesNetwork | None = None) -> float:
  """Fraction of images whose predicted class is the requested label (N,)."""
  network = network or _default_network()
  predicted = np.argmax(network.class_probabilities(images_nhwc), axis=-1)
  return float(np.mean(predicted == np.asarray(labels_n)))
