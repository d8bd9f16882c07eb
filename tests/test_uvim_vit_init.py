"""A big_vision ViT .npz as the image encoder of UViM's language model (uvim/vit_init.py).

The files are made here: random weights under the names of big_vision's ViT (the AugReg
checkpoints' pre-linen numbering, the linen one, the scanned stack). The loaded encoder is
checked against a numpy forward pass of big_vision's ViT that reads the file directly.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from uvim.lm import LanguageModel
from uvim.vit_init import load_vit_encoder

WIDTH, HEADS, MLP, DEPTH, PATCH = 16, 2, 32, 2, 4
NAMES = {"pre_linen": ("LayerNorm_0", "MultiHeadDotProductAttention_1", "LayerNorm_2",
                       "MlpBlock_3"),
         "linen": ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")}


def bv_vit(grid: int, layout: str = "pre_linen", channels: int = 3) -> dict[str, np.ndarray]:
  """A ViT with a class token and a classifier head in big_vision's .npz layout."""
  rng = np.random.default_rng(0)
  r = lambda *shape, mean=0.0: (mean + 0.3 * rng.normal(size=shape)).astype(np.float32)
  head = WIDTH // HEADS
  flat = {"embedding/kernel": r(PATCH, PATCH, channels, WIDTH), "embedding/bias": r(WIDTH),
          "cls": r(1, 1, WIDTH), "head/kernel": r(WIDTH, 10), "head/bias": r(10),
          "Transformer/posembed_input/pos_embedding": r(1, grid * grid + 1, WIDTH),
          "Transformer/encoder_norm/scale": r(WIDTH, mean=1.0),
          "Transformer/encoder_norm/bias": r(WIDTH)}
  norm_1, attention, norm_2, mlp = NAMES["linen" if layout == "scan" else layout]
  for i in range(DEPTH):
    block = f"Transformer/encoderblock_{i}/"
    for norm in (norm_1, norm_2):
      flat[f"{block}{norm}/scale"], flat[f"{block}{norm}/bias"] = r(WIDTH, mean=1.0), r(WIDTH)
    for name in ("query", "key", "value"):
      flat[f"{block}{attention}/{name}/kernel"] = r(WIDTH, HEADS, head)
      flat[f"{block}{attention}/{name}/bias"] = r(HEADS, head)
    flat[f"{block}{attention}/out/kernel"] = r(HEADS, head, WIDTH)
    flat[f"{block}{attention}/out/bias"] = r(WIDTH)
    for j, (n_in, n_out) in enumerate([(WIDTH, MLP), (MLP, WIDTH)]):
      flat[f"{block}{mlp}/Dense_{j}/kernel"] = r(n_in, n_out)
      flat[f"{block}{mlp}/Dense_{j}/bias"] = r(n_out)
  if layout == "scan":  # big_vision's scan=True: one block, each array stacked over depth.
    blocks = [k for k in flat if k.startswith("Transformer/encoderblock_0/")]
    for key in blocks:
      path = key.removeprefix("Transformer/encoderblock_0/")
      flat[f"Transformer/encoderblock/{path}"] = np.stack(
          [flat.pop(f"Transformer/encoderblock_{i}/{path}") for i in range(DEPTH)])
  return flat


def reference_encode(flat: dict[str, np.ndarray], image_bhwc: np.ndarray) -> np.ndarray:
  """big_vision's ViT without class token and head, in numpy, from the file's arrays."""
  def norm(x, prefix):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-6) * flat[prefix + "/scale"] + flat[prefix + "/bias"]

  def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

  b, h, w, c = image_bhwc.shape
  patches = image_bhwc.reshape(b, h // PATCH, PATCH, w // PATCH, PATCH, c)
  patches = patches.transpose(0, 1, 3, 2, 4, 5).reshape(b, -1, PATCH * PATCH * c)
  x = patches @ flat["embedding/kernel"].reshape(-1, WIDTH) + flat["embedding/bias"]
  x = x + flat["Transformer/posembed_input/pos_embedding"][:, 1:]
  norm_1, attention, norm_2, mlp = NAMES["pre_linen"]
  for i in range(DEPTH):
    block = f"Transformer/encoderblock_{i}/"
    y = norm(x, block + norm_1)
    q, k, v = (np.einsum("bnd,dhk->bnhk", y, flat[f"{block}{attention}/{n}/kernel"])
               + flat[f"{block}{attention}/{n}/bias"] for n in ("query", "key", "value"))
    logits = np.einsum("bqhk,bnhk->bhqn", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    y = np.einsum("bhqn,bnhk->bqhk", weights, v)
    x = x + np.einsum("bqhk,hkd->bqd", y, flat[f"{block}{attention}/out/kernel"]) \
        + flat[f"{block}{attention}/out/bias"]
    y = norm(x, block + norm_2)
    y = gelu(y @ flat[f"{block}{mlp}/Dense_0/kernel"] + flat[f"{block}{mlp}/Dense_0/bias"])
    x = x + y @ flat[f"{block}{mlp}/Dense_1/kernel"] + flat[f"{block}{mlp}/Dense_1/bias"]
  return norm(x, "Transformer/encoder_norm")


def lm(image_size: int = 16, depth: int = DEPTH, width: int = WIDTH) -> LanguageModel:
  return LanguageModel(vocab_size=9, seq_len=4, image_size=image_size, patch_size=PATCH,
                       width=width, encoder_depth=depth, decoder_depth=1, mlp_dim=MLP,
                       num_heads=HEADS)


def init(model: LanguageModel, channels: int = 3) -> dict:
  image = jnp.zeros((1, model.image_size, model.image_size, channels))
  return model.init(jax.random.key(1), image, jnp.zeros((1, 4), jnp.int32))["params"]


def save(tmp_path, flat, name="vit.npz") -> str:
  path = str(tmp_path / name)
  np.savez(path, **flat)
  return path


@pytest.mark.parametrize("layout", ["pre_linen", "linen", "scan"])
def test_the_loaded_encoder_computes_big_visions_vit(layout, tmp_path):
  model = lm()
  params = init(model)
  loaded = load_vit_encoder(save(tmp_path, bv_vit(4, layout)), params)
  image = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  encoded = model.apply({"params": loaded}, image, method="encode")
  np.testing.assert_allclose(encoded, reference_encode(bv_vit(4), image), atol=2e-4)
  # The decoder keeps its own initialisation.
  jax.tree.map(np.testing.assert_array_equal, loaded["decoder"], params["decoder"])


def test_a_greyscale_encoder_sees_the_grey_image_as_the_rgb_network_does(tmp_path):
  model = lm()
  loaded = load_vit_encoder(save(tmp_path, bv_vit(4)), init(model, channels=1))
  grey = np.random.default_rng(3).uniform(-1, 1, (2, 16, 16, 1)).astype(np.float32)
  np.testing.assert_allclose(model.apply({"params": loaded}, grey, method="encode"),
                             reference_encode(bv_vit(4), np.repeat(grey, 3, -1)), atol=2e-4)


def test_the_position_embedding_is_resampled_bilinearly_to_the_patch_grid(tmp_path):
  flat = bv_vit(4)
  rows, cols = np.meshgrid(np.arange(4.0), np.arange(4.0), indexing="ij")
  slope = np.random.default_rng(4).normal(size=(2, WIDTH))
  linear = rows[..., None] * slope[0] + cols[..., None] * slope[1]  # (4, 4, WIDTH)
  flat["Transformer/posembed_input/pos_embedding"][0, 1:] = linear.reshape(16, WIDTH)
  loaded = load_vit_encoder(save(tmp_path, flat), init(lm(image_size=32)))
  # Bilinear resampling of a linear function is exact; the corners stay where they are.
  rows, cols = np.meshgrid(np.linspace(0, 3, 8), np.linspace(0, 3, 8), indexing="ij")
  expected = rows[..., None] * slope[0] + cols[..., None] * slope[1]
  np.testing.assert_allclose(loaded["encoder_position_embedding"][0],
                             expected.reshape(64, WIDTH), atol=1e-4)


def test_a_checkpoint_that_does_not_fit_the_lm_is_one_clear_error(tmp_path):
  path = save(tmp_path, bv_vit(4))
  with pytest.raises(ValueError, match="set model.encoder_depth to match"):
    load_vit_encoder(path, init(lm(depth=3)))
  with pytest.raises(ValueError, match=r"\(4, 4, 3, 16\) in the checkpoint, \(4, 4, 3, 32\) in"):
    load_vit_encoder(path, init(lm(width=32)))
  with pytest.raises(ValueError, match="not a ViT .npz"):
    load_vit_encoder(save(tmp_path, {"weights": np.zeros(3)}, "other.npz"), init(lm()))
  with pytest.raises(ValueError, match="no such file"):
    load_vit_encoder(str(tmp_path / "missing.npz"), init(lm()))


def test_a_pretrained_encoder_learns_at_a_tenth_of_the_rate(tmp_path):
  """configs/uvim_lm.py model_init=: lr x0.1 on exactly the encoder's parameters."""
  from configs import uvim_lm
  from fsq.config import ConfigError
  path = save(tmp_path, bv_vit(4))
  assert uvim_lm.get_config("oracle=o,runlocal").optax.lr_mults == ()
  config = uvim_lm.get_config(f"oracle=o,runlocal,model_init={path}")
  assert config.model_init == path
  (pattern, mult), = config.optax.lr_mults
  names = traverse_util.flatten_dict(init(lm()), sep="/")
  slow = {n for n in names if re.fullmatch(pattern, n)}
  assert mult == 0.1 and slow == {n for n in names if not n.startswith("decoder/")}
  with pytest.raises(ConfigError, match="no such file"):
    uvim_lm.get_config(f"oracle=o,runlocal,model_init={tmp_path}/missing.npz")
