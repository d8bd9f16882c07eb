"""The VQ-VAE stage learns: held-out error falls well below predicting the mean image."""
import numpy as np
import pytest

from fsq.data import make_source
from fsq.stages import make_stage
from fsq.train.loop import train
from fsq.train.writers import read_metrics
from train_utils import tiny_config


def mean_image_mse(config) -> float:
  """MSE (on [0, 1] images) of predicting every held-out image by the training mean."""
  train_source, eval_source = make_source(config.data.train), make_source(config.data.eval)
  mean = np.mean([train_source[i]["image"] / 255.0 for i in range(1024)], axis=0)
  return float(np.mean([np.mean((eval_source[i]["image"] / 255.0 - mean) ** 2)
                        for i in range(len(eval_source))]))


@pytest.mark.slow
@pytest.mark.parametrize("arg", ["levels=8-5-5-5", "quantizer=vq,codebook_size=1024"])
def test_vqvae_learns(tmp_path, arg):
  config = tiny_config(arg, total_steps=300, batch_size=16, eval_every=300,
                       checkpoint_every=300, log_every=50, **{
                           "model.width": 32, "model.channel_multipliers": (1, 2),
                           "data.train.image_size": 32, "data.eval.image_size": 32,
                           "data.eval.num_examples": 256})
  config.optax.lr, config.optax.warmup_steps = 3e-3, 30
  train(make_stage(config), config, str(tmp_path))
  final = [m for m in read_metrics(str(tmp_path)) if "eval/recon/mse" in m][-1]
  baseline = mean_image_mse(config)
  assert final["eval/recon/mse"] < 0.4 * baseline, (final, baseline)
  assert final["eval/recon/usage"] > 0.05
