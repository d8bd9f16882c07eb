"""UViM's Stage II language model: image -> autoregressive Stage I codes.

UViM (Kolesnikov et al. 2022, arXiv 2205.10337) trains an encoder-decoder transformer (big_vision's
proj/uvim/vtt.py) to predict the oracle's codes from the image; the FSQ paper keeps it and swaps
the oracle's quantizer (arXiv 2309.15505, Sec. 4.2). Codes c in [0, K) are tokens c + 1, so that
0 is the start symbol: the decoder reads `shift_right(codes)` and predicts the codes' tokens.
"""
from __future__ import annotations

import functools

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from uvim.vit import AttentionBlock, Encoder, MlpBlock, learned_position_embedding

_KERNEL_INIT = nn.initializers.xavier_uniform()


def shift_right(codes_bl: jax.Array) -> jax.Array:
  """(B, L) codes in [0, K) -> the decoder's input tokens [0, c_1 + 1, ..., c_{L-1} + 1]."""
  tokens_bl = codes_bl.astype(jnp.int32) + 1
  return jnp.pad(tokens_bl, ((0, 0), (1, 0)))[:, :-1]


class _CrossAttention(nn.Module):
  """flax's MultiHeadDotProductAttention(q, kv) with the same parameters; with `decode` the
  key and value projections of `kv` go to the "cache" collection on the first call and are
  read from it afterwards, so decoding projects the encoder output once, not once per token."""
  num_heads: int
  dtype: jnp.dtype = jnp.float32
  decode: bool = False

  @nn.compact
  def __call__(self, q_bld: jax.Array, kv_bmd: jax.Array | None) -> jax.Array:
    width = q_bld.shape[-1]
    dense = functools.partial(nn.DenseGeneral, features=(self.num_heads, width // self.num_heads),
                              dtype=self.dtype, kernel_init=_KERNEL_INIT)
    query = dense(name="query")(q_bld)
    if self.decode and self.has_variable("cache", "key"):
      key, value = self.get_variable("cache", "key"), self.get_variable("cache", "value")
    else:
      key, value = dense(name="key")(kv_bmd), dense(name="value")(kv_bmd)
      if self.decode:
        self.put_variable("cache", "key", key)
        self.put_variable("cache", "value", value)
    h = nn.dot_product_attention(query, key, value, dtype=self.dtype)
    return nn.DenseGeneral(width, axis=(-2, -1), dtype=self.dtype, kernel_init=_KERNEL_INIT,
                           name="out")(h)


class DecoderBlock(nn.Module):
  """Pre-LN causal self-attention, cross-attention to the encoder output, MLP.

  The cross-attention sub-layer computes vit.AttentionBlock's x + Dropout(Attn(LN(x), encoded)),
  through `_CrossAttention` so that `decode` caches the encoder output's keys and values.
  """
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32
  decode: bool = False

  @nn.compact
  def __call__(self, x_bld: jax.Array, encoded_bnd: jax.Array | None, mask: jax.Array | None,
               train: bool = False) -> jax.Array:
    x_bld = AttentionBlock(self.num_heads, self.dropout, self.dtype, self.decode,
                           name="self_attention")(x_bld, mask=mask, train=train)
    h = nn.LayerNorm(dtype=self.dtype, name="cross_attention_norm")(x_bld)
    h = _CrossAttention(self.num_heads, self.dtype, self.decode, name="cross_attention")(
        h, encoded_bnd)
    x_bld = x_bld + nn.Dropout(self.dropout, deterministic=not train)(h)
    return MlpBlock(self.mlp_dim, self.dropout, self.dtype, name="mlp")(x_bld, train)


class Decoder(nn.Module):
  """Tokens (B, L) + encoder output -> fp32 logits (B, L, vocab_size), causal.

  With `decode` (collection "cache"): a call on `seq_len` tokens creates the cache (its
  logits are not meaningful), then each call takes one token (B, 1) at the cache's index.
  """
  vocab_size: int
  seq_len: int
  width: int
  depth: int
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, tokens_bl: jax.Array, encoded_bnd: jax.Array | None, train: bool = False,
               decode: bool = False) -> jax.Array:
    position_1ld = learned_position_embedding(self, "position_embedding", self.seq_len,
                                              self.width)
    mask = nn.make_causal_mask(tokens_bl)
    start = 0
    if decode:
      stepping = self.has_variable("cache", "index")  # False on the call creating the cache.
      index = self.variable("cache", "index", lambda: jnp.array(0, jnp.int32))
      if stepping:
        start = index.value
        index.value = index.value + 1
        mask = None  # The cached self-attention masks the positions not decoded yet.
    # As big_vision's vtt: the token embedding initialised N(0, 1).
    x_bld = nn.Embed(self.vocab_size, self.width, embedding_init=nn.initializers.normal(1.0),
                     name="token_embedding")(tokens_bl)
    position_1ld = jax.lax.dynamic_slice_in_dim(position_1ld, start, tokens_bl.shape[1], axis=1)
    x_bld = (x_bld + position_1ld).astype(self.dtype)
    x_bld = nn.Dropout(self.dropout, deterministic=not train)(x_bld)
    for i in range(self.depth):
      x_bld = DecoderBlock(self.num_heads, self.mlp_dim, self.dropout, self.dtype, decode,
                           name=f"block_{i}")(x_bld, encoded_bnd, mask, train)
    x_bld = nn.LayerNorm(dtype=self.dtype, name="norm")(x_bld)
    logits = nn.Dense(self.vocab_size, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                      bias_init=nn.initializers.zeros, name="logits")(x_bld)
    return logits.astype(jnp.float32)


class LanguageModel(nn.Module):
  """UViM's LM ("vtt"): a ViT encoder of the image, a causal decoder of the code tokens.

  The image (B, image_size, image_size, 3) in [-1, 1] is patch-embedded (conv, kernel =
  stride = patch_size), given a learned position embedding and run through a pre-LN ViT
  encoder (final LayerNorm). The decoder embeds tokens (vocab_size = codebook size + 1, token
  0 = start) with a learned position embedding through `decoder_depth` pre-LN blocks of causal
  self-attention, cross-attention to the encoder output and MLP, a LayerNorm and a
  zero-initialised logits Dense (uniform logits at init, as big_vision's vtt).

  KV-cached decoding (collection "cache"): `init_cache(encoded)` stores the cross-attention
  keys and values of the encoder output (computed once) and empty self-attention caches;
  each `decode_step(token_b1)` then costs one position.
  """
  vocab_size: int
  seq_len: int
  image_size: int = 512
  patch_size: int = 16
  width: int = 1024
  encoder_depth: int = 24
  decoder_depth: int = 24
  mlp_dim: int = 4096
  num_heads: int = 16
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    if self.image_size % self.patch_size:
      raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size "
                       f"{self.patch_size}.")
    self.patch_embedding = nn.Conv(self.width, (self.patch_size, self.patch_size),
                                   strides=self.patch_size, padding="VALID", dtype=self.dtype)
    self.encoder_position = learned_position_embedding(
        self, "encoder_position_embedding", (self.image_size // self.patch_size) ** 2,
        self.width)
    self.encoder = Encoder(self.encoder_depth, self.num_heads, self.mlp_dim, self.dropout,
                           self.dtype)
    self.decoder = Decoder(self.vocab_size, self.seq_len, self.width, self.decoder_depth,
                           self.num_heads, self.mlp_dim, self.dropout, self.dtype)

  def encode(self, image_bhwc: jax.Array, train: bool = False) -> jax.Array:
    """(B, H, W, 3) image in [-1, 1] -> (B, N, width) encoder output."""
    x_bhwd = self.patch_embedding(image_bhwc)
    x_bnd = einops.rearrange(x_bhwd, "b h w d -> b (h w) d")
    return self.encoder(x_bnd + self.encoder_position.astype(self.dtype), train)

  def decode(self, tokens_bl: jax.Array, encoded_bnd: jax.Array,
             train: bool = False) -> jax.Array:
    """Teacher forcing: tokens (B, L) = shift_right(codes) -> fp32 logits (B, L, V), causal."""
    return self.decoder(tokens_bl, encoded_bnd, train)

  def init_cache(self, encoded_bnd: jax.Array) -> None:
    """Creates the "cache" collection (apply with mutable=["cache"]) for `decode_step`."""
    tokens_bl = jnp.zeros((encoded_bnd.shape[0], self.seq_len), jnp.int32)
    self.decoder(tokens_bl, encoded_bnd, decode=True)

  def decode_step(self, token_b1: jax.Array) -> jax.Array:
    """The token (B, 1) at the cache's index -> fp32 logits (B, 1, V) of the next one."""
    return self.decoder(token_b1, None, decode=True)

  def __call__(self, image_bhwc: jax.Array, tokens_bl: jax.Array,
               train: bool = False) -> jax.Array:
    return self.decode(tokens_bl, self.encode(image_bhwc, train), train)
