"""Tiny runs of the real training loop for the tests."""
import os
import subprocess
import sys

import numpy as np

from configs import vqvae
from fsq.config import set_dotted
from fsq.train.checkpoint import Checkpointer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Overrides turning the runlocal VQ-VAE into a seconds-long run on 16 px scenes.
TINY = {"total_steps": 8, "batch_size": 8, "eval_batch_size": 16, "log_every": 2,
        "eval_every": 8, "checkpoint_every": 4, "tensorboard": False,
        "model.width": 8, "model.channel_multipliers": (1, 2), "data.eval.num_examples": 32,
        "evals.recon.network": ""}


def tiny_config(arg: str = "", **overrides):
  config = vqvae.get_config(f"runlocal,res=16,levels=5-5-5{',' + arg if arg else ''}")
  for key, value in {**TINY, **overrides}.items():
    set_dotted(config, key, value)
  return config


def cli_args(workdir, arg: str = "", **overrides) -> list[str]:
  """The scripts.train command line of tiny_config(arg, **overrides)."""
  flags = [f"--config={ROOT}/configs/vqvae.py:runlocal,res=16,levels=5-5-5"
           + (f",{arg}" if arg else ""), f"--workdir={workdir}"]
  for key, value in {**TINY, **overrides}.items():
    if isinstance(value, tuple):
      value = "(" + ",".join(map(str, value)) + ",)"
    flags.append(f"--config.{key}={value}")
  return [sys.executable, "-m", "scripts.train", *flags]


def run_cli(args, env=None, **kwargs) -> subprocess.CompletedProcess:
  env = {**os.environ, **(env or {})}
  return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                        **kwargs)


def restore_params(workdir, step: int) -> dict:
  """The raw saved state (as numpy) of a checkpoint, without knowing its structure."""
  import jax
  return jax.tree.map(np.asarray, Checkpointer.read(workdir, step))


def assert_trees_equal(a, b):
  import jax
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)
