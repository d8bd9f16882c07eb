"""UViM Stage I: the oracle, a ViT VQ-VAE of a task's targets guided by the image.

The task plug-in (uvim/tasks/) says what the oracle embeds and predicts, its loss and its
prediction; the quantizer is FSQ or UViM's EMA VQ by one config field (arXiv 2309.15505,
Sec. 4, UViM).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from fsq.quantizers import make_quantizer
from fsq.stages.base import Stage, inference_variables, train_state_parts
from fsq.train.optim import make_optimizer
from fsq.train.state import TrainState, apply_gradients
from uvim.oracle import Oracle
from uvim.tasks import make_task


def oracle_from_config(config: ml_collections.ConfigDict, task: Any) -> Oracle:
  return Oracle(make_quantizer(**config.quantizer), outputs=task.outputs,
                use_context=config.context, **config.model)


def context_only(model: Oracle, task: Any, variables: Any, batch: dict[str, jax.Array]):
  """The task's prediction of the oracle with every code dropped (all-zero codes, as code
  dropout leaves them): the floor its codes must beat."""
  z_q = jnp.zeros((batch["image"].shape[0], model.code_grid, model.code_grid,
                   model.quantizer.latent_dim), jnp.float32)
  return task.predict(model.apply(variables, z_q, task.context(batch), method="decode"))


class FrozenOracle:
  """A finished oracle for UViM Stage II: targets -> codes, codes (+ image) -> prediction.

  The methods take the `variables` ("params" and the quantizer's state) as an argument, so a
  jitted caller passes them rather than baking them into its program.
  """

  def __init__(self, config: ml_collections.ConfigDict, variables: dict[str, Any], *,
               workdir: str, step: int):
    self.config, self.variables, self.workdir, self.step = config, variables, workdir, step
    self.task = make_task(**config.task)
    self.model = oracle_from_config(config, self.task)
    self.codebook_size = self.model.quantizer.codebook_size

  def encode(self, variables, batch: dict[str, jax.Array]) -> jax.Array:
    """(B, g, g) code indices of a batch's targets."""
    _, aux = self.model.apply(variables, self.task.targets(batch), self.task.context(batch),
                              method="encode")
    return aux["indices"]

  def decode(self, variables, indices_bgg: jax.Array, batch: dict[str, jax.Array]):
    """The task's prediction from code indices, with the batch's image as context."""
    outputs = self.model.apply(variables, indices_bgg, self.task.context(batch),
                               method="decode_indices")
    return self.task.predict(outputs)

  def decode_context_only(self, variables, batch: dict[str, jax.Array]):
    """The task's prediction with every code dropped."""
    return context_only(self.model, self.task, variables, batch)


class OracleStage(Stage):
  """Trains the oracle with the task's loss plus the quantizer's auxiliary loss (0 for FSQ).

  Predict methods (uvim/evaluator.py): `predict` (the oracle's reconstruction of the targets,
  with its code indices), `predict_context_only` (every code dropped: the floor the codes
  must beat). Frozen: a FrozenOracle.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.task = make_task(**config.task)
    self.model = oracle_from_config(config, self.task)
    self.codebook_size = self.model.quantizer.codebook_size
    self.tx = make_optimizer(config.optax, config.total_steps)
    self._predict = jax.jit(self._predict_batch)
    self._predict_context_only = jax.jit(self._predict_context_only_batch)

  def parameters(self, state: TrainState) -> Any:
    return state.params

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    one = {k: v[:1] for k, v in batch.items()}
    variables = dict(self.model.init({"params": rng}, self.task.targets(one),
                                     self.task.context(one)))
    params = variables.pop("params")
    return TrainState(params=params, opt_state=self.tx.init(params), model_state=variables,
                      ema_params=params if self.config.ema_decay > 0 else None)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], rng: jax.Array,
                 frozen: Any):
    del frozen
    dropout_rng, vq_rng = jax.random.split(rng)
    targets, context = self.task.targets(batch), self.task.context(batch)

    def loss_fn(params):
      variables = {"params": params, **state.model_state}
      (outputs, aux), model_state = self.model.apply(
          variables, targets, context, train=True, rngs={"dropout": dropout_rng, "vq": vq_rng},
          mutable=list(state.model_state))
      task_loss, extra = self.task.loss(outputs, batch)
      task_loss = jnp.mean(task_loss)
      return task_loss + aux["loss"], (task_loss, aux, model_state, extra)

    (loss, (task_loss, aux, model_state, extra)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    state = apply_gradients(state, grads, self.tx, self.config.ema_decay, model_state)
    used = jnp.zeros((self.codebook_size,), jnp.int32).at[aux["indices"]].max(1)
    return state, {"train/loss": loss, "train/task_loss": task_loss,
                   "train/quantizer_loss": aux["loss"],
                   "train/batch_usage": jnp.mean(used.astype(jnp.float32)),
                   **{f"train/{k}": jnp.mean(v) for k, v in extra.items()}}

  def _variables(self, state: TrainState) -> dict[str, Any]:
    return {"params": state.eval_params(), **state.model_state}

  def _predict_batch(self, state: TrainState, batch):
    outputs, aux = self.model.apply(self._variables(state), self.task.targets(batch),
                                    self.task.context(batch))
    return self.task.predict(outputs), aux["indices"]

  def _predict_context_only_batch(self, state: TrainState, batch):
    return context_only(self.model, self.task, self._variables(state), batch), None

  def predict(self, state: TrainState, batch: dict[str, jax.Array]):
    """(the task's prediction of the oracle's reconstruction, its (B, g, g) code indices)."""
    return self._predict(state, batch)

  def predict_context_only(self, state: TrainState, batch: dict[str, jax.Array]):
    """(the task's prediction with every code dropped, None)."""
    return self._predict_context_only(state, batch)

  @classmethod
  def export_paths(cls, config: ml_collections.ConfigDict) -> dict[str, tuple[str, ...]]:
    return train_state_parts(config)

  @classmethod
  def frozen(cls, config, variables, *, workdir: str, step: int) -> FrozenOracle:
    return FrozenOracle(config, inference_variables(variables), workdir=workdir, step=step)
