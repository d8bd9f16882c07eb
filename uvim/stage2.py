"""UViM Stage II: a language model of a frozen oracle's codes, given the image.

The frozen oracle (loaded lean from `config.oracle`) turns each training target into codes;
the LM learns them by teacher forcing; at evaluation its greedy codes go back through the
oracle's decoder with the image as context (arXiv 2309.15505, Sec. 4.2; UViM, arXiv
2205.10337).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from fsq.stages.base import Stage, Stage2State, check_same_data, checksum
from fsq.stages.restore import load_frozen
from fsq.train.optim import make_optimizer
from fsq.train.state import TrainState, apply_gradients
from uvim.decode import greedy_decode, sample_decode
from uvim.lm import LanguageModel, shift_right
from uvim.vit_init import load_vit_encoder


class LMStage(Stage):
  """Teacher-forced cross-entropy on the oracle's codes (tokens = codes + 1; 0 starts).

  The LM reads the task's context of the image (RGB for depth and panoptic, greyscale for
  colourisation), as the oracle does. Predict methods (uvim/evaluator.py): `predict` (KV-cached
  codes, greedy or sampled at `config.temperature`, through the oracle's decoder, with those
  codes), `predict_oracle` (the
  oracle's own reconstruction: the ceiling), `predict_context_only` (every code dropped: the
  floor), `oracle_codes` (for code agreement); `bits` and `tokens_per_example`
  (fsq.evaluators.compression: teacher-forced code length of the held-out codes).
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.oracle = load_frozen(config.oracle)
    self._checksum = checksum(self.oracle.variables)
    if config.task != self.oracle.config.task.name:
      raise ValueError(f"task={config.task!r}, but the oracle in {config.oracle} is a "
                       f"{self.oracle.config.task.name!r} oracle: pass "
                       f"task={self.oracle.config.task.name} to the config.")
    check_same_data(config, self.oracle, "oracle", arguments=("res",))
    self.task, self.codebook_size = self.oracle.task, self.oracle.codebook_size
    grid = self.oracle.model.code_grid
    self.code_shape = (grid, grid)
    self.model = LanguageModel(vocab_size=self.codebook_size + 1, seq_len=grid * grid,
                               image_size=self.oracle.model.image_size, **config.model)
    self.tx = make_optimizer(config.optax, config.total_steps)
    self._predict = jax.jit(self._predict_batch)
    self._predict_oracle = jax.jit(self._predict_oracle_batch)
    self._predict_context_only = jax.jit(self._predict_context_only_batch)
    self._oracle_codes = jax.jit(self.oracle.encode)
    self._bits = jax.jit(self._bits_batch)

  def frozen_variables(self) -> Any:
    return self.oracle.variables

  def check_restored(self, state: Stage2State) -> None:
    state.check(self.oracle, self._checksum)

  def parameters(self, state: Stage2State) -> Any:
    return state.train.params

  def _codes(self, variables, batch: dict[str, jax.Array]) -> jax.Array:
    """(B, L) oracle codes of the batch's targets."""
    codes = self.oracle.encode(variables, batch)
    return jax.lax.stop_gradient(codes.reshape(codes.shape[0], -1))

  def _logits(self, params, batch, codes_bl, train=False, rng=None):
    rngs = {"dropout": rng} if train else {}
    return self.model.apply({"params": params}, self.task.context(batch), shift_right(codes_bl),
                            train=train, rngs=rngs)

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> Stage2State:
    one = {k: v[:1] for k, v in batch.items()}
    codes = jnp.zeros((1, self.model.seq_len), jnp.int32)
    params = self.model.init(rng, self.task.context(one), shift_right(codes))["params"]
    if self.config.get("model_init"):
      params = load_vit_encoder(self.config.model_init, params)
    train = TrainState(params=params, opt_state=self.tx.init(params), model_state={},
                       ema_params=params if self.config.ema_decay > 0 else None)
    return Stage2State.create(train, self.oracle, self._checksum)

  def train_step(self, state: Stage2State, batch: dict[str, jax.Array], rng: jax.Array,
                 frozen: Any):
    codes = self._codes(frozen, batch)

    def loss_fn(params):
      logits = self._logits(params, batch, codes, train=True, rng=rng)
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, codes + 1).mean()
      return loss, jnp.mean(jnp.argmax(logits, -1) == codes + 1)

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.train.params)
    train = apply_gradients(state.train, grads, self.tx, self.config.ema_decay)
    # Teacher-forced accuracy flatters a model that copies its predecessor; the evaluators
    # judge greedy code agreement and the task metric.
    return state.replace(train=train), {"train/loss": loss,
                                        "train/teacher_forced_accuracy": accuracy}

  def _decode(self, state: Stage2State, batch) -> jax.Array:
    variables = {"params": state.train.eval_params()}
    encoded = self.model.apply(variables, self.task.context(batch), method="encode")
    if self.config.temperature == 0:
      return greedy_decode(self.model, variables, encoded)
    # One key for every batch, as big_vision's UViM predict_fn: the draws differ because the
    # images do.
    return sample_decode(self.model, variables, encoded, jax.random.key(self.config.seed),
                         temperature=self.config.temperature)

  def _predict_batch(self, state: Stage2State, variables, batch):
    codes = self._decode(state, batch).reshape(-1, *self.code_shape)
    return self.oracle.decode(variables, codes, batch), codes

  def _predict_oracle_batch(self, variables, batch):
    codes = self.oracle.encode(variables, batch)
    return self.oracle.decode(variables, codes, batch), codes

  def _predict_context_only_batch(self, variables, batch):
    return self.oracle.decode_context_only(variables, batch), None

  def _bits_batch(self, state: Stage2State, variables, batch) -> jax.Array:
    codes = self._codes(variables, batch)
    logits = self._logits(state.train.eval_params(), batch, codes)
    nats = optax.softmax_cross_entropy_with_integer_labels(logits, codes + 1)
    return jnp.sum(nats, axis=-1) / jnp.log(2.0)

  def predict(self, state: Stage2State, batch: dict[str, jax.Array]):
    """(the task's prediction from the LM's decoded codes, those (B, g, g) codes)."""
    return self._predict(state, self.frozen_like(state), batch)

  def predict_oracle(self, state: Stage2State, batch: dict[str, jax.Array]):
    """(the oracle's reconstruction of the targets, its (B, g, g) codes): the ceiling."""
    return self._predict_oracle(self.frozen_like(state), batch)

  def predict_context_only(self, state: Stage2State, batch: dict[str, jax.Array]):
    """(the oracle's prediction with every code dropped, None): the floor."""
    return self._predict_context_only(self.frozen_like(state), batch)

  def oracle_codes(self, state: Stage2State, batch: dict[str, jax.Array]) -> jax.Array:
    """(B, g, g) the oracle's codes of the batch's targets."""
    return self._oracle_codes(self.frozen_like(state), batch)

  def bits(self, state: Stage2State, batch: dict[str, jax.Array]) -> jax.Array:
    """(B,) bits to code each held-out example's oracle codes under the LM (teacher forced)."""
    return self._bits(state, self.frozen_like(state), batch)

  def tokens_per_example(self, state: Stage2State) -> int:
    del state
    return self.model.seq_len
