"""Optimizer configs: schedules, big_vision's Adafactor (bv_adafactor) and lr_mults."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from fsq.train.optim import default_optax, make_optimizer, schedule

EPS = 1e-30  # big_vision's Adafactor epsilon, added to the squared gradients.


def _config_updates(config, params, grads, steps=1):
  """The last updates of `steps` steps of `make_optimizer(config)` with the same `grads`."""
  return _updates(make_optimizer(config, total_steps=100), params, grads, steps)


def _updates(tx, params, grads, steps=1):
  """The last updates of `steps` steps of `tx` with the same `grads`."""
  state = tx.init(params)
  for _ in range(steps):
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return jax.tree.map(np.asarray, updates)


# (a) Schedules.

def test_warmup_is_linear_from_zero_to_lr():
  lr = schedule(default_optax(lr=2e-3, warmup_steps=10, schedule="constant"), total_steps=100)
  np.testing.assert_allclose([lr(0), lr(5), lr(10), lr(50), lr(100)],
                             [0.0, 1e-3, 2e-3, 2e-3, 2e-3], rtol=1e-6)


def test_cosine_reaches_end_factor_at_total_steps():
  config = default_optax(lr=1e-3, warmup_steps=20, schedule="cosine", end_factor=0.1)
  lr = schedule(config, total_steps=100)
  # Halfway through the 80 decay steps the cosine sits midway between lr and lr * end_factor.
  np.testing.assert_allclose([lr(20), lr(60), lr(100), lr(150)],
                             [1e-3, 0.55e-3, 1e-4, 1e-4], rtol=1e-5)


def test_constant_stays_at_lr():
  lr = schedule(default_optax(lr=3e-4), total_steps=100)
  np.testing.assert_allclose([lr(0), lr(99), lr(1000)], [3e-4] * 3, rtol=1e-7)


def test_warmup_longer_than_training_is_clipped():
  lr = schedule(default_optax(lr=1e-3, warmup_steps=400, schedule="cosine"), total_steps=100)
  # Warmup is clipped to 100 steps: halfway is lr / 2 (not lr / 8), the end is lr.
  np.testing.assert_allclose([lr(0), lr(50), lr(100)], [0.0, 5e-4, 1e-3], rtol=1e-6)


# (b) A zero-initialised head learns with bv_adafactor.

class _ZeroHeadNet(nn.Module):
  """A UViM-like model in miniature: its output layer starts at zero."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(32)(x))
    return nn.Dense(4, kernel_init=nn.initializers.zeros)(x)


def _train_zero_head(config, steps=20):
  """Regression to a linear target; returns (first loss, last loss, final head kernel)."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 8)).astype(np.float32)
  y = x @ rng.normal(size=(8, 4)).astype(np.float32)
  model = _ZeroHeadNet()
  params = model.init(jax.random.key(0), x)["params"]
  tx = make_optimizer(config, total_steps=steps)

  def loss_fn(p):
    return jnp.mean((model.apply({"params": p}, x) - y) ** 2)

  @jax.jit
  def step(params, state):
    grads = jax.grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  first, state = loss_fn(params), tx.init(params)
  for _ in range(steps):
    params, state = step(params, state)
  return float(first), float(loss_fn(params)), np.asarray(params["Dense_1"]["kernel"])


def test_bv_adafactor_trains_a_zero_initialised_head():
  first, last, head = _train_zero_head(default_optax(name="bv_adafactor", lr=3e-2))
  assert np.abs(head).max() > 0.1
  assert last < first / 4  # 8.5 -> 1.0 observed.


def test_optax_adafactor_keeps_a_zero_initialised_head_near_zero():
  # The failure bv_adafactor exists for: updates scaled by max(parameter RMS, 1e-3) = 1e-3.
  first, last, head = _train_zero_head(default_optax(name="adafactor", lr=3e-2))
  assert np.abs(head).max() < 1e-2
  assert last > 0.98 * first


# (c) bv_adafactor against a hand computation.

def _np_rms_direction(grad, v, decay):
  """Adafactor's g / sqrt(v_hat) and the new statistics; factored for matrices."""
  sq = grad.astype(np.float64) ** 2 + EPS
  if grad.ndim == 2:  # Rows and columns of the (3, 4) matrix; v_hat = R C^T / mean(R).
    rows = decay * v[0] + (1 - decay) * sq.mean(axis=1)
    cols = decay * v[1] + (1 - decay) * sq.mean(axis=0)
    return grad / np.sqrt(np.outer(rows, cols) / rows.mean()), (rows, cols)
  v = decay * v + (1 - decay) * sq
  return grad / np.sqrt(v), v


def _params_and_grads():
  rng = np.random.default_rng(1)
  params = {"w": rng.normal(size=(3, 4)).astype(np.float32),
            "b": rng.normal(size=(5,)).astype(np.float32)}
  grads = {"w": rng.normal(size=(3, 4)).astype(np.float32),
           "b": rng.normal(size=(5,)).astype(np.float32)}
  return params, grads


def test_bv_adafactor_first_update_by_hand():
  params, grads = _params_and_grads()
  config = default_optax(name="bv_adafactor", lr=0.01, weight_decay=0.1, min_dim_size_to_factor=2)
  updates = _config_updates(config, params, grads)
  # Step 0: second-moment decay 0, momentum 0.1 * direction, schedule factor 1.
  direction_w, _ = _np_rms_direction(grads["w"], (0.0, 0.0), 0.0)
  direction_b, _ = _np_rms_direction(grads["b"], 0.0, 0.0)
  np.testing.assert_allclose(updates["w"], -(0.01 * 0.1 * direction_w + 0.1 * params["w"]),
                             rtol=1e-6)
  np.testing.assert_allclose(updates["b"], -0.01 * 0.1 * direction_b, rtol=1e-6)  # No decay.


def test_bv_adafactor_second_update_caps_decay_and_scales_decay_by_schedule():
  params, grads = _params_and_grads()
  rng = np.random.default_rng(2)
  grads2 = jax.tree.map(lambda g: rng.normal(size=g.shape).astype(np.float32), grads)
  config = default_optax(name="bv_adafactor", lr=0.01, weight_decay=0.1, beta2_cap=0.3,
                         warmup_steps=4, min_dim_size_to_factor=2)
  tx = make_optimizer(config, total_steps=100)
  state = tx.init(params)
  updates, state = tx.update(grads, state, params)
  np.testing.assert_array_equal(updates["w"], 0.0)  # Warmup factor 0 at step 0.
  params2 = optax.apply_updates(params, updates)
  updates, _ = tx.update(grads2, state, params2)
  # Step 1: decay min(0.3, 1 - 2^-0.8 = 0.43) = 0.3; warmup factor 1/4 on lr and weight decay.
  for name, v0 in (("w", (0.0, 0.0)), ("b", 0.0)):
    d1, v1 = _np_rms_direction(grads[name], v0, 0.0)
    d2, _ = _np_rms_direction(grads2[name], v1, 0.3)
    momentum = 0.9 * 0.1 * d1 + 0.1 * d2
    decay = 0.1 * params[name] if name == "w" else 0.0
    np.testing.assert_allclose(updates[name], -0.25 * (0.01 * momentum + decay), rtol=1e-5)


def test_bv_adafactor_momentum_dtype():
  params, _ = _params_and_grads()
  tx = make_optimizer(default_optax(name="bv_adafactor", momentum_dtype="bfloat16"), 10)
  ema = optax.tree_utils.tree_get(tx.init(params), "ema")
  assert {x.dtype for x in jax.tree.leaves(ema)} == {jnp.dtype(jnp.bfloat16)}


# (d) Per-module learning-rate multipliers; the default config is unchanged.

@pytest.mark.parametrize("name, plain", [
    ("adam", optax.adam(1e-4, b1=0.9, b2=0.99)),
    ("adamw", optax.adamw(1e-4, b1=0.9, b2=0.99, weight_decay=0.0)),
    ("sgd", optax.sgd(1e-4, momentum=0.9)),
    ("adafactor", optax.adafactor(1e-4)),
])
def test_default_config_matches_plain_optax(name, plain):
  params, grads = _params_and_grads()
  ours = _config_updates(default_optax(name=name), params, grads, steps=3)
  jax.tree.map(np.testing.assert_array_equal, ours, _updates(plain, params, grads, steps=3))


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "adafactor", "bv_adafactor"])
def test_lr_mults_scale_matched_parameters_only(name):
  params = {"encoder": {"kernel": np.full((3, 4), 0.5, np.float32), "bias": np.ones(4, np.float32)},
            "decoder": {"kernel": np.full((4, 2), 0.5, np.float32),
                        "cross_encoder": {"kernel": np.full((2, 2), 0.5, np.float32)}}}
  grads = jax.tree.map(lambda p: np.linspace(-1, 2, p.size, dtype=np.float32).reshape(p.shape),
                       params)
  base = _config_updates(default_optax(name=name, lr=0.1), params, grads)
  mults = (("encoder/kernel", 0.1), ("encoder/.*", 0.5))  # First match wins.
  scaled = _config_updates(default_optax(name=name, lr=0.1, lr_mults=mults), params, grads)
  assert np.abs(base["encoder"]["kernel"]).min() > 0
  # Exactly: one float32 multiplication by the multiplier.
  np.testing.assert_array_equal(scaled["encoder"]["kernel"], base["encoder"]["kernel"] * 0.1)
  np.testing.assert_array_equal(scaled["encoder"]["bias"], base["encoder"]["bias"] * 0.5)
  # Patterns match whole paths: "decoder/cross_encoder/kernel" keeps 1.0.
  jax.tree.map(np.testing.assert_array_equal, scaled["decoder"], base["decoder"])


def test_bv_adafactor_lr_mults_leave_weight_decay_alone():
  params = {"encoder": {"kernel": np.ones((3, 4), np.float32)}}
  grads = {"encoder": {"kernel": np.full((3, 4), 2.0, np.float32)}}
  config = default_optax(name="bv_adafactor", lr=0.1, weight_decay=0.01,
                         lr_mults=(("encoder/.*", 0.1),))
  # Direction sign(g) = 1, momentum 0.1: -(0.1 * 0.1 * 0.1 + 0.01 * 1).
  np.testing.assert_allclose(_config_updates(config, params, grads)["encoder"]["kernel"], -0.011,
                             rtol=1e-6)


def test_lr_mults_fit_in_a_config_dict():
  config = ml_collections.ConfigDict({"optax": default_optax(name="sgd")})
  config.optax.lr_mults = (("encoder/.*", 0.1),)
  frozen = ml_collections.FrozenConfigDict(config)
  assert frozen.optax.lr_mults == (("encoder/.*", 0.1),)
  params = {"encoder": {"kernel": np.ones((2, 2), np.float32)}}
  updates = _config_updates(frozen.optax, params, params)
  np.testing.assert_allclose(updates["encoder"]["kernel"], -0.1 * 1e-4, rtol=1e-6)


# (e) Errors.

def test_lr_mults_pattern_matching_nothing_raises():
  tx = make_optimizer(default_optax(lr_mults=(("encoder", 0.1),)), 10)
  with pytest.raises(ValueError, match=r"lr_mults patterns \['encoder'\] match no parameter"):
    tx.init({"encoder": {"kernel": np.ones((2, 2), np.float32)}})


def test_unknown_optimizer_name_raises():
  with pytest.raises(ValueError, match="optax.name must be one of .*bv_adafactor.*'lamb'"):
    make_optimizer(default_optax(name="lamb"), 10)


def test_unknown_schedule_raises():
  with pytest.raises(ValueError, match="optax.schedule must be one of"):
    make_optimizer(default_optax(schedule="rsqrt"), 10)


def test_unknown_key_raises():
  with pytest.raises(ValueError, match=r"unknown optax keys \['beta2'\]; known: .*lr_mults"):
    default_optax(beta2=0.95)
