"""A convolutional VQ-VAE: encoder, FSQ or VQ bottleneck, decoder (the seed's first experiment)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fsq.layers import ResBlock, downsample, upsample


class Encoder(nn.Module):
  """conv3x3, then per level residual blocks and a 2x2 average pool (all but the last)."""
  width: int
  channel_multipliers: Sequence[int]
  num_res_blocks: int
  latent_dim: int

  @nn.compact
  def __call__(self, x_bhwc: jax.Array) -> jax.Array:
    h = nn.Conv(self.width, (3, 3), use_bias=False)(x_bhwc)
    for level, mult in enumerate(self.channel_multipliers):
      for _ in range(self.num_res_blocks):
        h = ResBlock(self.width * mult)(h)
      if level < len(self.channel_multipliers) - 1:
        h = downsample(h)
    h = nn.swish(nn.GroupNorm(num_groups=min(32, h.shape[-1]))(h))
    return nn.Conv(self.latent_dim, (1, 1))(h)


class Decoder(nn.Module):
  """Mirror of the encoder: residual blocks and nearest 2x upsampling + conv3x3 per level."""
  width: int
  channel_multipliers: Sequence[int]
  num_res_blocks: int
  out_channels: int = 3

  @nn.compact
  def __call__(self, z_bhwc: jax.Array) -> jax.Array:
    mults = list(reversed(self.channel_multipliers))
    h = nn.Conv(self.width * mults[0], (3, 3))(z_bhwc)
    for level, mult in enumerate(mults):
      for _ in range(self.num_res_blocks):
        h = ResBlock(self.width * mult)(h)
      if level < len(mults) - 1:
        h = nn.Conv(self.width * mults[level + 1], (3, 3))(upsample(h))
    h = nn.swish(nn.GroupNorm(num_groups=min(32, h.shape[-1]))(h))
    return nn.Conv(self.out_channels, (3, 3))(h)


class ConvVQVAE(nn.Module):
  """Image (B, H, W, 3) in [-1, 1] -> reconstruction and the quantizer's aux (indices, loss).

  The encoder emits `latent_dim` channels (the number of FSQ levels, or VQ's embedding
  dimension) on a grid downsampled by 2^(len(channel_multipliers) - 1).
  """
  quantizer: nn.Module
  latent_dim: int
  width: int = 64
  channel_multipliers: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 1

  def setup(self):
    self.encoder = Encoder(self.width, self.channel_multipliers, self.num_res_blocks,
                           self.latent_dim)
    self.decoder = Decoder(self.width, self.channel_multipliers, self.num_res_blocks)

  def encode(self, x_bhwc: jax.Array, train: bool = False) -> tuple[jax.Array, dict[str, Any]]:
    return self.quantizer(self.encoder(x_bhwc), train=train)

  def decode(self, z_q_bhwc: jax.Array) -> jax.Array:
    return self.decoder(z_q_bhwc)

  def decode_indices(self, indices_bhw: jax.Array) -> jax.Array:
    return self.decoder(self.quantizer.decode_indices(indices_bhw))

  def __call__(self, x_bhwc: jax.Array, train: bool = False) -> tuple[jax.Array, dict[str, Any]]:
    z_q, aux = self.encode(x_bhwc, train=train)
    return self.decode(z_q), aux
