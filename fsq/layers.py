"""Convolutional building blocks shared by the VQ-VAE and MaskGIT's VQGAN tokenizer."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class ResBlock(nn.Module):
  """GroupNorm, swish, conv3x3, GroupNorm, swish, conv3x3, plus a (1x1-projected) shortcut."""
  features: int
  groups: int = 32
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_bhwc: jax.Array) -> jax.Array:
    groups = min(self.groups, x_bhwc.shape[-1], self.features)
    h = nn.swish(nn.GroupNorm(num_groups=groups, dtype=self.dtype)(x_bhwc))
    h = nn.Conv(self.features, (3, 3), use_bias=False, dtype=self.dtype)(h)
    h = nn.swish(nn.GroupNorm(num_groups=groups, dtype=self.dtype)(h))
    h = nn.Conv(self.features, (3, 3), use_bias=False, dtype=self.dtype)(h)
    if x_bhwc.shape[-1] != self.features:
      x_bhwc = nn.Conv(self.features, (1, 1), use_bias=False, dtype=self.dtype)(x_bhwc)
    return x_bhwc + h


def downsample(x_bhwc: jax.Array) -> jax.Array:
  """2x2 average pooling."""
  return nn.avg_pool(x_bhwc, (2, 2), strides=(2, 2))


def upsample(x_bhwc: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling."""
  return jnp.repeat(jnp.repeat(x_bhwc, 2, axis=1), 2, axis=2)
