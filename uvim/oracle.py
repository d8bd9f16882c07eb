"""UViM's Stage I oracle: a ViT VQ-VAE of a task's target maps, guided by the image.

UViM (Kolesnikov et al. 2022, arXiv 2205.10337) as the FSQ paper runs it with FSQ or UViM's
EMA VQ (arXiv 2309.15505, Sec. 4.2); the reference is big_vision's proj/uvim/vit.py with the
public UViM configs (bottleneck_resize, code_dropout="random", encoder and decoder context).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from uvim.vit import Encoder, learned_position_embedding


def code_dropout_mask(rng: jax.Array, batch: int, length: int) -> jax.Array:
  """(batch, length) booleans, True where a code is kept.

  UViM's "random" code dropout: each example draws t ~ U(0, 1) and keeps the codes whose
  importance 1 - (i + 1) / (length + 1), i = 0 .. length - 1, exceeds t (a fraction of about
  1 - t), at positions shuffled independently per example.
  """
  threshold_rng, shuffle_rng = jax.random.split(rng)
  importance_l = jnp.linspace(1.0, 0.0, length + 2)[1:-1]
  threshold_b = jax.random.uniform(threshold_rng, (batch,))
  keep_bl = importance_l[None, :] > threshold_b[:, None]
  return jax.random.permutation(shuffle_rng, keep_bl, axis=-1, independent=True)


class Oracle(nn.Module):
  """Target maps (+ image context) -> codes on a `code_grid` x `code_grid` grid -> logits.

  Every target (B, H, W, C_k) is patch-embedded (its own conv, kernel = stride = patch_size)
  and the embeddings summed; with `use_context` the image (B, H, W, C) in [-1, 1] is
  patch-embedded by one conv into the encoder's tokens and by another into the decoder's
  (without it no context parameter exists and the context is ignored). A ViT encoder, a
  linear resize of the token grid to the code grid, a Dense to `quantizer.latent_dim` and the
  quantizer (in fp32) give the codes; the decoder takes them back through a Dense, a linear
  resize to the token grid and a ViT, then per output a zero-initialised head of
  patch_size^2 * channels values per token, un-patchified to (B, H, W, channels).

  Training (`train=True`, rng stream "dropout") zeroes a random fraction of each example's
  codes (`code_dropout_mask`). A zero code is FSQ's centre codeword when every level is odd
  ([7, 5, 5, 5, 5]), so for FSQ "dropped" is an ordinary code; we keep UViM's behaviour.
  Decoding all-zero codes, `decode(jnp.zeros_like(z_q), context)`, is what every code dropped
  leaves: the oracle's context-only floor.

  The quantizer comes from `fsq.quantizers.make_quantizer`; the EMA VQ ("vq_ema") trains
  with the collection "quantizer_state" mutable and an rng stream "vq". `outputs` (head name
  -> channels) also names the targets: UViM's configs set outputs = inputs.
  """
  quantizer: nn.Module
  outputs: Mapping[str, int]
  image_size: int = 512
  patch_size: int = 16
  code_grid: int = 16
  width: int = 768
  encoder_depth: int = 6
  decoder_depth: int = 12
  mlp_dim: int = 3072
  num_heads: int = 12
  dropout: float = 0.0
  code_dropout: bool = True
  use_context: bool = True
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    if self.image_size % self.patch_size:
      raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size "
                       f"{self.patch_size}.")
    self.token_grid = self.image_size // self.patch_size
    def patch_embedding(name: str) -> nn.Conv:
      return nn.Conv(self.width, (self.patch_size, self.patch_size), strides=self.patch_size,
                     padding="VALID", dtype=self.dtype, name=name)
    self.embeddings = {k: patch_embedding(f"embedding_{k}") for k in self.outputs}
    self.context_embeddings = {
        part: patch_embedding(f"context_{part}_embedding")
        for part in (("encoder", "decoder") if self.use_context else ())}
    tokens = self.token_grid ** 2
    self.encoder_position = learned_position_embedding(
        self, "encoder_position_embedding", tokens, self.width)
    self.decoder_position = learned_position_embedding(
        self, "decoder_position_embedding", tokens, self.width)
    vit = dict(num_heads=self.num_heads, mlp_dim=self.mlp_dim, dropout=self.dropout,
               dtype=self.dtype)
    self.encoder = Encoder(self.encoder_depth, **vit)
    self.decoder = Encoder(self.decoder_depth, **vit)
    self.encoder_head = nn.Dense(self.quantizer.latent_dim, dtype=self.dtype)
    self.decoder_stem = nn.Dense(self.width, dtype=self.dtype)
    self.heads = {
        k: nn.Dense(self.patch_size ** 2 * channels, dtype=self.dtype,
                    kernel_init=nn.initializers.zeros, name=f"head_{k}")
        for k, channels in self.outputs.items()}

  def _check_hw(self, x_bhwc: jax.Array, what: str) -> None:
    if x_bhwc.ndim != 4 or x_bhwc.shape[1:3] != (self.image_size, self.image_size):
      raise ValueError(f"{what} must be (B, {self.image_size}, {self.image_size}, C), got "
                       f"shape {x_bhwc.shape}.")

  def _add_context(self, x_bhwd: jax.Array, context_bhwc: jax.Array | None,
                   part: str) -> jax.Array:
    if not self.use_context:
      return x_bhwd
    if context_bhwc is None:
      raise ValueError("Oracle(use_context=True) needs context_bhwc.")
    self._check_hw(context_bhwc, "context_bhwc")
    return x_bhwd + self.context_embeddings[part](context_bhwc)

  def _transformer(self, x_bhwd: jax.Array, position_1ld: jax.Array, vit: nn.Module,
                   train: bool) -> jax.Array:
    x_bld = einops.rearrange(x_bhwd, "b h w d -> b (h w) d") + position_1ld.astype(self.dtype)
    x_bld = vit(x_bld, train)
    return einops.rearrange(x_bld, "b (h w) d -> b h w d", h=self.token_grid)

  def encode(self, targets: Mapping[str, jax.Array], context_bhwc: jax.Array | None,
             train: bool = False) -> tuple[jax.Array, dict[str, Any]]:
    """Targets (+ context) -> (z_q_bggd fp32 codes, the quantizer's aux with "indices")."""
    if set(targets) != set(self.outputs):
      raise ValueError(f"targets has keys {sorted(targets)}, the oracle's outputs are "
                       f"{sorted(self.outputs)}.")
    for k in self.outputs:
      self._check_hw(targets[k], f"targets[{k!r}]")
    x_bhwd = sum(self.embeddings[k](targets[k]) for k in self.outputs)
    x_bhwd = self._add_context(x_bhwd, context_bhwc, "encoder")
    x_bhwd = self._transformer(x_bhwd, self.encoder_position, self.encoder, train)
    # As the UViM configs (bottleneck_resize=True): the token grid is bilinearly resized
    # (jax.image.resize "linear", antialiased) to the code grid, then projected.
    x_bggd = jax.image.resize(x_bhwd, (x_bhwd.shape[0], self.code_grid, self.code_grid,
                                       self.width), method="linear")
    z_bggd = self.encoder_head(x_bggd).astype(jnp.float32)
    return self.quantizer(z_bggd, train=train)

  def drop_codes(self, z_q_bggd: jax.Array, train: bool = False) -> jax.Array:
    """In training (with `code_dropout`) zeroes each example's codes where
    `code_dropout_mask` drops them; otherwise returns the codes unchanged."""
    if not (train and self.code_dropout):
      return z_q_bggd
    batch, gh, gw = z_q_bggd.shape[:3]
    keep_bl = code_dropout_mask(self.make_rng("dropout"), batch, gh * gw)
    return z_q_bggd * keep_bl.reshape(batch, gh, gw, 1).astype(z_q_bggd.dtype)

  def decode(self, z_q_bggd: jax.Array, context_bhwc: jax.Array | None,
             train: bool = False) -> dict[str, jax.Array]:
    """Codes (B, g, g, latent_dim) (+ context) -> {name: (B, H, W, channels) fp32 logits}.

    All-zero codes give the context-only floor (every code dropped).
    """
    x_bggd = self.decoder_stem(self.drop_codes(z_q_bggd, train))
    x_bhwd = jax.image.resize(x_bggd, (x_bggd.shape[0], self.token_grid, self.token_grid,
                                       self.width), method="linear")
    x_bhwd = self._add_context(x_bhwd, context_bhwc, "decoder")
    x_bhwd = self._transformer(x_bhwd, self.decoder_position, self.decoder, train)
    return {k: einops.rearrange(head(x_bhwd).astype(jnp.float32),
                                "b h w (p q c) -> b (h p) (w q) c", p=self.patch_size,
                                q=self.patch_size)
            for k, head in self.heads.items()}

  def decode_indices(self, indices_bgg: jax.Array,
                     context_bhwc: jax.Array | None) -> dict[str, jax.Array]:
    """Code indices (B, g, g) (+ context) -> logits, as `decode` of the codes they name."""
    return self.decode(self.quantizer.decode_indices(indices_bgg), context_bhwc)

  def __call__(self, targets: Mapping[str, jax.Array], context_bhwc: jax.Array | None,
               train: bool = False) -> tuple[dict[str, jax.Array], dict[str, Any]]:
    """Targets (+ context) -> ({name: (B, H, W, channels) logits}, the quantizer's aux)."""
    z_q_bggd, aux = self.encode(targets, context_bhwc, train=train)
    return self.decode(z_q_bggd, context_bhwc, train=train), aux
