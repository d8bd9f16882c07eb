"""Optimizers and schedules from a config (`config.optax`), through optax.

Names: adam, adamw, adafactor (optax's own), sgd (momentum b1) and bv_adafactor, big_vision's
Adafactor as UViM trained with it (arXiv 2309.15505, Sec. 4.2): factored second moments with
decay `min(beta2_cap, 1 - t^-0.8)`, no parameter-scale multiplication, no update clipping,
momentum b1 kept in `momentum_dtype`, then `lr` and `lr_mults`, plus decoupled weight decay
`weight_decay * param` (not scaled by lr), all times the schedule's factor in [0, 1].

`lr_mults` works for every name: `(regex, multiplier)` pairs; the first regex that fully matches a
parameter's "/"-joined path (e.g. "encoder/Dense_0/kernel") scales its update, others keep 1.0.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import ml_collections
import optax

OPTIMIZERS = ("adam", "adamw", "adafactor", "sgd", "bv_adafactor")
SCHEDULES = ("constant", "cosine")


def schedule(config: ml_collections.ConfigDict, total_steps: int, *,
             peak: float | None = None) -> optax.Schedule:
  """Linear warmup from 0 to `peak` (default lr), then constant or cosine to `peak * end_factor`."""
  if config.schedule not in SCHEDULES:
    raise ValueError(f"optax.schedule must be one of {SCHEDULES}, got {config.schedule!r}.")
  peak = config.lr if peak is None else peak
  warmup = min(config.warmup_steps, total_steps)
  if config.schedule == "constant":
    decay = optax.constant_schedule(peak)
  else:
    decay = optax.cosine_decay_schedule(peak, max(total_steps - warmup, 1),
                                        alpha=config.get("end_factor", 0.0))
  if warmup == 0:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup])


def decay_mask(params) -> object:
  """Weight decay on matrices and kernels only, not on biases, norms or scalars."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def _path_name(path) -> str:
  return jax.tree_util.keystr(path, simple=True, separator="/")


def scale_by_lr_mults(lr_mults) -> optax.GradientTransformation:
  """Scales each update by the multiplier of the first `(regex, mult)` fully matching its path."""
  rules = [(re.compile(pattern), float(mult)) for pattern, mult in lr_mults]

  def mult_of(path) -> float:
    name = _path_name(path)
    return next((mult for regex, mult in rules if regex.fullmatch(name)), 1.0)

  def init_fn(params):
    names = [_path_name(path) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    unused = [regex.pattern for regex, _ in rules if not any(map(regex.fullmatch, names))]
    if unused:
      raise ValueError(f"optax.lr_mults patterns {unused} match no parameter; paths look like "
                       f"{names[:3]}.")
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    del params
    scaled = jax.tree_util.tree_map_with_path(
        lambda path, u: u if mult_of(path) == 1.0 else u * mult_of(path), updates)
    return scaled, state

  return optax.GradientTransformation(init_fn, update_fn)


def scale_by_bv_adafactor(beta2_cap: float, momentum: float, momentum_dtype: str,
                          min_dim_size_to_factor: int) -> optax.GradientTransformation:
  """big_vision's Adafactor direction: factored RMS scaling with a capped decay, then momentum."""
  # big_vision/optax.py: the second-moment decay 1 - t^-0.8 tends to 1 and would freeze the
  # statistics, so it is capped. Unlike optax.adafactor there is no multiplication by the
  # parameter's RMS (floored at 1e-3, which keeps zero-initialised heads near zero) and no update
  # clipping.
  def decay_rate(step, exponent):
    t = jnp.asarray(step, jnp.float32) + 1.0
    return jnp.minimum(beta2_cap, 1.0 - t ** -exponent)

  rms = optax.scale_by_factored_rms(decay_rate=0.8, min_dim_size_to_factor=min_dim_size_to_factor,
                                    epsilon=1e-30, decay_rate_fn=decay_rate)
  if not momentum:
    return rms
  return optax.chain(rms, optax.ema(momentum, debias=False,
                                    accumulator_dtype=jnp.dtype(momentum_dtype)))


def _bv_adafactor(config: ml_collections.ConfigDict, total_steps: int
                  ) -> optax.GradientTransformation:
  """bv_adafactor's direction, times lr and lr_mults, plus weight decay, times the schedule."""
  # big_vision/optax.py `make`: the weight decay is added after lr and lr_mults, so it scales
  # with the schedule's factor only, never with lr.
  return optax.chain(
      scale_by_bv_adafactor(config.beta2_cap, config.b1, config.momentum_dtype,
                            config.min_dim_size_to_factor),
      optax.scale(config.lr),
      scale_by_lr_mults(config.lr_mults),
      optax.add_decayed_weights(config.weight_decay, decay_mask),
      optax.scale_by_schedule(schedule(config, total_steps, peak=1.0)),
      optax.scale(-1.0))


def make_optimizer(config: ml_collections.ConfigDict, total_steps: int
                   ) -> optax.GradientTransformation:
  """One of `OPTIMIZERS` with the schedule, lr_mults, clipping and decay mask."""
  if config.name not in OPTIMIZERS:
    raise ValueError(f"optax.name must be one of {OPTIMIZERS}, got {config.name!r}.")
  lr_mults = config.get("lr_mults", ())
  if config.name == "bv_adafactor":
    opt = _bv_adafactor(config, total_steps)
  else:
    lr = schedule(config, total_steps)
    if config.name == "adam":
      opt = optax.adam(lr, b1=config.b1, b2=config.b2)
    elif config.name == "adamw":
      opt = optax.adamw(lr, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay,
                        mask=decay_mask)
    elif config.name == "sgd":
      opt = optax.sgd(lr, momentum=config.b1 or None)
    else:
      opt = optax.adafactor(lr, weight_decay_rate=config.weight_decay or None,
                            weight_decay_mask=decay_mask)
    if lr_mults:
      opt = optax.chain(opt, scale_by_lr_mults(lr_mults))
  if config.grad_clip:
    opt = optax.chain(optax.clip_by_global_norm(config.grad_clip), opt)
  return opt


def default_optax(**overrides) -> ml_collections.ConfigDict:
  """The optimizer block every config carries; stages override what they need.

  `lr_mults` applies to every name; `beta2_cap`, `momentum_dtype` and `min_dim_size_to_factor`
  only to bv_adafactor (UViM: beta2_cap 0.95, b1 0.9, lr 1e-3, weight_decay 1e-5 or 1e-6).
  """
  config = dict(name="adam", lr=1e-4, b1=0.9, b2=0.99, weight_decay=0.0, warmup_steps=0,
                schedule="constant", end_factor=0.0, grad_clip=0.0, lr_mults=(),
                beta2_cap=0.95, momentum_dtype="float32", min_dim_size_to_factor=32)
  unknown = set(overrides) - set(config)
  if unknown:
    raise ValueError(f"unknown optax keys {sorted(unknown)}; known: {sorted(config)}.")
  return ml_collections.ConfigDict({**config, **overrides})
