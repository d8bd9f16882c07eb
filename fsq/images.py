"""Image conversions and grids shared by every stage, evaluator and script."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def to_model_range(image_uint8: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return image_uint8.astype(jnp.float32) / 127.5 - 1.0


def to_uint8(x: np.ndarray) -> np.ndarray:
  """[-1, 1] -> uint8 [0, 255], rounded and clipped."""
  return np.clip(np.round((np.asarray(x) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(rows: list[np.ndarray]) -> np.ndarray:
  """Rows of (N, H, W, 3) uint8 images -> one (rows * H, N * W, 3) image."""
  return np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
