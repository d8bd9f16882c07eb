"""Decoding UViM's language model (uvim/lm.py), each one jitted loop over positions.

Codes are tokens - 1 (token 0 is the start symbol), so every choice masks token 0's logit
first: the start symbol is never emitted and codes stay in [0, vocab_size - 1).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from uvim.lm import LanguageModel, shift_right

ChooseFn = Callable[[jax.Array, jax.Array], jax.Array]  # (logits (B, V), rng) -> (B,) codes.


def _without_start(logits_bv: jax.Array) -> jax.Array:
  return logits_bv.at[:, 0].set(-jnp.inf)


def _argmax_code(logits_bv: jax.Array, rng: jax.Array) -> jax.Array:
  del rng
  return jnp.argmax(_without_start(logits_bv), axis=-1).astype(jnp.int32) - 1


def _cached(model: LanguageModel, variables: Any, encoded_bnd: jax.Array, choose: ChooseFn,
            rng: jax.Array) -> jax.Array:
  """One `decode_step` per position on the KV cache (`init_cache` projects the encoder once)."""
  variables = {k: v for k, v in variables.items() if k != "cache"}
  _, state = model.apply(variables, encoded_bnd, method="init_cache", mutable=["cache"])

  def step(carry, rng_i):
    token_b1, state = carry  # state = {"cache": ...}.
    logits_b1v, state = model.apply({**variables, **state}, token_b1, method="decode_step",
                                    mutable=["cache"])
    code_b = choose(logits_b1v[:, 0], rng_i)
    return (code_b[:, None] + 1, state), code_b

  start_b1 = jnp.zeros((encoded_bnd.shape[0], 1), jnp.int32)
  _, codes_lb = jax.lax.scan(step, (start_b1, state), jax.random.split(rng, model.seq_len))
  return codes_lb.T


def _uncached(model: LanguageModel, variables: Any, encoded_bnd: jax.Array, choose: ChooseFn,
              rng: jax.Array) -> jax.Array:
  """The full causal decoder over the padded L-length sequence per position; logits at i."""
  def step(i, codes_bl):
    logits_blv = model.apply(variables, shift_right(codes_bl), encoded_bnd, method="decode")
    logits_bv = jax.lax.dynamic_index_in_dim(logits_blv, i, axis=1, keepdims=False)
    return codes_bl.at[:, i].set(choose(logits_bv, jax.random.fold_in(rng, i)))

  codes_bl = jnp.zeros((encoded_bnd.shape[0], model.seq_len), jnp.int32)
  return jax.lax.fori_loop(0, model.seq_len, step, codes_bl)


@functools.partial(jax.jit, static_argnames=("model", "cached"))
def greedy_decode(model: LanguageModel, variables: Any, encoded_bnd: jax.Array, *,
                  cached: bool = True) -> jax.Array:
  """(B, seq_len) int32 codes in [0, vocab_size - 1) by argmax, with or without the KV cache
  (the same codes either way; without it, L full decoder passes)."""
  decode = _cached if cached else _uncached
  return decode(model, variables, encoded_bnd, _argmax_code, jax.random.key(0))


@functools.partial(jax.jit, static_argnames=("model",))
def sample_decode(model: LanguageModel, variables: Any, encoded_bnd: jax.Array, rng: jax.Array,
                  *, temperature: float = 1.0) -> jax.Array:
  """(B, seq_len) codes sampled from softmax(logits / temperature) over the codes (token 0
  excluded), KV-cached."""
  def choose(logits_bv, rng_i):
    token_b = jax.random.categorical(rng_i, _without_start(logits_bv / temperature))
    return token_b.astype(jnp.int32) - 1

  return _cached(model, variables, encoded_bnd, choose, rng)
