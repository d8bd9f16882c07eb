"""The UViM task evaluator's colourisation FID and colour-FID, and their ColTran-style reference block."""
import types

import numpy as np
import pytest

from configs.common import data_config
from fsq import data as data_lib
from fsq.evaluators import colour, networks
from fsq.evaluators.fid import feature_statistics, frechet_distance
from uvim.evaluator import Evaluator
from uvim.tasks import make_task
from uvim.tasks.colorization import to_model_range


def _perfect_colouriser():
  """A stand-in stage whose colourisation is the true image."""
  config = types.SimpleNamespace(data=data_config("scenes", 32, eval_examples=48))
  return types.SimpleNamespace(
      config=config, task=make_task("colorization"), codebook_size=8,
      predict=lambda state, batch: (np.asarray(to_model_range(batch["image"])), None))


def _run(evaluator, stage):
  source = data_lib.make_source(stage.config.data.eval.to_dict())
  metrics, _ = evaluator.run(None, data_lib.eval_batches(source, global_batch_size=16))
  return metrics, source


def test_fid_against_the_batches_own_images_or_a_disjoint_reference_block():
  stage = _perfect_colouriser()
  own, _ = _run(Evaluator(stage, batch_size=16, seed=0, network="scenes"), stage)
  assert abs(own["fid"]) < 1e-3 and abs(own["colour_fid"]) < 1e-6 and own["psnr"] > 60
  reference = {"split": "train", "num_examples": 40}
  disjoint, source = _run(Evaluator(stage, batch_size=16, seed=0, network="scenes",
                                    reference=reference), stage)
  features = networks.fid_feature_fn("scenes", "")
  train = data_lib.make_source({**stage.config.data.eval.to_dict(), **reference})
  expected = frechet_distance(
      *feature_statistics([features(np.stack([source[i]["image"] for i in range(48)]))]),
      *feature_statistics([features(np.stack([train[i]["image"] for i in range(40)]))]))
  assert disjoint["fid"] == pytest.approx(expected, rel=1e-6) and disjoint["fid"] > 0.1
  predicted, real = (feature_statistics([colour.histogram_features(np.stack(
      [s[i]["image"] for i in range(n)]))]) for s, n in ((source, 48), (train, 40)))
  expected = frechet_distance(*predicted, *real)
  assert disjoint["colour_fid"] == pytest.approx(expected, rel=1e-6) and expected > 0
