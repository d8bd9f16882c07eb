"""The scenes classifier stage: the domain feature network of scenes-FID (docs/evaluators.md)."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from fsq.images import to_model_range
from fsq.models.scenes_classifier import ScenesClassifier, scene_targets
from fsq.stages.base import Stage, train_state_parts
from fsq.train.optim import make_optimizer
from fsq.train.state import TrainState, apply_gradients


def head_losses(logits: dict[str, jax.Array], targets: dict[str, jax.Array]
                ) -> dict[str, jax.Array]:
  """Per-example losses (B,): softmax CE for class and count, mean sigmoid CE for presence."""
  ce = optax.softmax_cross_entropy_with_integer_labels
  return {"class": ce(logits["class"], targets["class"]),
          "count": ce(logits["count"], targets["count"]),
          "presence": jnp.mean(optax.sigmoid_binary_cross_entropy(
              logits["presence"], targets["presence"]), axis=-1)}


def head_correct(logits: dict[str, jax.Array], targets: dict[str, jax.Array]
                 ) -> dict[str, jax.Array]:
  """Per-example accuracies (B,) float32; presence is the fraction of the shapes right."""
  return {"accuracy": jnp.argmax(logits["class"], -1) == targets["class"],
          "count_accuracy": jnp.argmax(logits["count"], -1) == targets["count"],
          "presence_accuracy": jnp.mean((logits["presence"] > 0) == (targets["presence"] > 0.5),
                                        axis=-1)}


class ClassifierStage(Stage):
  """Class label, visible-object count and shape presence from a scene image, jointly.

  The loss is the weighted sum of the heads' losses (config.loss_weights). Predict method:
  `classify` (fsq.evaluators.classification: the three accuracies). Frozen: the evaluation
  parameters ({"params": ...}), which scripts.train_scenes_classifier exports.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.model = ScenesClassifier(**config.model)
    self.tx = make_optimizer(config.optax, config.total_steps)
    self._classify = jax.jit(self._classify_batch)

  def parameters(self, state: TrainState) -> Any:
    return state.params

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    params = self.model.init(rng, to_model_range(batch["image"][:1]))["params"]
    return TrainState(params=params, opt_state=self.tx.init(params), model_state={},
                      ema_params=params if self.config.ema_decay > 0 else None)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], rng: jax.Array,
                 frozen: Any):
    del rng, frozen  # Deterministic network, no augmentation: every scene is a fresh draw.
    x = to_model_range(batch["image"])
    targets = scene_targets(batch)

    def loss_fn(params):
      _, logits = self.model.apply({"params": params}, x)
      losses = {k: jnp.mean(v) for k, v in head_losses(logits, targets).items()}
      total = sum(self.config.loss_weights[k] * v for k, v in losses.items())
      return total, (losses, logits)

    (loss, (losses, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = apply_gradients(state, grads, self.tx, self.config.ema_decay)
    accuracy = jnp.mean(head_correct(logits, targets)["accuracy"].astype(jnp.float32))
    return state, {"train/loss": loss, "train/accuracy": accuracy,
                   **{f"train/{k}_loss": v for k, v in losses.items()}}

  def _classify_batch(self, state: TrainState, batch):
    _, logits = self.model.apply({"params": state.eval_params()},
                                 to_model_range(batch["image"]))
    correct = head_correct(logits, scene_targets(batch))
    return {k: v.astype(jnp.float32) for k, v in correct.items()}

  def classify(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-example accuracy, count_accuracy and presence_accuracy (B,) float32."""
    return self._classify(state, batch)

  @classmethod
  def export_paths(cls, config: ml_collections.ConfigDict) -> dict[str, tuple[str, ...]]:
    return train_state_parts(config)

  @classmethod
  def frozen(cls, config, variables, *, workdir: str, step: int) -> dict[str, Any]:
    del workdir, step
    return {"params": variables["params"], "config": config}
