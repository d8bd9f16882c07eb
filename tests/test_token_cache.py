"""The cached pre-tokenised data of MaskGIT Stage II (fsq/data/tokens.py, scripts/tokenize.py)."""
import json
import os
import pickle
import shutil

import jax
import numpy as np
import pytest

from fsq import data as data_lib
from fsq.config import ConfigError, validate
from fsq.data import tokens as token_cache
from fsq.data.pipeline import stack
from fsq.stages import make_stage
from fsq.train.loop import train
from fsq.stages.restore import load_frozen
from fsq.train.writers import read_metrics
from scripts import tokenize
from test_maskgit_stage2 import stage2_config
from train_utils import assert_trees_equal, restore_params

NUM_EXAMPLES = 24  # Three Stage II batches of 8: four steps wrap into a second epoch.


@pytest.fixture(scope="module")
def cache(tokenizer_workdir, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("caches") / "tokens")
  # Batches of 16: a padded last batch, and not the Stage II batch size.
  return tokenize.main([f"--tokenizer={tokenizer_workdir}", f"--out={out}",
                        f"--num_examples={NUM_EXAMPLES}", "--batch_size=16"])


def without_sampling(config):
  """Sampling metrics are not what these tests check."""
  with config.unlocked():
    del config.evals["sample"]
  return config


def cached_config(tokenizer_workdir, token_cache_dir, **overrides):
  return without_sampling(stage2_config(tokenizer_workdir, f"token_cache={token_cache_dir}",
                                        **overrides))


def test_cached_tokens_are_the_on_the_fly_tokens(tokenizer_workdir, cache):
  source = data_lib.make_source({"name": "tokens", "path": cache})
  manifest = source.manifest
  assert len(source) == NUM_EXAMPLES and manifest["tokenizer_step"] == 2
  assert manifest["tokenizer"] == tokenizer_workdir and manifest["codebook_size"] == 125
  assert manifest["data"] == {"name": "scenes", "split": "train", "image_size": 16,
                              "num_examples": NUM_EXAMPLES}
  # Data workers get a pickled source, which maps the files anew.
  np.testing.assert_array_equal(pickle.loads(pickle.dumps(source))[5]["tokens"],
                                source[5]["tokens"])
  tokenizer = load_frozen(tokenizer_workdir)
  scenes = data_lib.make_source(manifest["data"])
  tokenize_fn = jax.jit(tokenizer.tokenize)
  for start in range(0, NUM_EXAMPLES, 8):  # On the fly, in Stage II's batches of 8.
    images = np.stack([scenes[i]["image"] for i in range(start, start + 8)])
    on_the_fly = np.asarray(tokenize_fn(tokenizer.variables, images))
    cached = stack([source[i] for i in range(start, start + 8)])
    assert cached["tokens"].dtype == np.int32 and cached["tokens"].shape == (8, 8, 8)
    np.testing.assert_array_equal(cached["tokens"], on_the_fly)
    np.testing.assert_array_equal(cached["label"],
                                  [scenes[i]["label"] for i in range(start, start + 8)])


def test_stage2_from_the_cache_trains_as_on_the_fly(tokenizer_workdir, cache, tmp_path):
  on_the_fly = without_sampling(stage2_config(tokenizer_workdir, log_every=1))
  with on_the_fly.unlocked():
    on_the_fly.data.train.num_examples = NUM_EXAMPLES
  from_cache = cached_config(tokenizer_workdir, cache, log_every=1)
  for name, config in (("fly", on_the_fly), ("cache", from_cache)):
    train(make_stage(config), config, str(tmp_path / name))
  assert from_cache.data.train.to_dict() == {"name": "tokens", "path": cache}
  with open(tmp_path / "cache" / "config.json") as f:
    assert json.load(f)["data"]["train"]["name"] == "tokens"
  losses = [[e["train/loss"] for e in read_metrics(str(tmp_path / name)) if "train/loss" in e]
            for name in ("fly", "cache")]
  assert len(losses[0]) == 4
  np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6)
  fly, cached = (restore_params(str(tmp_path / name), 4)["train"]["params"]
                 for name in ("fly", "cache"))
  assert_trees_equal(fly, cached)


@pytest.mark.parametrize("key, value, message", [
    ("tokenizer_step", 1, "tokens of checkpoint 1, and the tokenizer's latest checkpoint is 2"),
    ("tokenizer", "/elsewhere", "made by the tokenizer in '/elsewhere'"),
    ("codebook_size", 1000, "codebook size is 1000, the tokenizer's 125")])
def test_a_cache_of_another_tokenizer_is_refused(tokenizer_workdir, cache, tmp_path, key, value,
                                                 message):
  other = str(tmp_path / "other")
  shutil.copytree(cache, other)
  with open(os.path.join(other, token_cache.MANIFEST)) as f:
    manifest = json.load(f)
  with open(os.path.join(other, token_cache.MANIFEST), "w") as f:
    json.dump({**manifest, key: value}, f)
  with pytest.raises(ValueError, match="does not match the tokenizer") as error:
    make_stage(cached_config(tokenizer_workdir, other))
  assert message in str(error.value) and "scripts.tokenize" in str(error.value)


def test_an_interrupted_cache_is_reported(tokenizer_workdir, cache, tmp_path):
  def failing_batches():
    yield np.zeros((4, 8, 8), np.int32), np.zeros((4,), np.int32)
    raise KeyboardInterrupt
  out = str(tmp_path / "interrupted")
  with pytest.raises(KeyboardInterrupt):
    token_cache.write_cache(out, {}, 8, failing_batches())
  assert os.listdir(tmp_path) == []  # Neither the cache nor its temporary directory.
  # A directory without a manifest, as a killed writer's temporary one would be.
  shutil.copytree(cache, out)
  os.remove(os.path.join(out, token_cache.MANIFEST))
  with pytest.raises(FileNotFoundError, match="has no manifest.json: .* interrupted"):
    data_lib.make_source({"name": "tokens", "path": out})
  with pytest.raises(ConfigError, match="token_cache: .* has no manifest.json"):
    validate(cached_config(tokenizer_workdir, out), device_count=8, process_count=1)
  with pytest.raises(FileExistsError, match="not empty"):
    tokenize.main([f"--tokenizer={tokenizer_workdir}", f"--out={out}", "--num_examples=1"])
