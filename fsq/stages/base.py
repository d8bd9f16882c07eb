"""The stage contract: what the training loop, the evaluators and a later stage need of a stage.

A stage is one training phase of one model family (the VQ-VAE, MaskGIT's tokenizer, MaskGIT's
transformer, ...). `config.stage` names its class by module path ("fsq.stages.vqvae:VQVAEStage"), so
a new stage needs no registration anywhere: see docs/design.md.
"""
from __future__ import annotations

import abc
import importlib
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from fsq.train.state import TrainState


class Stage(abc.ABC):
  """One training phase, driven by fsq.train.loop.train.

  The loop calls `init` once (or restores its result from a checkpoint), then jits
  `train_step` with the state replicated and the batch sharded over every device. Evaluators
  (fsq.train.evaluation, from `config.evals`) call the stage's predict methods that they name
  (e.g. `reconstruct`, `sample_images`); the stage's docstring lists them.

  A stage whose trained model a later stage uses frozen (a tokenizer, an oracle) names what
  that frozen copy keeps in `export_paths` and builds it in `frozen`; see
  fsq.stages.restore.load_frozen.
  """
  config: ml_collections.ConfigDict

  @abc.abstractmethod
  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> Any:
    """The initial train state (a pytree: all of it is checkpointed)."""

  @abc.abstractmethod
  def train_step(self, state: Any, batch: dict[str, jax.Array], rng: jax.Array,
                 frozen: Any) -> tuple[Any, dict[str, jax.Array]]:
    """One optimisation step: (new state, {"train/...": scalar}). `frozen` is
    `frozen_variables()`, passed as an argument so it is neither a constant of the compiled
    program nor part of the checkpoint."""

  @abc.abstractmethod
  def parameters(self, state: Any) -> Any:
    """The trained parameters: logged at the start and checked finite after every step."""

  def frozen_variables(self) -> Any:
    """The variables of the frozen models this stage builds on (e.g. its Stage I)."""
    return {}

  def frozen_like(self, state: Any) -> Any:
    """`frozen_variables()` placed as `state` is (replicated over the same devices), for the
    predict methods evaluators call with the state; placed once per placement."""
    sharding = jax.tree.leaves(state)[0].sharding
    cached = getattr(self, "_frozen_placed", None)
    if cached is None or cached[0] != sharding:
      cached = (sharding, jax.device_put(self.frozen_variables(), sharding))
      self._frozen_placed = cached
    return cached[1]

  def check_restored(self, state: Any) -> None:
    """Raises ValueError if a restored `state` does not belong with this stage's frozen
    models (e.g. the Stage I run changed under a Stage II run)."""
    del state

  # Name -> path (field names) of a part of the saved state that a frozen copy keeps.
  @classmethod
  def export_paths(cls, config: ml_collections.ConfigDict) -> dict[str, tuple[str, ...]]:
    raise NotImplementedError(f"{cls.__name__} cannot be loaded as a frozen model.")

  @classmethod
  def frozen(cls, config: ml_collections.ConfigDict, variables: dict[str, Any], *,
             workdir: str, step: int) -> Any:
    """The frozen model of a finished run from its `export_paths` parts."""
    raise NotImplementedError(f"{cls.__name__} cannot be loaded as a frozen model.")


def train_state_parts(config: ml_collections.ConfigDict, *prefix: str
                      ) -> dict[str, tuple[str, ...]]:
  """`export_paths` of a fsq.train.state.TrainState saved below `prefix`: the evaluation
  parameters (the EMA ones when config.ema_decay > 0) and the model's other collections."""
  params = "ema_params" if config.ema_decay > 0 else "params"
  return {"params": (*prefix, params), "model_state": (*prefix, "model_state")}


def inference_variables(parts: dict[str, Any]) -> dict[str, Any]:
  """The flax variables of the parts `train_state_parts` names."""
  return {"params": parts["params"], **parts["model_state"]}


def stage_class(path: str) -> type[Stage]:
  """The Stage subclass `path` ("package.module:Class") names."""
  module, sep, name = path.partition(":")
  try:
    cls = getattr(importlib.import_module(module), name) if sep else None
  except ModuleNotFoundError:
    cls = None
  if not (isinstance(cls, type) and issubclass(cls, Stage)):
    raise ValueError(f"stage={path!r} names no Stage class; write it as "
                     f"'package.module:Class', e.g. 'fsq.stages.vqvae:VQVAEStage'.")
  return cls


def make_stage(config: ml_collections.ConfigDict) -> Stage:
  return stage_class(config.stage)(config)


def check_same_data(config: ml_collections.ConfigDict, frozen: Any, what: str,
                    arguments: tuple[str, ...] = ("data", "res")) -> None:
  """Raises ValueError unless `config.data.eval` is the dataset and image size the frozen
  Stage I (`.config`, `.workdir`) was trained on, naming the config `arguments` that fix it
  (of "data": the dataset, "res": the image size)."""
  trained_on = frozen.config.data.train
  values = {"data": trained_on.name, "res": trained_on.get("image_size")}
  fix = ",".join(f"{name}={values[name]}" for name in arguments)
  for key in ("name", "image_size"):
    if config.data.eval.get(key) != trained_on.get(key):
      raise ValueError(
          f"data.eval.{key}={config.data.eval.get(key)!r}, but the {what} in {frozen.workdir} "
          f"was trained on {key}={trained_on.get(key)!r}: pass {fix} to the config.")


def checksum(variables: Any) -> np.float32:
  """A fingerprint of a frozen model's variables (float64 sum of magnitudes, as float32)."""
  return np.float32(sum(float(np.sum(np.abs(np.asarray(x, np.float64))))
                        for x in jax.tree.leaves(variables)))


@flax.struct.dataclass
class Stage2State:
  """The train state of a stage built on a frozen Stage I, and which checkpoint of that Stage I
  it was trained on (MaskGIT's transformer on its tokenizer, UViM's language model on its
  oracle). The frozen model itself is not part of it."""
  train: TrainState
  frozen_step: jax.Array  # int32 scalar.
  frozen_checksum: jax.Array  # float32 scalar: `checksum` of the frozen model's variables.

  @classmethod
  def create(cls, train: TrainState, frozen: Any, frozen_checksum: np.float32) -> "Stage2State":
    return cls(train=train, frozen_step=jnp.asarray(frozen.step, jnp.int32),
               frozen_checksum=jnp.asarray(frozen_checksum, jnp.float32))

  def check(self, frozen: Any, frozen_checksum: np.float32) -> None:
    """Raises ValueError if the frozen model (`.step`, `.workdir`) is not the one this state
    was trained on: it changed under the run."""
    step, total = int(self.frozen_step), float(self.frozen_checksum)
    if step != frozen.step or total != float(frozen_checksum):
      raise ValueError(
          f"this run was trained on checkpoint {step} of the Stage I run in {frozen.workdir} "
          f"(checksum {total:.6g}), which now holds checkpoint {frozen.step} (checksum "
          f"{float(frozen_checksum):.6g}): it changed under this run. Start a new workdir, or "
          f"restore that Stage I checkpoint.")
