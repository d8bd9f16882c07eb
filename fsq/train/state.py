"""The train state of a single-network stage, and parameter EMA."""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import optax


@flax.struct.dataclass
class TrainState:
  """Parameters, optimizer state, EMA parameters and the model's other collections.

  `model_state` holds mutable collections other than "params" (e.g. an EMA VQ's
  "quantizer_state"); `ema_params` is None when the config's ema_decay is 0.
  """
  params: Any
  opt_state: optax.OptState
  model_state: dict[str, Any]
  ema_params: Any = None

  def eval_params(self) -> Any:
    """The parameters evaluation uses: the EMA when there is one."""
    return self.params if self.ema_params is None else self.ema_params


def ema_update(ema: Any, params: Any, decay: float) -> Any:
  """ema <- decay * ema + (1 - decay) * params."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


def apply_gradients(state: TrainState, grads: Any, tx: optax.GradientTransformation,
                    ema_decay: float, model_state: dict[str, Any] | None = None) -> TrainState:
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema = None if state.ema_params is None else ema_update(state.ema_params, params, ema_decay)
  return state.replace(params=params, opt_state=opt_state, ema_params=ema,
                       model_state=state.model_state if model_state is None else model_state)
