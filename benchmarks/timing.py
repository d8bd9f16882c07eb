"""Timing helpers shared by the benchmarks: compile and warm up first, then the median."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def median_seconds(fn: Callable, *args, repeats: int) -> float:
  """Median wall time of fn(*args) over `repeats` calls, after one untimed call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def median_step_seconds(step: Callable, state: Any, *args, repeats: int) -> tuple[float, Any]:
  """Median wall time of `state, metrics = step(state, *args)` (a donating train step), after
  one untimed step; returns it with the final state."""
  state, metrics = step(state, *args)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    state, metrics = step(state, *args)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  return statistics.median(times), state
