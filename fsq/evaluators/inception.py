"""The FID InceptionV3 (TF's 2015-12-05 graph, as ported by pytorch-fid) as a Flax module.

This is the network behind the FID numbers of TF-GAN, the ADM evaluation suite and
pytorch-fid: `InceptionV3()(x_nhwc)` maps images to the 2048-d pool3 features, preparing
them as pytorch-fid does, or as the TF graph does with `tf_graph=True`.
Weights come from pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, converted once to
.npz by `scripts/convert_inception_weights.py` (see docs/evaluators.md).

Submodule names follow torchvision/pytorch-fid (`Mixed_5b/branch1x1/conv`, ...), so the
conversion is a renaming plus a kernel transpose.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

INPUT_SIZE = 299
FEATURE_DIM = 2048
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
DEFAULT_NPZ = os.path.join("~", ".cache", "fsq", "fid_inception_2015-12-05.npz")
CONVERT_COMMAND = ("python -m scripts.convert_inception_weights "
                   f"--input /path/to/{WEIGHTS_FILE} --output {{output}}")


class ConvBN(nn.Module):
  """Conv (no bias) + inference BatchNorm (eps 1e-3) + ReLU: torchvision's BasicConv2d."""
  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)  # (rows, cols), added on both sides.

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pad_h, pad_w = self.padding
    # Full float32: GPUs would otherwise run TF32 convolutions and shift the features.
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides,
                padding=((pad_h, pad_h), (pad_w, pad_w)), use_bias=False,
                precision=jax.lax.Precision.HIGHEST, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  # TF's SAME average pool: the zero padding is left out of each window's mean.
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_3x3(x: jax.Array, strides: int = 1) -> jax.Array:
  padding = ((1, 1), (1, 1)) if strides == 1 else "VALID"
  return nn.max_pool(x, (3, 3), strides=(strides, strides), padding=padding)


class InceptionA(nn.Module):
  """35x35 block (Mixed_5b-d)."""
  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = ConvBN(64, (1, 1), name="branch1x1")(x)
    b5 = ConvBN(48, (1, 1), name="branch5x5_1")(x)
    b5 = ConvBN(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = ConvBN(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Reduction 35x35 -> 17x17 (Mixed_6a)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = ConvBN(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
    bd = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = ConvBN(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3(x, strides=2)], axis=-1)


class InceptionC(nn.Module):
  """17x17 block with factorised 7x7 convolutions (Mixed_6b-e)."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    b1 = ConvBN(192, (1, 1), name="branch1x1")(x)
    b7 = ConvBN(c7, (1, 1), name="branch7x7_1")(x)
    b7 = ConvBN(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = ConvBN(c7, (1, 1), name="branch7x7dbl_1")(x)
    bd = ConvBN(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = ConvBN(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = ConvBN(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = ConvBN(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Reduction 17x17 -> 8x8 (Mixed_7a)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = ConvBN(192, (1, 1), name="branch3x3_1")(x)
    b3 = ConvBN(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = ConvBN(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = ConvBN(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3(x, strides=2)], axis=-1)


class InceptionE(nn.Module):
  """8x8 block with expanded filter banks (Mixed_7b-c)."""
  max_pool: bool  # The FID graph's Mixed_7c pools with max where the paper says average.

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = ConvBN(320, (1, 1), name="branch1x1")(x)
    b3 = ConvBN(384, (1, 1), name="branch3x3_1")(x)
    b3 = jnp.concatenate([
        ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = ConvBN(448, (1, 1), name="branch3x3dbl_1")(x)
    bd = ConvBN(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([
        ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    pooled = _max_pool_3x3(x) if self.max_pool else _avg_pool_3x3(x)
    bp = ConvBN(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def _tf1_bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
  """(size_out, size_in) weights of TF1's ResizeBilinear (no half-pixel centres)."""
  src = np.arange(size_out, dtype=np.float32) * np.float32(size_in / size_out)  # float32, as TF.
  lo = np.floor(src).astype(int)
  hi = np.minimum(lo + 1, size_in - 1)
  weights = np.zeros((size_out, size_in))
  np.add.at(weights, (np.arange(size_out), lo), 1 - (src - lo))
  np.add.at(weights, (np.arange(size_out), hi), src - lo)
  return weights.astype(np.float32)


def _preprocess(x_nhwc: jax.Array, tf_graph: bool) -> jax.Array:
  n, h, w, c = x_nhwc.shape
  if not tf_graph:  # pytorch-fid: half-pixel bilinear (align_corners=False), no antialiasing.
    if (h, w) == (INPUT_SIZE, INPUT_SIZE):
      return x_nhwc
    return jax.image.resize(x_nhwc, (n, INPUT_SIZE, INPUT_SIZE, c), "bilinear", antialias=False)
  # The TF graph takes uint8 values u as floats and computes (u - 128) / 128, where
  # pytorch-fid computes u / 127.5 - 1 = x; in terms of x that is (127.5 x - 0.5) / 128.
  x = (127.5 * x_nhwc - 0.5) / 128
  return jnp.einsum("Hh,nhwc,Ww->nHWc", _tf1_bilinear_matrix(h, INPUT_SIZE), x,
                    _tf1_bilinear_matrix(w, INPUT_SIZE), precision=jax.lax.Precision.HIGHEST)


class InceptionV3(nn.Module):
  """FID InceptionV3 up to pool3: (N, H, W, 3) images -> (N, 2048) features.

  Images are floats in [-1, 1] or uint8 in [0, 255] (read as u / 127.5 - 1).

  Images of another size are resized to 299x299 bilinearly. By default the input is
  prepared as pytorch-fid does; `tf_graph=True` reproduces the TF graph that TF-GAN and the
  ADM suite run (its uint8 normalisation and TF1's legacy bilinear resize).
  """
  tf_graph: bool = False

  @nn.compact
  def __call__(self, x_nhwc: jax.Array) -> jax.Array:
    if x_nhwc.ndim != 4 or x_nhwc.shape[-1] != 3:
      raise ValueError(f"InceptionV3 takes RGB images (N, H, W, 3), got shape {x_nhwc.shape}.")
    x = x_nhwc / 127.5 - 1 if x_nhwc.dtype == jnp.uint8 else x_nhwc
    x = _preprocess(x.astype(jnp.float32), self.tf_graph)
    x = ConvBN(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
    x = ConvBN(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = ConvBN(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3(x, strides=2)
    x = ConvBN(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = ConvBN(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3(x, strides=2)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(max_pool=False, name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))  # pool3


def variable_shapes() -> dict[str, Any]:
  """The module's variables as a tree of ShapeDtypeStructs (nothing is computed)."""
  x = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return jax.eval_shape(InceptionV3().init, jax.random.key(0), x)


def check_variables(flat: dict[str, np.ndarray]) -> None:
  """Raises a ValueError unless `flat` ({"params/.../kernel": array}) fits the module."""
  expected = traverse_util.flatten_dict(variable_shapes(), sep="/")
  missing, extra = sorted(expected.keys() - flat.keys()), sorted(flat.keys() - expected.keys())
  if missing or extra:
    raise ValueError(f"not FID Inception weights: missing {missing[:5]}, unexpected {extra[:5]}.")
  for key, leaf in expected.items():
    if flat[key].shape != leaf.shape:
      raise ValueError(f"{key} has shape {flat[key].shape}, the module expects {leaf.shape}.")


def load_variables(path: str = DEFAULT_NPZ) -> dict[str, Any]:
  """Loads converted FID Inception weights (.npz) and checks them against the module."""
  path = os.path.expanduser(path)
  command = CONVERT_COMMAND.format(output=path)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"FID Inception weights not found at {path!r}. Download pytorch-fid's {WEIGHTS_FILE} "
        f"and convert it once with:\n  {command}\n(see docs/evaluators.md).")
  with np.load(path) as npz:
    flat = {key: npz[key].astype(np.float32) for key in npz.files}
  try:
    check_variables(flat)
  except ValueError as error:
    raise ValueError(f"{path!r}: {error} Re-run the conversion:\n  {command}") from error
  return traverse_util.unflatten_dict(flat, sep="/")


@functools.cache
def _jitted_apply(tf_graph: bool) -> Callable[..., jax.Array]:
  return jax.jit(InceptionV3(tf_graph=tf_graph).apply)  # Shared by every feature function.


def make_feature_fn(variables: dict[str, Any], tf_graph: bool = False
                    ) -> Callable[[Any], np.ndarray]:
  """Returns `features(images_nhwc) -> (N, 2048) float32 numpy` (jitted; see InceptionV3)."""
  variables = jax.device_put(variables)  # Uncommitted: jit may place it next to sharded input.
  apply = _jitted_apply(tf_graph)
  return lambda images_nhwc: np.asarray(apply(variables, images_nhwc))
