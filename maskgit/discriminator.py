"""The StyleGAN(2) residual discriminator with blur-pool downsampling that MaskGIT's VQGAN uses.

As in the public StyleGAN/HiT-GAN/MaskGIT discriminator (Karras et al. 2020, residual
architecture): conv3x3 at full resolution, one residual block per halving down to 4 x 4,
conv3x3, dense, dense to one logit; leaky ReLU 0.2; no normalisation. Downsampling low-pass
filters with a binomial kernel before subsampling (Zhang 2019, "Making Convolutional Networks
Shift-Invariant Again").
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_BINOMIAL = {3: (1, 2, 1), 4: (1, 3, 3, 1), 5: (1, 4, 6, 4, 1)}


def blur_pool(x_bhwc: jax.Array, filter_size: int = 4) -> jax.Array:
  """Binomial blur (normalised to sum 1) with stride 2 and TF "SAME" zero padding: (H, W) / 2.

  Separable, as strided slices (the same result as a depthwise conv, whose gradients XLA's
  CPU backend computes several times slower; R1 differentiates through it twice).
  """
  if filter_size not in _BINOMIAL:
    raise ValueError(f"filter_size must be one of {sorted(_BINOMIAL)}, got {filter_size}.")
  taps = np.asarray(_BINOMIAL[filter_size], np.float64)
  taps /= taps.sum()
  for axis in (1, 2):
    size = x_bhwc.shape[axis]
    out = -(-size // 2)
    pad = max(2 * (out - 1) + filter_size - size, 0)
    padding = [(0, 0)] * x_bhwc.ndim
    padding[axis] = (pad // 2, pad - pad // 2)
    padded = jnp.pad(x_bhwc, padding)
    x_bhwc = sum(float(t) * jax.lax.slice_in_dim(padded, k, k + 2 * out - 1, 2, axis)
                 for k, t in enumerate(taps))
  return x_bhwc


def _leaky_relu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, negative_slope=0.2)


class DiscriminatorBlock(nn.Module):
  """conv3x3, lrelu, blur-pool, conv3x3, lrelu; shortcut blur-pool + 1x1 conv; sum / sqrt(2)."""
  features: int
  blur_filter_size: int = 4

  @nn.compact
  def __call__(self, x_bhwc: jax.Array) -> jax.Array:
    h = _leaky_relu(nn.Conv(x_bhwc.shape[-1], (3, 3))(x_bhwc))
    h = blur_pool(h, self.blur_filter_size)
    h = _leaky_relu(nn.Conv(self.features, (3, 3))(h))
    skip = nn.Conv(self.features, (1, 1), use_bias=False)(blur_pool(x_bhwc,
                                                                     self.blur_filter_size))
    return (h + skip) / math.sqrt(2.0)


class StyleGANDiscriminator(nn.Module):
  """Image (B, S, S, 3) in [-1, 1], S a power of 2 >= 8 -> logits (B,).

  The width at resolution r is min(max_width, base_width * 256 / r): with the defaults
  (base_width 64, max_width 512) exactly StyleGAN's table (channel_multiplier 1: 64 at 256 px,
  128 at 128 px, 256 at 64 px, 512 from 32 px down).
  """
  base_width: int = 64
  max_width: int = 512
  blur_filter_size: int = 4

  def width_at(self, resolution: int) -> int:
    return min(self.max_width, self.base_width * 256 // resolution)

  @nn.compact
  def __call__(self, x_bhwc: jax.Array) -> jax.Array:
    size = x_bhwc.shape[1]
    if x_bhwc.shape[2] != size or size < 8 or size & (size - 1):
      raise ValueError(f"the discriminator needs square images whose side is a power of 2 "
                       f">= 8, got shape {x_bhwc.shape}.")
    h = _leaky_relu(nn.Conv(self.width_at(size), (3, 3))(x_bhwc))
    while size > 4:
      size //= 2
      h = DiscriminatorBlock(self.width_at(size), self.blur_filter_size)(h)
    h = _leaky_relu(nn.Conv(self.width_at(4), (3, 3))(h))
    h = _leaky_relu(nn.Dense(self.width_at(4))(h.reshape(h.shape[0], -1)))
    return nn.Dense(1)(h)[:, 0]
