"""The scenes classifier stage: the domain feature network of scenes-FID (docs/evaluators.md)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from fsq.distributed import to_host
from fsq.models.scenes_classifier import ScenesClassifier, scene_targets
from fsq.stages.vqvae import image_grid, to_model_range
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


class ClassifierStage:
  """Class label, visible-object count and shape presence from a scene image, jointly.

  The loss is the weighted sum of the heads' losses (config.loss_weights). Evaluation reports
  the three accuracies over the whole held-out split and shows misclassified scenes.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.model = ScenesClassifier(**config.model)
    self.tx = make_optimizer(config.optax, config.total_steps)
    self._eval_step = jax.jit(self._eval_batch)

  def parameters(self, state: TrainState) -> Any:
    return state.params

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    params = self.model.init(rng, to_model_range(batch["image"][:1]))["params"]
    return TrainState(params=params, opt_state=self.tx.init(params), model_state={},
                      ema_params=params if self.config.ema_decay > 0 else None)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], rng: jax.Array):
    del rng  # Deterministic network, no augmentation: every scene is a fresh draw.
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

  def _eval_batch(self, params, batch):
    _, logits = self.model.apply({"params": params}, to_model_range(batch["image"]))
    correct = head_correct(logits, scene_targets(batch))
    return {k: v.astype(jnp.float32) for k, v in correct.items()}

  def evaluate(self, state: TrainState, batches: Iterable[dict[str, jax.Array]]):
    sums, count, errors = {}, 0, []
    for batch in batches:
      per_example = {k: to_host(v) for k, v in self._eval_step(state.eval_params(),
                                                               batch).items()}
      mask = to_host(batch["mask"])
      for k, v in per_example.items():
        sums[k] = sums.get(k, 0.0) + float(np.sum(v[mask]))
      count += int(mask.sum())
      if len(errors) < 8:
        wrong = mask & (per_example["accuracy"] < 1)
        errors.extend(to_host(batch["image"])[wrong][:8 - len(errors)])
    metrics = {f"eval/{k}": v / count for k, v in sums.items()}
    return metrics, ({"eval/misclassified": image_grid([np.stack(errors)])} if errors else {})
