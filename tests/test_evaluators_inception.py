"""FID InceptionV3 module, weight loading and conversion (no torch needed)."""
import sys

import numpy as np
import pytest
from flax import traverse_util

from fsq.evaluators import inception
from scripts import convert_inception_weights as convert


def random_variables(seed: int = 0) -> dict:
  """He-initialised kernels and non-trivial BatchNorm statistics: activations stay O(1)."""
  rng = np.random.default_rng(seed)
  flat = {}
  for key, leaf in traverse_util.flatten_dict(inception.variable_shapes(), sep="/").items():
    if key.endswith("kernel"):
      fan_in = np.prod(leaf.shape[:-1])
      flat[key] = rng.normal(0, np.sqrt(2 / fan_in), leaf.shape)
    elif key.endswith(("scale", "var")):
      flat[key] = rng.uniform(0.5, 1.5, leaf.shape)
    else:  # bias, mean
      flat[key] = rng.normal(0, 0.2, leaf.shape)
  return {k: v.astype(np.float32) for k, v in flat.items()}


def test_features_shape_and_determinism():
  features = inception.make_feature_fn(traverse_util.unflatten_dict(random_variables(), sep="/"))
  images = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
  out = features(images)
  assert out.shape == (2, inception.FEATURE_DIM) and out.dtype == np.float32
  assert np.all(np.isfinite(out)) and np.all(out >= 0)  # pool3 averages ReLU outputs.
  assert not np.allclose(out[0], out[1])
  np.testing.assert_array_equal(features(images), out)
  images_uint8 = np.round((images + 1) * 127.5).astype(np.uint8)
  np.testing.assert_allclose(features(images_uint8), features(images_uint8 / 127.5 - 1),
                             rtol=1e-4, atol=1e-5)


def test_missing_weights_error_names_file_and_command(tmp_path):
  path = str(tmp_path / "missing.npz")
  with pytest.raises(FileNotFoundError) as error:
    inception.load_variables(path)
  message = str(error.value)
  assert path in message and inception.WEIGHTS_FILE in message
  assert "python -m scripts.convert_inception_weights" in message


def test_load_roundtrip_and_wrong_file(tmp_path):
  flat = random_variables()
  good = tmp_path / "good.npz"
  np.savez(good, **flat)
  loaded = traverse_util.flatten_dict(inception.load_variables(str(good)), sep="/")
  assert loaded.keys() == flat.keys()
  np.testing.assert_array_equal(loaded["params/Mixed_7c/branch_pool/conv/kernel"],
                                flat["params/Mixed_7c/branch_pool/conv/kernel"])
  bad = tmp_path / "bad.npz"
  np.savez(bad, **{k: v for k, v in flat.items() if "Mixed_7c" not in k})
  with pytest.raises(ValueError, match="missing .*Mixed_7c"):
    inception.load_variables(str(bad))


def _as_torch_state_dict(flat: dict) -> dict:
  """Inverse of the conversion, written independently: flax names/layouts -> pytorch-fid's."""
  torch_names = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
                 "var": "running_var"}
  state_dict = {"fc.weight": np.zeros((1008, 2048)), "fc.bias": np.zeros(1008)}
  for key, value in flat.items():
    _, *path, leaf = key.split("/")
    if leaf == "kernel":
      value = value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    state_dict[".".join(path + [torch_names[leaf]])] = value
    state_dict[".".join(path[:-1] + ["bn", "num_batches_tracked"])] = np.array(0)
  return state_dict


def test_convert_state_dict_renames_and_transposes():
  flat = random_variables()
  state_dict = _as_torch_state_dict(flat)
  assert state_dict["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
  converted = convert.convert_state_dict(state_dict)
  assert converted.keys() == flat.keys()
  for key in flat:
    np.testing.assert_array_equal(converted[key], flat[key])
  with pytest.raises(ValueError, match="unexpected entry 'AuxLogits.fc.weight'"):
    convert.convert_state_dict({**state_dict, "AuxLogits.fc.weight": np.zeros((1008, 768))})


def test_converter_without_torch_says_how_to_get_it(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError.
  with pytest.raises(SystemExit, match="pip install torch"):
    convert.main(["--input", str(tmp_path / "x.pth"), "--output", str(tmp_path / "x.npz")])


def test_tf_graph_preprocessing():
  # Expected values as printed by TF's tf.compat.v1.image.resize_bilinear (legacy alignment).
  np.testing.assert_allclose(inception._tf1_bilinear_matrix(8, 12) @ np.arange(8.0),
                             [0, 2 / 3, 4 / 3, 2, 8 / 3, 10 / 3, 4, 14 / 3, 16 / 3, 6, 20 / 3, 7],
                             rtol=1e-6)
  np.testing.assert_allclose(inception._tf1_bilinear_matrix(8, 5) @ np.arange(8.0),
                             [0, 1.6, 3.2, 4.8, 6.4], rtol=1e-6)
  # The graph maps uint8 255 and 0 (x = 1 and -1) to (u - 128) / 128 = 127/128 and -1.
  x = np.ones((2, 299, 299, 3), np.float32) * np.array([1, -1], np.float32)[:, None, None, None]
  np.testing.assert_allclose(inception._preprocess(x, tf_graph=True)[:, 5, 7, 0], [127 / 128, -1],
                             rtol=1e-6)
  np.testing.assert_array_equal(inception._preprocess(x, tf_graph=False), x)
