"""MaskGIT sampling and compression cost, each one compiled loop (pure functions).

`logits_fn(ids_bl) -> (B, L, V)` is the transformer's forward pass over [class, tokens];
only the first K (codebook) logits of image positions are used.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from maskgit.masking import decoding_mask_counts
from maskgit.transformer import Vocabulary

LogitsFn = Callable[[jax.Array], jax.Array]


def guided_logits(logits_fn: LogitsFn, class_ids_b: jax.Array, tokens_bs: jax.Array,
                  vocab: Vocabulary, guidance: float) -> jax.Array:
  """(B, S, K) image logits; with guidance a, l_c + a (l_c - l_uncond) (classifier-free).

  The unconditional pass replaces the class token by the mask token, as in training's label
  dropout; both passes run as one batch of 2B.
  """
  ids = jnp.concatenate([class_ids_b[:, None], tokens_bs], axis=1)
  if guidance == 0.0:
    return logits_fn(ids)[:, 1:, :vocab.codebook_size]
  uncond = ids.at[:, 0].set(vocab.mask_id)
  both = logits_fn(jnp.concatenate([ids, uncond], axis=0))[:, 1:, :vocab.codebook_size]
  cond, uncond = jnp.split(both, 2, axis=0)
  return cond + guidance * (cond - uncond)


def sample_categorical(rng: jax.Array, logits: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Draws one index per row of (..., K) logits; returns the (...) indices and log-probabilities.

  Inverse-CDF sampling with one uniform per row, on unnormalised weights exp(l - max l):
  jax.random.categorical draws K Gumbels per row, which on CPU costs more than the scenes
  transformer's forward pass. A flat cumsum over K is itself slow on CPU, so the CDF is taken
  in two levels: over sqrt(K)-sized block sums to find the block, then within that block.
  Rounding can put u past the last cumulative sum; the clips keep the index in range.
  """
  k = logits.shape[-1]
  block = int(np.ceil(np.sqrt(k)))
  num_blocks = -(-k // block)
  logits_max = jnp.max(logits, axis=-1, keepdims=True)
  pad = [(0, 0)] * (logits.ndim - 1) + [(0, num_blocks * block - k)]
  weights_nb = jnp.pad(jnp.exp(logits - logits_max), pad).reshape(
      *logits.shape[:-1], num_blocks, block)
  block_sums_n = weights_nb.sum(axis=-1)
  block_cdf_n = jnp.cumsum(block_sums_n, axis=-1)
  total = block_cdf_n[..., -1:]
  u = jax.random.uniform(rng, total.shape) * total
  j = jnp.minimum(jnp.sum(block_cdf_n < u, axis=-1), num_blocks - 1)
  in_block_b = jnp.take_along_axis(weights_nb, j[..., None, None], axis=-2)[..., 0, :]
  before = jnp.take_along_axis(block_cdf_n - block_sums_n, j[..., None], axis=-1)
  i = jnp.minimum(jnp.sum(before + jnp.cumsum(in_block_b, axis=-1) < u, axis=-1), block - 1)
  index = jnp.minimum(j * block + i, k - 1)
  chosen = jnp.take_along_axis(logits, index[..., None], axis=-1)
  return index, (chosen - logits_max - jnp.log(total))[..., 0]


def parallel_decode(logits_fn: LogitsFn, rng: jax.Array, labels_b: jax.Array, seq_len: int,
                    vocab: Vocabulary, num_steps: int = 12, choice_temperature: float = 4.5,
                    guidance: float = 0.0, temperature: float = 1.0) -> jax.Array:
  """Samples (B, S) image tokens in `num_steps` parallel steps (MaskGIT, section 3.2).

  Each step samples every masked token, then re-masks the least confident ones, so that
  the number still masked follows the cosine schedule. Confidence is the sampled token's
  log-probability plus Gumbel noise scaled by choice_temperature * (1 - (t + 1) / T).
  Returns the (T, B, S) tokens after each step; the last row is the sample.
  """
  counts = jnp.asarray(decoding_mask_counts(seq_len, num_steps), jnp.int32)
  class_ids = vocab.class_ids(labels_b)
  tokens = jnp.full((labels_b.shape[0], seq_len), vocab.mask_id, jnp.int32)

  def step(carry, t):
    tokens, rng = carry
    rng, rng_sample, rng_choice = jax.random.split(rng, 3)
    logits = guided_logits(logits_fn, class_ids, tokens, vocab, guidance) / temperature
    unknown = tokens == vocab.mask_id
    sampled, log_prob = sample_categorical(rng_sample, logits)
    sampled = jnp.where(unknown, sampled, tokens)
    confidence = jnp.where(unknown, log_prob, jnp.inf)
    anneal = choice_temperature * (1.0 - (t + 1) / num_steps)
    confidence = confidence + anneal * jax.random.gumbel(rng_choice, confidence.shape)
    ranks = jnp.argsort(jnp.argsort(confidence, axis=-1), axis=-1)
    tokens = jnp.where(ranks < counts[t], vocab.mask_id, sampled)
    return (tokens, rng), tokens

  _, history = jax.lax.scan(step, (tokens, rng), jnp.arange(num_steps))
  return history


def sequential_decode(logits_fn: LogitsFn, rng: jax.Array, labels_b: jax.Array, seq_len: int,
                      vocab: Vocabulary, guidance: float = 0.0) -> jax.Array:
  """Token-by-token sampling in raster order (S forward passes): the baseline decoding."""
  class_ids = vocab.class_ids(labels_b)
  tokens = jnp.full((labels_b.shape[0], seq_len), vocab.mask_id, jnp.int32)

  def step(i, carry):
    tokens, rng = carry
    rng, rng_sample = jax.random.split(rng)
    logits = guided_logits(logits_fn, class_ids, tokens, vocab, guidance)[:, i]
    return tokens.at[:, i].set(sample_categorical(rng_sample, logits)[0]), rng

  tokens, _ = jax.lax.fori_loop(0, seq_len, step, (tokens, rng))
  return tokens


def reveal_steps(seq_len: int, num_steps: int, seed: int = 0) -> np.ndarray:
  """(S,) the decoding step at which each position is revealed, under a fixed random order."""
  counts = decoding_mask_counts(seq_len, num_steps)
  revealed_by = seq_len - np.asarray(counts)  # Positions revealed after steps 0..T-1.
  order = np.random.default_rng(seed).permutation(seq_len)
  step_of_rank = np.searchsorted(revealed_by, np.arange(seq_len), side="right")
  steps = np.empty(seq_len, np.int32)
  steps[order] = step_of_rank
  return steps


def compression_bits(logits_fn: LogitsFn, tokens_bs: jax.Array, labels_b: jax.Array,
                     vocab: Vocabulary, num_steps: int = 12, seed: int = 0) -> jax.Array:
  """(B,) bits to code each image's tokens losslessly with the model (arXiv 2309.15505, Sec. 4, MaskGIT).

  As in M2T (Mentzer et al. 2023): a fixed, deterministic schedule reveals the tokens in
  `num_steps` groups (cosine counts, fixed random order); a group costs -log2 p(token) under
  the model conditioned on the class and every earlier group, which an entropy coder
  achieves to within a few bits per image.
  """
  steps = jnp.asarray(reveal_steps(tokens_bs.shape[1], num_steps, seed))
  class_ids = vocab.class_ids(labels_b)

  def step(t, bits):
    visible = jnp.where(steps < t, tokens_bs, vocab.mask_id)
    log_probs = jax.nn.log_softmax(
        guided_logits(logits_fn, class_ids, visible, vocab, 0.0), axis=-1)
    token_bits = -jnp.take_along_axis(log_probs, tokens_bs[..., None], axis=-1)[..., 0]
    return bits + jnp.sum(jnp.where(steps == t, token_bits, 0.0), axis=-1) / jnp.log(2.0)

  return jax.lax.fori_loop(0, num_steps, step, jnp.zeros(tokens_bs.shape[0], jnp.float32))
