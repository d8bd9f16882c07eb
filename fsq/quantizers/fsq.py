"""Finite Scalar Quantization (Mentzer et al. 2023, arXiv 2309.15505, section 3).

`FSQ` is the paper's reference API as a plain object (no parameters); `FSQQuantizer` is
the Flax module models use, with optional projections and several codebooks per position.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# Codebooks above this many floats are not built eagerly ([4]*16 would be 34 GB).
MAX_CODEBOOK_FLOATS = 2**28
_INT32_CODES = 2**31  # indices 0 .. 2^31 - 1 fit int32.
_FP32_DOT_CODES = 2**22  # codebook_size * (d + 1) up to this: indices by an exact fp32 dot.
SHIFTS = ("atanh", "tan")
BOUNDS = ("tanh", "ifsq")
# iFSQ's bound (arXiv 2601.17124): 2 * sigmoid(1.6 z) - 1, which is tanh(0.8 z).
IFSQ_SLOPE = 1.6


def round_ste(x: jax.Array) -> jax.Array:
  """Rounds with a straight-through (identity) gradient."""
  return x + jax.lax.stop_gradient(jnp.round(x) - x)


def validate_levels(levels: Any) -> tuple[int, ...]:
  """Returns `levels` as a tuple of ints, or raises a ValueError saying what is allowed."""
  if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence | np.ndarray):
    raise ValueError(f"FSQ levels must be a sequence of integers >= 2, got {levels!r}.")
  out = []
  for level in levels:
    if isinstance(level, bool) or not isinstance(level, int | np.integer):
      if not (isinstance(level, float | np.floating) and float(level).is_integer()):
        raise ValueError(f"FSQ levels must be integers >= 2, got {list(levels)!r}.")
    if int(level) < 2:
      raise ValueError(f"FSQ levels must be integers >= 2 (each channel needs two values), "
                       f"got {list(levels)!r}.")
    out.append(int(level))
  if not out:
    raise ValueError("FSQ levels must be a non-empty sequence of integers >= 2, got [].")
  return tuple(out)


class FSQ:
  """The implicit-codebook quantizer of the FSQ paper, section 3 and appendix A.1.

  Each of the d = len(levels) channels is bounded to (roughly) L_i values with tanh,
  rounded with a straight-through gradient and rescaled to [-1, 1]. The codebook is the
  product grid of size prod(L_i); it has no parameters.

  Non-finite inputs are not checked (a check would cost a reduction per call): NaN gives NaN
  codes (the training loop stops on the NaN loss that follows, fsq.train.loop) but an
  ordinary-looking index; +-Inf saturates to the extreme level, a finite code with zero
  gradient. Test `jnp.isfinite(z)` first where latents come from outside a training run.

  Args:
    levels: number of values per channel, each >= 2 (the paper recommends >= 5).
    eps: margin keeping tanh's range inside the rounding cells.
    shift: "atanh" (default, what the paper meant, confirmed by its first author) or
      "tan" (the paper's printed listing); they differ slightly for even L only.
    symmetric: even L gives codes symmetric around 0 (-1, -1 + 2/(L-1), ..., 1) as in
      arXiv 2411.19842, instead of the paper's asymmetric {-L/2, ..., L/2 - 1} / (L/2).
    bound: "tanh" (the paper's) or "ifsq": iFSQ's `2 * sigmoid(1.6 z) - 1` (arXiv
      2601.17124), a gentler squashing meant to match the bounded values to the levels. The
      same level sets, index semantics and guarantees; the shift is rescaled so z = 0 still
      lands on code 0.
  """

  def __init__(self, levels: Sequence[int], eps: float = 1e-3, shift: str = "atanh",
               symmetric: bool = False, bound: str = "tanh"):
    self.levels = validate_levels(levels)
    if shift not in SHIFTS:
      raise ValueError(f"shift must be one of {SHIFTS}, got {shift!r}.")
    if bound not in BOUNDS:
      raise ValueError(f"bound must be one of {BOUNDS}, got {bound!r}.")
    self.bound_name = bound
    if not 0.0 <= eps < 1.0:
      raise ValueError(f"eps must be in [0, 1), got {eps}.")
    self.eps, self.shift, self.symmetric = float(eps), shift, bool(symmetric)
    self.codebook_size = math.prod(self.levels)
    self.num_dimensions = len(self.levels)
    if self.codebook_size > _INT32_CODES and not jax.config.jax_enable_x64:
      raise ValueError(
          f"levels {list(self.levels)} give {self.codebook_size} codes, more than int32 "
          "indices hold (2^31); enable 64-bit JAX (jax.config.update('jax_enable_x64', True)) "
          "or use fewer/smaller levels or num_codebooks > 1.")
    self.index_dtype = jnp.int32 if self.codebook_size <= _INT32_CODES else jnp.int64
    levels_np = np.asarray(self.levels, np.float64)
    # Digit k of channel i in {0 .. L_i - 1} stands for code (k - center_i) / scale_i.
    if symmetric:
      self._center = (levels_np - 1) / 2
      self._scale = (levels_np - 1) / 2
    else:
      self._center = np.floor(levels_np / 2)
      self._scale = np.floor(levels_np / 2)
    self._basis = np.cumprod([1] + list(self.levels[:-1]), dtype=np.int64)
    self._half_l = (levels_np - 1) * (1 - self.eps) / 2
    # Symmetric even L rounds on the half-integer grid (digit - center is k + 1/2).
    self._frac = self._center % 1
    if symmetric:
      self._offset = np.zeros_like(levels_np)
      self._shift = np.zeros_like(levels_np)
    else:
      self._offset = np.where(levels_np % 2 == 0, 0.5, 0.0)
      ratio = self._offset / self._half_l
      if shift == "tan":
        self._shift = np.tan(ratio)
      else:
        # The shift puts z = 0 on code 0. For L = 2 code 0 is the top of the range
        # (ratio > 1, atanh undefined): shift 0 puts the decision threshold at z = 0.
        self._shift = np.arctanh(np.where(ratio < 1, ratio, 0.0))
    if bound == "ifsq":  # tanh(0.8 (z + shift / 0.8)) = tanh(z' + shift): the same threshold.
      self._shift = self._shift / (IFSQ_SLOPE / 2)

  def __repr__(self) -> str:
    return (f"FSQ(levels={list(self.levels)}, codebook_size={self.codebook_size}, "
            f"shift={self.shift!r}, symmetric={self.symmetric}, bound={self.bound_name!r})")

  def _check_last_dim(self, x: jax.Array, what: str) -> None:
    if x.shape[-1:] != (self.num_dimensions,):
      raise ValueError(f"{what} must have last dimension {self.num_dimensions} "
                       f"(one per level of {list(self.levels)}), got shape {x.shape}.")

  def bound(self, z: jax.Array) -> jax.Array:
    """Squashes z (in fp32) so that rounding gives L_i integers per channel, centred on 0."""
    self._check_last_dim(z, "FSQ input")
    z = jnp.asarray(z, jnp.float32) + jnp.asarray(self._shift, jnp.float32)
    if self.bound_name == "ifsq":
      squashed = 2.0 * jax.nn.sigmoid(IFSQ_SLOPE * z) - 1.0
    else:
      squashed = jnp.tanh(z)
    return (squashed * jnp.asarray(self._half_l, jnp.float32)
            - jnp.asarray(self._offset, jnp.float32))

  def _rounded(self, z: jax.Array) -> jax.Array:
    """round(bound(z)) on the integer grid of digit - center + frac (straight-through)."""
    return round_ste(self.bound(z) + jnp.asarray(self._frac, jnp.float32))

  def _to_codes(self, rounded: jax.Array) -> jax.Array:
    return ((rounded - jnp.asarray(self._frac, jnp.float32))
            / jnp.asarray(self._scale, jnp.float32))

  def quantize(self, z: jax.Array) -> jax.Array:
    """Codes in [-1, 1] (fp32) with straight-through gradients; z has last dim d."""
    return self._to_codes(self._rounded(z))

  def codes_to_digits(self, codes: jax.Array) -> jax.Array:
    """Integer digits in {0 .. L_i - 1}; rounds first, so bf16/fp16 codes map exactly."""
    self._check_last_dim(codes, "codes")
    codes = jnp.asarray(codes, jnp.float32)
    digits = jnp.round(codes * jnp.asarray(self._scale, jnp.float32)
                       + jnp.asarray(self._center, jnp.float32))
    return jnp.clip(digits, 0, jnp.asarray(np.asarray(self.levels) - 1)).astype(self.index_dtype)

  def codes_to_indexes(self, codes: jax.Array) -> jax.Array:
    """Index = sum_i digit_i * basis_i, the first channel being the least significant."""
    return self._digits_to_indexes(self.codes_to_digits(codes))

  def _digits_to_indexes(self, digits: jax.Array) -> jax.Array:
    return jnp.sum(digits * jnp.asarray(self._basis, self.index_dtype), axis=-1)

  def indexes_to_codes(self, indices: jax.Array) -> jax.Array:
    """Inverse of `codes_to_indexes`: (...,) integers -> (..., d) fp32 codes."""
    indices = jnp.asarray(indices)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
      raise ValueError(f"indices must be integers, got dtype {indices.dtype}.")
    indices = indices.astype(self.index_dtype)[..., None]
    digits = (indices // jnp.asarray(self._basis, self.index_dtype)) % jnp.asarray(
        self.levels, self.index_dtype)
    return ((digits.astype(jnp.float32) - jnp.asarray(self._center, jnp.float32))
            / jnp.asarray(self._scale, jnp.float32))

  @property
  def codebook(self) -> jax.Array:
    """All prod(L) codes, shape (codebook_size, d), first channel varying fastest."""
    if self.codebook_size * self.num_dimensions > MAX_CODEBOOK_FLOATS:
      raise ValueError(
          f"the codebook of levels {list(self.levels)} has {self.codebook_size} rows; "
          "building it would take "
          f"{self.codebook_size * self.num_dimensions * 4 / 2**30:.1f} GiB. Use "
          "indexes_to_codes on the indices you need instead.")
    return self.indexes_to_codes(jnp.arange(self.codebook_size, dtype=self.index_dtype))

  def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(codes, indices) of z; codes keep z's dtype, indices come from the fp32 rounding."""
    rounded = self._rounded(z)
    codes = self._to_codes(rounded)
    if self.codebook_size * (self.num_dimensions + 1) <= _FP32_DOT_CODES:
      # Why: when both the codes and an index reduction read tanh's output, XLA CPU
      # materialises it in a separate kernel; reading the index off the finished codes with
      # one matmul keeps a single elementwise pass (1.3-1.5x faster, benchmarks/quantizers).
      # Index = sum_i (code_i * scale_i + center_i) * basis_i; each term's fp32 error is at
      # most 2^-24 * codebook_size, so d + 1 of them stay under 1/4 and rounding is exact.
      weights = jnp.asarray(self._scale * self._basis, jnp.float32)
      offset = float(np.dot(self._center, self._basis))
      flat = jnp.dot(jax.lax.stop_gradient(codes), weights,
                     precision=jax.lax.Precision.HIGHEST)
      indices = jnp.round(flat + offset).astype(self.index_dtype)
    else:
      digits = jax.lax.stop_gradient(rounded) + jnp.asarray(self._center - self._frac,
                                                            jnp.float32)
      indices = self._digits_to_indexes(digits.astype(self.index_dtype))
    return codes.astype(jnp.asarray(z).dtype), indices


class FSQQuantizer(nn.Module):
  """FSQ as a layer: (..., width) -> (quantized (..., width), aux with indices).

  Beyond the paper's listing: with `dim` (the model width) different from
  `num_codebooks * len(levels)` the input is projected down and the codes back up (Dense
  layers); `num_codebooks` splits the channels into groups, each quantized on the same
  grid (several indices per position); and `num_stages > 1` is a residual FSQ where stage
  s quantizes the previous residual divided by (L - 1)^-s, so each stage refines the last
  at a finer scale (as vector-quantize-pytorch's ResidualFSQ does).

  aux["indices"] has shape (...) for one codebook and stage, else
  (..., num_codebooks * num_stages), codebook-major. FSQ has no auxiliary loss:
  aux["loss"] is 0.
  """
  levels: Sequence[int]
  dim: int | None = None
  num_codebooks: int = 1
  num_stages: int = 1
  shift: str = "atanh"
  symmetric: bool = False
  eps: float = 1e-3
  bound: str = "tanh"

  def setup(self):
    if self.num_codebooks < 1 or self.num_stages < 1:
      raise ValueError("num_codebooks and num_stages must be >= 1, got "
                       f"{self.num_codebooks} and {self.num_stages}.")
    self.fsq = FSQ(self.levels, eps=self.eps, shift=self.shift, symmetric=self.symmetric,
                   bound=self.bound)
    self.inner = self.num_codebooks * self.fsq.num_dimensions
    self.projected = self.dim is not None and self.dim != self.inner
    if self.projected:
      self.project_in = nn.Dense(self.inner)
      self.project_out = nn.Dense(self.dim)
    levels = np.asarray(self.fsq.levels, np.float64)
    self.stage_scales = np.stack([(levels - 1) ** -s for s in range(self.num_stages)])

  @property
  def codebook_size(self) -> int:
    return math.prod(validate_levels(self.levels))

  @property
  def latent_dim(self) -> int:
    """The width of the input this layer expects (and of its output)."""
    if self.dim is not None:
      return self.dim
    return self.num_codebooks * len(validate_levels(self.levels))

  @property
  def tokens_per_position(self) -> int:
    return self.num_codebooks * self.num_stages

  def __call__(self, z: jax.Array, train: bool = False) -> tuple[jax.Array, dict[str, Any]]:
    del train  # FSQ behaves the same in training and evaluation.
    expected = self.dim if self.projected else self.inner
    if z.shape[-1] != expected:
      raise ValueError(f"FSQQuantizer input must have last dimension {expected} "
                       f"(levels {list(self.fsq.levels)}, num_codebooks {self.num_codebooks}, "
                       f"dim {self.dim}), got shape {z.shape}.")
    z_in = self.project_in(z) if self.projected else z
    residual = z_in.reshape(*z_in.shape[:-1], self.num_codebooks, self.fsq.num_dimensions)
    residual = residual.astype(jnp.float32)
    codes, indices = jnp.zeros_like(residual), []
    for scale in self.stage_scales:
      scale = jnp.asarray(scale, jnp.float32)
      stage_codes, stage_indices = self.fsq(residual / scale)
      indices.append(stage_indices)
      residual = residual - jax.lax.stop_gradient(stage_codes * scale)
      codes = codes + stage_codes * scale
    codes = codes.reshape(*codes.shape[:-2], self.inner).astype(z.dtype)
    z_q = self.project_out(codes) if self.projected else codes
    return z_q, {"indices": self._pack(jnp.stack(indices, axis=-1)),
                 "loss": jnp.zeros((), jnp.float32)}

  def _pack(self, indices_ncs: jax.Array) -> jax.Array:
    indices = indices_ncs.reshape(*indices_ncs.shape[:-2], self.tokens_per_position)
    return indices[..., 0] if self.tokens_per_position == 1 else indices

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """Indices from `__call__` -> the quantized vectors it returned."""
    if self.tokens_per_position == 1:
      indices = indices[..., None]
    indices = indices.reshape(*indices.shape[:-1], self.num_codebooks, self.num_stages)
    stage_codes = self.fsq.indexes_to_codes(indices)  # (..., codebooks, stages, d)
    codes = jnp.sum(stage_codes * jnp.asarray(self.stage_scales, jnp.float32), axis=-2)
    codes = codes.reshape(*codes.shape[:-2], self.inner)
    return self.project_out(codes) if self.projected else codes
