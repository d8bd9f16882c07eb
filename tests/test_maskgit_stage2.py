"""MaskGIT Stage II through the training loop, on a tiny frozen tokenizer."""
import numpy as np
import pytest

from configs import maskgit_transformer
from fsq.stages import make_stage
from fsq.train.loop import train
from fsq.train.writers import read_metrics
from train_utils import tiny_config


@pytest.fixture(scope="module")
def tokenizer_workdir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("tokenizer")
  config = tiny_config(total_steps=2, eval_every=100, checkpoint_every=2)
  train(make_stage(config), config, str(workdir))
  return workdir


def stage2_config(tokenizer_workdir, **overrides):
  config = maskgit_transformer.get_config(f"tokenizer={tokenizer_workdir},runlocal")
  config.total_steps, config.batch_size, config.eval_batch_size = 4, 8, 16
  config.eval_every, config.checkpoint_every, config.log_every, config.tensorboard = 4, 4, 2, False
  config.data.eval.num_examples = 16
  config.model.width, config.model.depth, config.model.num_heads = 32, 1, 2
  config.model.mlp_dim = 64
  config.sampling.grid_per_class, config.sampling.num_steps = 2, 4
  for key, value in overrides.items():
    config[key] = value
  return config


def test_stage2_trains_evaluates_and_samples(tokenizer_workdir, tmp_path):
  config = stage2_config(tokenizer_workdir)
  assert config.data.train.image_size == 16 and config.num_classes == 4
  stage = make_stage(config)
  state = train(stage, config, str(tmp_path))
  events = read_metrics(str(tmp_path))
  final = [e for e in events if "eval/bits_per_token" in e][-1]
  # 125 codes: an untrained model spends about log2(125) ~ 7 bits per token.
  assert 3.0 < final["eval/bits_per_token"] < 9.0
  assert (tmp_path / "images" / "eval_samples_4.png").exists()
  import jax, jax.numpy as jnp
  images = stage.sample(state, jax.random.key(0), jnp.array([0, 3]), guidance=0.2)
  assert images.shape == (2, 16, 16, 3) and np.isfinite(np.asarray(images)).all()
