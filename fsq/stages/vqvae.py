"""The plain VQ-VAE stage: encoder, FSQ or VQ, decoder, reconstruction loss, nothing else."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from fsq.images import to_model_range
from fsq.stages.base import Stage, train_state_parts
from fsq.stages.tokenizer import (FrozenTokenizer, apply_autoencoder,
                                  autoencoder_from_config, frozen_autoencoder)
from fsq.train.optim import make_optimizer
from fsq.train.state import TrainState, apply_gradients


class VQVAEStage(Stage):
  """Reconstruction with an L2 loss plus the quantizer's auxiliary loss (0 for FSQ).

  Predict methods: `reconstruct` (fsq.evaluators.reconstruction), with the EMA parameters
  when ema_decay > 0. Frozen: a FrozenTokenizer.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.model = autoencoder_from_config(config)
    self.codebook_size = self.model.quantizer.codebook_size
    self.tx = make_optimizer(config.optax, config.total_steps)
    self._reconstruct = jax.jit(self._reconstruct_batch)

  def parameters(self, state: TrainState) -> Any:
    return state.params

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    variables = dict(self.model.init({"params": rng}, to_model_range(batch["image"][:1])))
    params = variables.pop("params")
    return TrainState(params=params, opt_state=self.tx.init(params), model_state=variables,
                      ema_params=params if self.config.ema_decay > 0 else None)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], rng: jax.Array,
                 frozen: Any):
    del frozen
    x = to_model_range(batch["image"])

    def loss_fn(params):
      (x_hat, aux), model_state = apply_autoencoder(self.model, params, state.model_state, x,
                                                    True, rng)
      recon = jnp.mean((x_hat - x) ** 2)
      return recon + aux["loss"], (recon, aux, model_state)

    (loss, (recon, aux, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    state = apply_gradients(state, grads, self.tx, self.config.ema_decay, model_state)
    batch_used = jnp.zeros((self.codebook_size,), jnp.int32).at[aux["indices"]].max(1)
    return state, {"train/loss": loss, "train/recon_loss": recon,
                   "train/quantizer_loss": aux["loss"],
                   "train/batch_usage": jnp.mean(batch_used.astype(jnp.float32))}

  def _reconstruct_batch(self, state: TrainState, batch: dict[str, jax.Array]):
    (x_hat, aux), _ = apply_autoencoder(self.model, state.eval_params(), state.model_state,
                                        to_model_range(batch["image"]), False)
    return jnp.clip(x_hat, -1.0, 1.0), aux["indices"]

  def reconstruct(self, state: TrainState, batch: dict[str, jax.Array]):
    """(x_hat in [-1, 1], indices) of a batch's images."""
    return self._reconstruct(state, batch)

  @classmethod
  def export_paths(cls, config: ml_collections.ConfigDict) -> dict[str, tuple[str, ...]]:
    return train_state_parts(config)

  @classmethod
  def frozen(cls, config, variables, *, workdir: str, step: int) -> FrozenTokenizer:
    return frozen_autoencoder(config, variables, workdir=workdir, step=step)
