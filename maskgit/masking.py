"""Masking schedules of MaskGIT training and decoding (pure functions)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# The FSQ paper lower-bounds the masking ratio at 45% (arXiv 2309.15505, Sec. 4, MaskGIT): with r drawn in
# [R_MIN, 1], cos(pi/2 * (1 - r)) >= 0.45. Without it, training was unstable.
MIN_MASK_RATIO = 0.45
R_MIN = 1.0 - math.acos(MIN_MASK_RATIO) * 2.0 / math.pi


def cosine_mask_ratio(r: jax.Array) -> jax.Array:
  """Fraction of tokens masked at schedule position r in [0, 1] (1: everything masked)."""
  return jnp.cos(jnp.pi / 2.0 * (1.0 - r))


def training_mask(rng: jax.Array, batch: int, seq_len: int, r_min: float = R_MIN) -> jax.Array:
  """(B, S) bool, True where masked: ceil(cos(pi/2 (1 - r)) S) random tokens, r ~ U[r_min, 1]."""
  rng_ratio, rng_order = jax.random.split(rng)
  r = jax.random.uniform(rng_ratio, (batch, 1), minval=r_min, maxval=1.0)
  num_masked = jnp.clip(jnp.ceil(cosine_mask_ratio(r) * seq_len), 1, seq_len)
  # The num_masked smallest of S uniform scores are a uniformly random subset.
  scores = jax.random.uniform(rng_order, (batch, seq_len))
  ranks = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
  return ranks < num_masked


def drop_labels(rng: jax.Array, class_ids_b: jax.Array, mask_id: int, rate: float) -> jax.Array:
  """Replaces a fraction `rate` of class tokens by the mask token (classifier-free guidance)."""
  drop = jax.random.bernoulli(rng, rate, class_ids_b.shape)
  return jnp.where(drop, mask_id, class_ids_b)


def decoding_mask_counts(seq_len: int, num_steps: int) -> list[int]:
  """Tokens still masked after each of the T decoding steps (cosine schedule; the last is 0).

  As MaskGIT's parallel decoding: floor(S cos(pi/2 (t + 1) / T)), revealing at least one
  token per step and keeping at least one masked until the last step.
  """
  counts, masked = [], seq_len
  for t in range(num_steps - 1):
    target = math.floor(seq_len * math.cos(math.pi / 2.0 * (t + 1) / num_steps))
    masked = max(1, min(masked - 1, target))
    counts.append(masked)
  return counts + [0]
