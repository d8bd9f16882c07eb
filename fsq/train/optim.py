"""Optimizers and schedules from a config (`config.optax`), through optax."""
from __future__ import annotations

import jax
import ml_collections
import optax

OPTIMIZERS = ("adam", "adamw", "adafactor", "sgd")
SCHEDULES = ("constant", "cosine")


def schedule(config: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `lr`, then constant or cosine decay to `lr * end_factor`."""
  if config.schedule not in SCHEDULES:
    raise ValueError(f"optax.schedule must be one of {SCHEDULES}, got {config.schedule!r}.")
  warmup = min(config.warmup_steps, total_steps)
  if config.schedule == "constant":
    decay = optax.constant_schedule(config.lr)
  else:
    decay = optax.cosine_decay_schedule(config.lr, max(total_steps - warmup, 1),
                                        alpha=config.get("end_factor", 0.0))
  if warmup == 0:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, config.lr, warmup), decay], [warmup])


def decay_mask(params) -> object:
  """Weight decay on matrices and kernels only, not on biases, norms or scalars."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(config: ml_collections.ConfigDict, total_steps: int
                   ) -> optax.GradientTransformation:
  """adam | adamw | adafactor | sgd (momentum b1) with the schedule, clipping, decay mask."""
  if config.name not in OPTIMIZERS:
    raise ValueError(f"optax.name must be one of {OPTIMIZERS}, got {config.name!r}.")
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
  if config.grad_clip:
    opt = optax.chain(optax.clip_by_global_norm(config.grad_clip), opt)
  return opt


def default_optax(**overrides) -> ml_collections.ConfigDict:
  """The optimizer block every config carries; stages override what they need."""
  config = dict(name="adam", lr=1e-4, b1=0.9, b2=0.99, weight_decay=0.0, warmup_steps=0,
                schedule="constant", end_factor=0.0, grad_clip=0.0)
  unknown = set(overrides) - set(config)
  if unknown:
    raise ValueError(f"unknown optax keys {sorted(unknown)}; known: {sorted(config)}.")
  return ml_collections.ConfigDict({**config, **overrides})
