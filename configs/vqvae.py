"""The plain convolutional VQ-VAE (the seed's first experiment) on the embedded scenes.

  python -m scripts.train --config=configs/vqvae.py:quantizer=fsq,levels=8-5-5-5 --workdir=runs/x
  python -m scripts.train --config=configs/vqvae.py:quantizer=vq,codebook_size=1024,runlocal ...

Arguments: quantizer (fsq | vq | vq_ema), levels (FSQ, e.g. 8-5-5-5), codebook_size (VQ,
or FSQ with the paper's levels for that size when levels is not given), data (scenes |
digits), res (image size), runlocal (a minutes-long CPU version of the same run).
"""
import ml_collections

from configs.common import data_config, loop_config, quantizer_config, reconstruction_eval
from fsq.config import parse_arg
from fsq.train.optim import default_optax


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_arg(arg, quantizer="fsq", levels=(), codebook_size=1024, data="scenes", res=64,
                  runlocal=False)
  config = ml_collections.ConfigDict(loop_config(
      total_steps=20_000, batch_size=64, eval_batch_size=64, log_every=100, eval_every=2000,
      checkpoint_every=1000))
  config.stage = "fsq.stages.vqvae:VQVAEStage"
  config.data = data_config(arg.data, arg.res, eval_examples=2048 if arg.runlocal else 10_000)
  config.quantizer = quantizer_config(arg.quantizer, levels=arg.levels,
                                      codebook_size=arg.codebook_size, vq_dim=16)
  config.model = dict(width=64, channel_multipliers=(1, 2, 2), num_res_blocks=1)
  config.optax = default_optax(name="adam", lr=1e-3, b1=0.9, b2=0.99, warmup_steps=500,
                               schedule="cosine", end_factor=0.05, grad_clip=1.0)
  config.ema_decay = 0.0
  # Reconstruction FID in the scenes network's features; no domain network for digits.
  config.evals = {"recon": reconstruction_eval("scenes" if arg.data == "scenes" else "")}
  if arg.runlocal:
    config.total_steps, config.batch_size, config.eval_batch_size = 300, 16, 64
    config.log_every, config.eval_every, config.checkpoint_every = 20, 150, 100
    config.optax.warmup_steps = 30
    config.model.width = 16
  config.lock()
  return config
