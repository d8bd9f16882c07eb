"""MaskGIT's VQGAN tokenizer (Stage I): convolutional encoder and decoder around FSQ or VQ.

The architecture of the public MaskGIT tokenizer (PAPER.md section 4): the autoencoder of
fsq/models/conv_autoencoder.py with residual blocks at the lowest resolution on both sides.
At the paper's widths (128, multipliers [1, 1, 2, 2, 4], 2 residual blocks) a 256 px image
becomes 16 x 16 tokens.
"""
from __future__ import annotations

from collections.abc import Sequence

from fsq.models.conv_autoencoder import ConvVQVAE


class VQGAN(ConvVQVAE):
  """Image (B, H, W, 3) in [-1, 1] -> reconstruction and the quantizer's aux (indices, loss).

  The token grid is (H, W) / 2^(len(channel_multipliers) - 1); `latent_dim` is the number of
  FSQ levels or VQ's embedding dimension.
  """
  width: int = 128
  channel_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2
  mid_blocks: bool = True
