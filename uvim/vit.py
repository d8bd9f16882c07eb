"""Pre-LN ViT pieces shared by UViM's oracle and its language model (arXiv 2205.10337).

As big_vision's ViT: LayerNorm before each sub-layer and a residual around it, a GELU MLP,
Xavier-uniform kernels, a LayerNorm after the stack. The sub-layers are residual modules of
their own so that a decoder block chains `AttentionBlock` (causal self-attention),
`AttentionBlock` (cross-attention to the encoder) and `MlpBlock`.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

_KERNEL_INIT = nn.initializers.xavier_uniform()


def learned_position_embedding(module: nn.Module, name: str, length: int,
                               width: int) -> jax.Array:
  """A (1, length, width) parameter of `module`, initialised N(0, 1 / width).

  UViM's configs keep big_vision's default position embedding, the learned one ("learn",
  not "sincos2d"), with this initialisation.
  """
  return module.param(name, nn.initializers.normal(stddev=width ** -0.5), (1, length, width))


class MlpBlock(nn.Module):
  """Pre-LN feed-forward sub-layer: x + Dropout(Dense(Dropout(GELU(Dense(LN(x))))))."""
  mlp_dim: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_bld: jax.Array, train: bool = False) -> jax.Array:
    dense = functools.partial(nn.Dense, dtype=self.dtype, kernel_init=_KERNEL_INIT,
                              bias_init=nn.initializers.normal(stddev=1e-6))
    drop = nn.Dropout(self.dropout, deterministic=not train)
    h = nn.LayerNorm(dtype=self.dtype, name="norm")(x_bld)
    h = drop(nn.gelu(dense(self.mlp_dim, name="dense_in")(h)))
    return x_bld + drop(dense(x_bld.shape[-1], name="dense_out")(h))


class AttentionBlock(nn.Module):
  """Pre-LN attention sub-layer: x + Dropout(MultiHeadAttention(LN(x), kv)).

  Self-attention when `kv_bmd` is None, else cross-attention to `kv_bmd` (taken as is, e.g.
  an encoder's normalised output). `mask` (True = attend) broadcasts to (B, heads, L, M).
  `decode` is flax's autoregressive self-attention cache (collection "cache"): a first call
  on the full length creates it, each later call takes one position and attends to those
  before it (no `mask` needed).
  """
  num_heads: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32
  decode: bool = False

  @nn.compact
  def __call__(self, x_bld: jax.Array, kv_bmd: jax.Array | None = None,
               mask: jax.Array | None = None, train: bool = False) -> jax.Array:
    h = nn.LayerNorm(dtype=self.dtype, name="norm")(x_bld)
    h = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dtype=self.dtype, kernel_init=_KERNEL_INIT,
        decode=self.decode, name="attention")(h, h if kv_bmd is None else kv_bmd, mask=mask)
    return x_bld + nn.Dropout(self.dropout, deterministic=not train)(h)


class EncoderBlock(nn.Module):
  """Pre-LN transformer encoder block: self-attention, then the MLP."""
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_bld: jax.Array, train: bool = False) -> jax.Array:
    x_bld = AttentionBlock(self.num_heads, self.dropout, self.dtype, name="self_attention")(
        x_bld, train=train)
    return MlpBlock(self.mlp_dim, self.dropout, self.dtype, name="mlp")(x_bld, train)


class Encoder(nn.Module):
  """`depth` pre-LN encoder blocks and a final LayerNorm; the width is the input's."""
  depth: int
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_bld: jax.Array, train: bool = False) -> jax.Array:
    for i in range(self.depth):
      x_bld = EncoderBlock(self.num_heads, self.mlp_dim, self.dropout, self.dtype,
                           name=f"block_{i}")(x_bld, train)
    return nn.LayerNorm(dtype=self.dtype, name="norm")(x_bld)
