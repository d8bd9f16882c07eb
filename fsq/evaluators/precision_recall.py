"""Improved precision and recall (Kynkäänniemi et al. 2019), as the ADM evaluation suite runs it.

Each feature set spans a manifold: the union of balls around its points, each ball reaching
the point's k-th nearest neighbour (k = 3, the point itself not counted). Precision is the
fraction of generated samples inside the real manifold; recall is the fraction of real
samples inside the generated one.

Distances are computed block by block, so 50k x 2048 features need memory for one
`block_size` x `block_size` distance matrix, not 50k x 50k.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from fsq.quantizers.nearest import squared_distances


def _squared_distances(a_md: jax.Array, b_nd: jax.Array) -> jax.Array:
  return jnp.maximum(squared_distances(a_md, b_nd, jax.lax.Precision.HIGHEST), 0.0)


@functools.partial(jax.jit, static_argnames="count")
def _merge_smallest(best: jax.Array, a_md: jax.Array, b_nd: jax.Array, count: int) -> jax.Array:
  """Per row of `a`: the `count` smallest of `best` and of its distances to all of `b`."""
  candidates = jnp.concatenate([best, _squared_distances(a_md, b_nd)], axis=1)
  return -jax.lax.top_k(-candidates, count)[0]


@jax.jit
def _inside(a_md, radii_a_m, b_nd, radii_b_n) -> tuple[jax.Array, jax.Array]:
  """Which rows of `a` lie in some ball of `b`, and which rows of `b` in some ball of `a`.

  Balls are closed (distance <= radius), as in the ADM suite.
  """
  d2 = _squared_distances(a_md, b_nd)
  return (jnp.any(d2 <= radii_b_n[None, :], axis=1), jnp.any(d2 <= radii_a_m[:, None], axis=0))


def _blocks(n: int, block_size: int):
  return [slice(start, min(start + block_size, n)) for start in range(0, n, block_size)]


def manifold_radii(features_nd: np.ndarray, k: int = 3, block_size: int = 5000) -> np.ndarray:
  """Squared distance from each point to its k-th nearest neighbour in the set, (N,) float32."""
  features_nd = np.asarray(features_nd, np.float32)
  n = features_nd.shape[0]
  if n <= k:
    raise ValueError(f"k={k} nearest neighbours need more than {k} points, got {n}.")
  radii = np.empty(n, np.float32)
  for rows in _blocks(n, block_size):
    # k + 1 smallest: the point itself is its own nearest neighbour at distance 0.
    best = jnp.full((rows.stop - rows.start, k + 1), jnp.inf, jnp.float32)
    for cols in _blocks(n, block_size):
      best = _merge_smallest(best, features_nd[rows], features_nd[cols], k + 1)
    radii[rows] = np.asarray(best[:, k])
  return radii


def precision_recall(real_nd: np.ndarray, fake_nd: np.ndarray, k: int = 3,
                     block_size: int = 5000) -> tuple[float, float]:
  """(precision, recall) of generated features `fake_nd` against real features `real_nd`."""
  real_nd, fake_nd = np.asarray(real_nd, np.float32), np.asarray(fake_nd, np.float32)
  radii_real = manifold_radii(real_nd, k, block_size)
  radii_fake = manifold_radii(fake_nd, k, block_size)
  real_inside = np.zeros(len(real_nd), bool)
  fake_inside = np.zeros(len(fake_nd), bool)
  for rows in _blocks(len(real_nd), block_size):
    for cols in _blocks(len(fake_nd), block_size):
      r_in, f_in = _inside(real_nd[rows], radii_real[rows], fake_nd[cols], radii_fake[cols])
      real_inside[rows] |= np.asarray(r_in)
      fake_inside[cols] |= np.asarray(f_in)
  return float(fake_inside.mean()), float(real_inside.mean())
