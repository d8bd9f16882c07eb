"""UViM's vector quantizer: l2-normalised codewords learned by EMA, with codebook splitting."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fsq.quantizers.nearest import nearest_codes

STATE = "quantizer_state"  # The mutable collection holding the EMA sums and counts.


def split_codes(dictionary_kd: jax.Array, counts_k: jax.Array, rng: jax.Array,
                min_count: float, perturb: float) -> tuple[jax.Array, jax.Array]:
  """Replaces every code whose decayed count is below `min_count`.

  One at a time, the least used code becomes a copy of the most used one, perturbed by a
  multiplicative factor in [1 - perturb, 1 + perturb]; the two share its count and sum
  (UViM, Kolesnikov et al. 2022; big_vision's VQ-VAE ViT). Repeats until none is below.
  """
  def split_one(state):
    dictionary, counts, rng = state
    rng, sub = jax.random.split(rng)
    hi, lo = jnp.argmax(counts), jnp.argmin(counts)
    noise = jax.random.uniform(sub, dictionary.shape[1:], dictionary.dtype,
                               1.0 - perturb, 1.0 + perturb)
    half_sum, half_count = dictionary[hi] / 2, counts[hi] / 2
    dictionary = dictionary.at[lo].set(half_sum * noise).at[hi].set(half_sum)
    counts = counts.at[lo].set(half_count).at[hi].set(half_count)
    return dictionary, counts, rng

  dictionary_kd, counts_k, _ = jax.lax.while_loop(
      lambda s: jnp.any(s[1] < min_count), split_one, (dictionary_kd, counts_k, rng))
  return dictionary_kd, counts_k


class EMAVectorQuantizer(nn.Module):
  """UViM's VQ (arXiv 2309.15505, Sec. 4, UViM): standardised inputs, l2-normalised EMA codewords.

  Codeword k is sum_k / count_k, normalised, where both are exponential moving averages
  (momentum 0.995) of the inputs assigned to k and of their number, summed over the global
  batch. In training (`train=True`, collection "quantizer_state" mutable, rng stream "vq")
  the statistics are updated and, with `split=True`, dead codes are split off the most used
  one. Under `jax.jit` with a sharded batch the sums are global already; inside
  `shard_map`/`pmap` name the mapped axis in `axis_name` so they are summed over it.
  """
  codebook_size: int = 4096
  dim: int = 768
  momentum: float = 0.995
  min_count: float = 0.1
  split: bool = True
  perturb: float = 1e-3
  standardize: bool = True
  commitment_cost: float = 0.0
  axis_name: str | None = None
  chunk_size: int | None = None

  def _ema_variables(self, dim: int):
    def init_dictionary():
      return jax.random.normal(self.make_rng("params"), (self.codebook_size, dim)) / jnp.sqrt(
          self.codebook_size)
    dictionary = self.variable(STATE, "dictionary", init_dictionary)
    counts = self.variable(STATE, "counts", jnp.ones, (self.codebook_size,), jnp.float32)
    return dictionary, counts

  @staticmethod
  def codewords(dictionary_kd: jax.Array, counts_k: jax.Array) -> jax.Array:
    e = dictionary_kd / counts_k[:, None]
    return e / jnp.linalg.norm(e, axis=-1, keepdims=True)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False) -> tuple[jax.Array, dict[str, Any]]:
    if z.shape[-1] != self.dim:
      raise ValueError(f"EMAVectorQuantizer(dim={self.dim}) got inputs of width {z.shape[-1]}.")
    dictionary, counts = self._ema_variables(z.shape[-1])
    z_nd = z.reshape(-1, z.shape[-1]).astype(jnp.float32)
    if self.standardize:
      z_nd = jax.nn.standardize(z_nd, axis=-1)
    codebook = self.codewords(dictionary.value, counts.value)
    indices = nearest_codes(z_nd, codebook, chunk_size=self.chunk_size).indices
    q_nd = jnp.take(codebook, indices, axis=0)
    batch_counts = jnp.zeros((self.codebook_size,), jnp.float32).at[indices].add(1.0)
    if self.axis_name is not None:
      batch_counts = jax.lax.psum(batch_counts, self.axis_name)
    aux = {"indices": indices.reshape(z.shape[:-1]),
           "commitment_loss": jnp.mean((jax.lax.stop_gradient(q_nd) - z_nd) ** 2)}
    aux["loss"] = self.commitment_cost * aux["commitment_loss"]
    if train and not self.is_initializing():
      batch_sums = jnp.zeros_like(dictionary.value).at[indices].add(
          jax.lax.stop_gradient(z_nd))
      if self.axis_name is not None:
        batch_sums = jax.lax.psum(batch_sums, self.axis_name)
      new_dictionary = dictionary.value * self.momentum + batch_sums
      new_counts = counts.value * self.momentum + batch_counts
      if self.split:
        new_dictionary, new_counts = split_codes(
            new_dictionary, new_counts, self.make_rng("vq"), self.min_count, self.perturb)
      dictionary.value, counts.value = new_dictionary, new_counts
    aux["codebook_max_ratio"] = jnp.max(batch_counts) / jnp.sum(batch_counts)
    aux["codebook_zeros_ratio"] = jnp.mean(batch_counts == 0)
    z_q = z_nd + jax.lax.stop_gradient(q_nd - z_nd)
    return z_q.reshape(z.shape).astype(z.dtype), aux

  @property
  def latent_dim(self) -> int:
    """The width of the input this layer expects (and of its output)."""
    return self.dim

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """Indices -> the normalised codewords they name."""
    state = self.variables[STATE]
    return jnp.take(self.codewords(state["dictionary"], state["counts"]), indices, axis=0)
