"""MaskGIT's vector quantizer: a learned codebook with codebook, commitment and entropy losses."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fsq.quantizers.nearest import entropy_loss, nearest_codes


class VectorQuantizer(nn.Module):
  """VQ-VAE bottleneck as in MaskGIT's tokenizer (arXiv 2309.15505, Sec. 4, MaskGIT).

  Squared-Euclidean nearest codeword, straight-through gradient, loss
  ||sg(q) - z||^2 * commitment_cost + ||q - sg(z)||^2 + entropy_weight * entropy loss.
  The input's last dimension is the embedding dimension `dim` (256 in MaskGIT).
  """
  codebook_size: int = 1024
  dim: int = 256
  commitment_cost: float = 0.25
  entropy_weight: float = 0.1
  entropy_temperature: float = 0.01
  entropy_type: str = "softmax"
  chunk_size: int | None = None

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False) -> tuple[jax.Array, dict[str, Any]]:
    del train  # Same computation in training and evaluation; losses are always reported.
    if self.codebook_size < 2:
      raise ValueError(f"codebook_size must be >= 2, got {self.codebook_size}.")
    if z.shape[-1] != self.dim:
      raise ValueError(f"VectorQuantizer(dim={self.dim}) got inputs of width {z.shape[-1]}.")
    init = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")
    codebook = self.param("codebook", init, (self.codebook_size, z.shape[-1]))
    z_nd = z.reshape(-1, z.shape[-1]).astype(jnp.float32)
    with_entropy = self.entropy_weight > 0
    stats = nearest_codes(z_nd, codebook,
                          entropy_temperature=self.entropy_temperature if with_entropy else None,
                          entropy_type=self.entropy_type, chunk_size=self.chunk_size)
    q_nd = jnp.take(codebook, stats.indices, axis=0)
    commitment = jnp.mean((jax.lax.stop_gradient(q_nd) - z_nd) ** 2)
    codebook_loss = jnp.mean((q_nd - jax.lax.stop_gradient(z_nd)) ** 2)
    entropy = entropy_loss(stats) if with_entropy else jnp.zeros(())
    loss = self.commitment_cost * commitment + codebook_loss + self.entropy_weight * entropy
    z_q = z_nd + jax.lax.stop_gradient(q_nd - z_nd)
    aux = {"indices": stats.indices.reshape(z.shape[:-1]), "loss": loss,
           "commitment_loss": commitment, "codebook_loss": codebook_loss,
           "entropy_loss": entropy}
    return z_q.reshape(z.shape).astype(z.dtype), aux

  @property
  def latent_dim(self) -> int:
    """The width of the input this layer expects (and of its output)."""
    return self.dim

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """Indices -> codewords (the quantized vectors of `__call__`)."""
    return jnp.take(self.get_variable("params", "codebook"), indices, axis=0)
