"""Test-session setup: 8 fake CPU devices so sharded paths run on one machine."""
import os

# Must be set before JAX initialises its backend (docs/design.md, "Parallelism").
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402  (after the environment above)


@pytest.fixture(scope="session")
def tokenizer_workdir(tmp_path_factory) -> str:
  """A 2-step tiny MaskGIT tokenizer run, the frozen Stage I of the Stage II and cache tests."""
  from fsq.stages import make_stage
  from fsq.train.loop import train
  from train_utils import tiny_config
  workdir = str(tmp_path_factory.mktemp("tokenizer"))
  config = tiny_config(total_steps=2, eval_every=100, checkpoint_every=2)
  train(make_stage(config), config, workdir)
  return workdir
