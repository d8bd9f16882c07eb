"""MaskGIT's bidirectional transformer over a class token and a grid of image tokens.

BERT-style (MaskGIT, Chang et al. 2022; arXiv 2309.15505, Sec. 4): token + position embedding,
LayerNorm, dropout, post-LN blocks of self-attention and a GELU MLP, then an MLM head whose
output projection is tied to the token embedding.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

_INIT = nn.initializers.truncated_normal(0.02)


class Vocabulary:
  """Token ids: image codes [0, K), then one per class [K, K + C), then the mask token."""

  def __init__(self, codebook_size: int, num_classes: int):
    self.codebook_size, self.num_classes = codebook_size, num_classes
    self.mask_id = codebook_size + num_classes
    self.size = codebook_size + num_classes + 1

  def class_ids(self, labels: jax.Array) -> jax.Array:
    return labels.astype(jnp.int32) + self.codebook_size

  def sequence(self, labels_b: jax.Array, tokens_bs: jax.Array) -> jax.Array:
    """(B,) labels and (B, S) image tokens -> (B, 1 + S), class token first."""
    return jnp.concatenate([self.class_ids(labels_b)[:, None], tokens_bs], axis=1)


class TransformerBlock(nn.Module):
  """Post-LN: x = LN(x + Attn(x)); x = LN(x + MLP(x))."""
  num_heads: int
  mlp_dim: int
  dropout: float

  @nn.compact
  def __call__(self, x_bsd: jax.Array, train: bool) -> jax.Array:
    drop = nn.Dropout(self.dropout, deterministic=not train)
    h = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, kernel_init=_INIT,
                                        dropout_rate=self.dropout, deterministic=not train,
                                        name="attention")(x_bsd, x_bsd)
    x_bsd = nn.LayerNorm(epsilon=1e-12, name="attention_norm")(x_bsd + drop(h))
    h = nn.Dense(self.mlp_dim, kernel_init=_INIT, name="mlp_in")(x_bsd)
    h = nn.Dense(x_bsd.shape[-1], kernel_init=_INIT, name="mlp_out")(nn.gelu(h))
    return nn.LayerNorm(epsilon=1e-12, name="mlp_norm")(x_bsd + drop(h))


class MaskedTransformer(nn.Module):
  """(B, L) token ids -> (B, L, vocab_size) logits (MaskGIT: 24 layers, 768 wide, 16 heads)."""
  vocab_size: int
  seq_len: int
  width: int = 768
  depth: int = 24
  num_heads: int = 16
  mlp_dim: int = 3072
  dropout: float = 0.1

  @nn.compact
  def __call__(self, ids_bl: jax.Array, train: bool = False) -> jax.Array:
    embed = nn.Embed(self.vocab_size, self.width, embedding_init=_INIT, name="token_embedding")
    position = self.param("position_embedding", _INIT, (1, self.seq_len, self.width))
    x = nn.LayerNorm(epsilon=1e-12, name="embedding_norm")(embed(ids_bl) + position)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    for i in range(self.depth):
      x = TransformerBlock(self.num_heads, self.mlp_dim, self.dropout, name=f"block_{i}")(
          x, train)
    x = nn.LayerNorm(epsilon=1e-12, name="head_norm")(
        nn.gelu(nn.Dense(self.width, kernel_init=_INIT, name="head_dense")(x)))
    bias = self.param("head_bias", nn.initializers.zeros, (self.vocab_size,))
    return embed.attend(x) + bias
