"""Feature networks by config name: perceptual maps and FID features."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import maskgit_tokenizer
from fsq.evaluators import networks, scenes_features
from maskgit.losses import perceptual_loss
from test_evaluators_inception import random_variables


def _images(seed: int, n: int = 2, size: int = 64) -> jax.Array:
  return jax.random.uniform(jax.random.key(seed), (n, size, size, 3), minval=-1, maxval=1)


def test_scenes_perceptual_maps_are_unit_rms_and_the_loss_sees_differences():
  features = networks.perceptual_feature_fn("scenes")
  x = _images(0)
  maps = features(x)
  # Every GroupNorm of the classifier: the stem and two per width, 64 px -> 32 .. 4.
  assert sorted(m.shape[1] for m in maps) == [4, 4, 8, 8, 16, 16, 32]
  for m in maps:
    np.testing.assert_allclose(jnp.mean(m**2, axis=-1), 1.0, rtol=1e-4)
  loss = jax.jit(lambda a, b: perceptual_loss(features, a, b))
  assert float(loss(x, x)) == 0.0
  blurred = (x + jnp.roll(x, 1, axis=1) + jnp.roll(x, 1, axis=2)) / 3
  noisy = jnp.clip(x + 0.5 * jax.random.normal(jax.random.key(1), x.shape), -1, 1)
  assert 0 < float(loss(x, blurred)) and 0 < float(loss(x, noisy))
  grad = jax.grad(lambda a: perceptual_loss(features, a, x))(blurred)
  assert jnp.all(jnp.isfinite(grad)) and float(jnp.max(jnp.abs(grad))) > 0


def test_scenes_fid_features_are_the_domain_networks():
  x = np.asarray(_images(2, n=3))
  np.testing.assert_array_equal(networks.fid_feature_fn("scenes")(x),
                                scenes_features.load_scenes_network().features(x))


def test_the_judge_gives_features_and_class_probabilities_in_one_pass(tmp_path, monkeypatch):
  x = np.asarray(_images(5, n=3))
  net = scenes_features.load_scenes_network()
  features, probs = networks.judge_fn("scenes")(x)
  np.testing.assert_array_equal(features, net.features(x))
  np.testing.assert_array_equal(probs, net.class_probabilities(x))
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  # Inception: no classifier, and any number of images in batches of INCEPTION_BATCH (here 2:
  # the last batch of 3 images padded), each row its own image's features.
  path = tmp_path / "inception.npz"
  np.savez(path, **random_variables())
  monkeypatch.setattr(networks, "INCEPTION_BATCH", 2)
  features, probs = networks.judge_fn("inception", str(path))(_images(6, n=3, size=32))
  alone = networks.fid_feature_fn("inception", str(path))(_images(6, n=3, size=32)[2:])
  assert probs is None and features.shape == (3, 2048)
  np.testing.assert_allclose(features[2:], alone, rtol=1e-4, atol=1e-5)


def test_the_scenes_tokenizers_perceptual_network_is_not_the_judge():
  """Seed 1's network (the perceptual loss of configs/maskgit_tokenizer.py's scenes variant)
  has the judge's architecture and task, and its own features."""
  x = np.asarray(_images(4, n=3))
  judge, loss_net = (networks.fid_feature_fn(name)(x) for name in ("scenes", "scenes_seed1"))
  assert judge.shape == loss_net.shape == (3, 256)
  assert np.max(np.abs(judge - loss_net)) > 0.1 * np.max(np.abs(judge))
  config = maskgit_tokenizer.get_config("tokens=8")
  assert config.losses.perceptual_network == "scenes_seed1"
  assert config.evals.recon.network == "scenes"


def test_inception_perceptual_maps_from_a_user_file(tmp_path):
  path = tmp_path / "inception.npz"
  np.savez(path, **random_variables())
  maps = networks.perceptual_feature_fn("inception", str(path))(_images(3, n=1, size=32))
  assert sorted(m.shape[1:] for m in maps) == [(8, 8, 2048), (17, 17, 768), (35, 35, 288)]
  assert networks.fid_feature_fn("inception", str(path))(_images(3, n=1)).shape == (1, 2048)


def test_unknown_or_missing_networks_fail_clearly(tmp_path, monkeypatch):
  with pytest.raises(ValueError, match="choose one of scenes, scenes_seed1, inception"):
    networks.perceptual_feature_fn("vgg")
  with pytest.raises(FileNotFoundError, match="convert_inception_weights"):
    networks.fid_feature_fn("inception", str(tmp_path / "missing.npz"))
  with pytest.raises(FileNotFoundError, match="train_scenes_classifier"):
    networks.perceptual_feature_fn("scenes", str(tmp_path / "missing.msgpack"))
  monkeypatch.setattr(scenes_features, "WEIGHTS_DIR", str(tmp_path))  # A checkout without it.
  with pytest.raises(FileNotFoundError, match=r"rebuilt by .*train_scenes_classifier "
                                              r"--config_arg=seed=1"):
    scenes_features.load_scenes_network(scenes_features.weights_path(1))
