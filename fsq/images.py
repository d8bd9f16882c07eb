"""Image conversions and grids shared by every stage, evaluator and script."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def to_model_range(image_uint8: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return image_uint8.astype(jnp.float32) / 127.5 - 1.0


def to_uint8(x: np.ndarray) -> np.ndarray:
  """[-1, 1] -> uint8 [0, 255], rounded and clipped."""
  return np.clip(np.round((np.asarray(x) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def map_batches(fn: Callable[[np.ndarray], Any], x: np.ndarray, size: int) -> Any:
  """fn over the rows of x in batches of `size`, the last one zero-padded so every call has one
  shape (one compiled program); fn's output (an array or a tuple of them) trimmed back to
  len(x) rows and concatenated on the host."""
  out = []
  for start in range(0, len(x), size):
    chunk = x[start:start + size]
    padded = np.pad(chunk, [(0, size - len(chunk))] + [(0, 0)] * (x.ndim - 1))
    out.append(jax.tree.map(lambda y, n=len(chunk): np.asarray(y)[:n], fn(padded)))
  return jax.tree.map(lambda *ys: np.concatenate(ys), *out)


def resize_nearest(maps_bhw: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """(B, H, W, ...) -> (B, *shape, ...): each output pixel takes the input pixel under its
  centre."""
  height, width = np.shape(maps_bhw)[1:3]
  rows = ((np.arange(shape[0]) + 0.5) * height / shape[0]).astype(int)
  columns = ((np.arange(shape[1]) + 0.5) * width / shape[1]).astype(int)
  return np.asarray(maps_bhw)[:, rows][:, :, columns]


def image_grid(rows: list[np.ndarray]) -> np.ndarray:
  """Rows of (N, H, W, 3) uint8 images -> one (rows * H, N * W, 3) image."""
  return np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)


def labelled(grid_hwc: np.ndarray, row_labels: list[str], scale: int = 4,
             margin: int = 96) -> np.ndarray:
  """A uint8 grid of equal-height rows upscaled `scale` x (nearest: every pixel a visible
  block) with each row's label written in a white margin on its left."""
  from PIL import Image, ImageDraw, ImageFont
  big = np.kron(np.asarray(grid_hwc), np.ones((scale, scale, 1), np.uint8))
  canvas = Image.new("RGB", (big.shape[1] + margin, big.shape[0]), "white")
  canvas.paste(Image.fromarray(big), (margin, 0))
  draw, row_height = ImageDraw.Draw(canvas), big.shape[0] // len(row_labels)
  font = ImageFont.load_default(size=14)
  for i, label in enumerate(row_labels):
    draw.text((4, i * row_height + row_height // 2 - 8), label, fill="black", font=font)
  return np.asarray(canvas)
