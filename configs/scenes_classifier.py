"""The scenes classifier: the domain feature network of scenes-FID (docs/evaluators.md).

  python -m scripts.train_scenes_classifier    # trains, then writes the committed weights
  python -m scripts.train --config=configs/scenes_classifier.py:runlocal --workdir=runs/x

Arguments: res (image size; the committed network is 64), seed (the committed judge is seed 0;
a second network from seed 1 is the scenes tokenizer's perceptual loss, so that the loss is
not its own judge: docs/results/maskgit_scenes.md), runlocal (a seconds-long CPU version of
the same run, for tests).
"""
import ml_collections

from configs.common import data_config, loop_config
from fsq.config import parse_arg
from fsq.train.optim import default_optax


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_arg(arg, res=64, seed=0, runlocal=False)
  config = ml_collections.ConfigDict(loop_config(
      total_steps=3000, batch_size=64, eval_batch_size=256, log_every=50, eval_every=3000,
      checkpoint_every=500))
  config.seed = arg.seed
  config.stage = "fsq.stages.classifier:ClassifierStage"
  config.evals = {"classify": {"type": "fsq.evaluators.classification"}}
  config.data = data_config("scenes", arg.res, eval_examples=256 if arg.runlocal else 10_000)
  config.model = dict(widths=(64, 128, 128), stem_width=32, feature_dim=256, groups=8)
  config.loss_weights = {"class": 1.0, "count": 1.0, "presence": 1.0}
  config.optax = default_optax(name="adamw", lr=2e-3, b1=0.9, b2=0.99, weight_decay=1e-4,
                               warmup_steps=100, schedule="cosine", end_factor=0.01,
                               grad_clip=1.0)
  config.ema_decay = 0.0
  if arg.runlocal:
    config.total_steps, config.batch_size, config.eval_batch_size = 20, 16, 64
    config.log_every, config.eval_every, config.checkpoint_every = 5, 20, 10
    config.optax.warmup_steps = 5
    config.model = dict(widths=(8, 16), stem_width=8, feature_dim=32, groups=4)
  config.lock()
  return config
