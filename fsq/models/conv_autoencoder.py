"""Convolutional autoencoder around FSQ or VQ: the plain VQ-VAE and MaskGIT's VQGAN tokenizer.

No attention; GroupNorm and swish, average-pool downsampling and nearest upsampling, as the
public MaskGIT tokenizer (arXiv 2309.15505, Sec. 4, uses it unchanged). With `mid_blocks`
and the paper's widths (128, multipliers (1, 1, 2, 2, 4), 2 residual blocks) it is that
tokenizer, a 256 px image becoming 16 x 16 tokens, but for two details that matter only when
loading MaskGIT's weights: the residual block projects its *input* with the 1x1 shortcut
conv (MaskGIT's applies it to the block output), and GroupNorm uses min(32, channels) groups.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax

from fsq.layers import ResBlock, downsample, upsample


def _norm_swish(x_bhwc: jax.Array) -> jax.Array:
  return nn.swish(nn.GroupNorm(num_groups=min(32, x_bhwc.shape[-1]))(x_bhwc))


class Encoder(nn.Module):
  """conv3x3; per level residual blocks and a 2x2 average pool (all but the last); with
  `mid_blocks` as many residual blocks again at the lowest resolution; GroupNorm, swish, 1x1
  conv to `latent_dim` channels."""
  width: int
  channel_multipliers: Sequence[int]
  num_res_blocks: int
  latent_dim: int
  mid_blocks: bool = False

  @nn.compact
  def __call__(self, x_bhwc: jax.Array) -> jax.Array:
    h = nn.Conv(self.width, (3, 3), use_bias=False)(x_bhwc)
    for level, mult in enumerate(self.channel_multipliers):
      for _ in range(self.num_res_blocks):
        h = ResBlock(self.width * mult)(h)
      if level < len(self.channel_multipliers) - 1:
        h = downsample(h)
    for _ in range(self.num_res_blocks if self.mid_blocks else 0):
      h = ResBlock(self.width * self.channel_multipliers[-1])(h)
    return nn.Conv(self.latent_dim, (1, 1))(_norm_swish(h))


class Decoder(nn.Module):
  """Mirror of the encoder: conv3x3 to the widest level, the mid blocks if any, then per level
  (widest first) residual blocks and nearest 2x upsampling + conv3x3; GroupNorm, swish, conv3x3
  to RGB."""
  width: int
  channel_multipliers: Sequence[int]
  num_res_blocks: int
  mid_blocks: bool = False
  out_channels: int = 3

  @nn.compact
  def __call__(self, z_bhwc: jax.Array) -> jax.Array:
    mults = list(reversed(self.channel_multipliers))
    h = nn.Conv(self.width * mults[0], (3, 3))(z_bhwc)
    for _ in range(self.num_res_blocks if self.mid_blocks else 0):
      h = ResBlock(self.width * mults[0])(h)
    for level, mult in enumerate(mults):
      for _ in range(self.num_res_blocks):
        h = ResBlock(self.width * mult)(h)
      if level < len(mults) - 1:
        # As MaskGIT: the conv after upsampling keeps this level's width; the next level's
        # first residual block changes it.
        h = nn.Conv(self.width * mult, (3, 3))(upsample(h))
    return nn.Conv(self.out_channels, (3, 3))(_norm_swish(h))


class ConvVQVAE(nn.Module):
  """Image (B, H, W, 3) in [-1, 1] -> reconstruction and the quantizer's aux (indices, loss).

  The encoder emits `quantizer.latent_dim` channels (e.g. the number of FSQ levels, or VQ's
  embedding width) on a grid downsampled by 2^(len(channel_multipliers) - 1); `mid_blocks`
  adds residual blocks at the lowest resolution on both sides (MaskGIT's tokenizer).
  """
  quantizer: nn.Module
  width: int = 64
  channel_multipliers: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 1
  mid_blocks: bool = False

  def setup(self):
    self.encoder = Encoder(self.width, self.channel_multipliers, self.num_res_blocks,
                           self.quantizer.latent_dim, self.mid_blocks)
    self.decoder = Decoder(self.width, self.channel_multipliers, self.num_res_blocks,
                           self.mid_blocks)

  def encode(self, x_bhwc: jax.Array, train: bool = False) -> tuple[jax.Array, dict[str, Any]]:
    return self.quantizer(self.encoder(x_bhwc), train=train)

  def decode(self, z_q_bhwc: jax.Array) -> jax.Array:
    return self.decoder(z_q_bhwc)

  def decode_indices(self, indices_bhw: jax.Array) -> jax.Array:
    return self.decoder(self.quantizer.decode_indices(indices_bhw))

  def __call__(self, x_bhwc: jax.Array, train: bool = False) -> tuple[jax.Array, dict[str, Any]]:
    z_q, aux = self.encode(x_bhwc, train=train)
    return self.decode(z_q), aux
