"""Multi-host helpers."""
from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils


def to_host(x) -> np.ndarray:
  """The whole of a (possibly multi-host, sharded) array as numpy, on every host."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    x = multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(x)
