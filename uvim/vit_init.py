"""A pretrained ViT (big_vision's .npz layout) as the image encoder of UViM's language model.

The paper initialises the LM's encoder from an ImageNet-21k ViT-L/16 (arXiv 2309.15505,
Sec. 4.2; the AugReg checkpoint "L_16-i21k-300ep-lr_0.001-aug_strong1-wd_0.1-do_0.0-sd_0.0.npz"
of big_vision's vit.py). Such a file is a flat .npz of "/"-joined parameter paths. Accepted
layouts, as big_vision's `vit.load` accepts them: blocks as `Transformer/encoderblock_{i}`
(pre-linen numbering LayerNorm_0/_2, MultiHeadDotProductAttention_1, MlpBlock_3, or the
linen one _0/_1, _0, _0) or stacked along a first axis as `Transformer/encoderblock` (scan);
the position embedding at the top, in `Transformer/` or in `Transformer/posembed_input/`, with
or without a class-token entry first (dropped: the LM reads every patch, no class token),
resampled bilinearly to the LM's patch grid. The classification head and class token are not
used. A 3-channel patch kernel loaded into a greyscale encoder (colourisation) is summed over
its channels: the same output as the RGB network on the grey image repeated three times.
"""
from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import scipy.ndimage
from flax import traverse_util

_POSITION = ("pos_embedding", "Transformer/pos_embedding",
             "Transformer/posembed_input/pos_embedding")


def _blocks(flat: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
  """Per encoder block, its parameters by path inside the block (linen names)."""
  stacked = {k.removeprefix("Transformer/encoderblock/"): v for k, v in flat.items()
             if k.startswith("Transformer/encoderblock/")}
  if stacked:
    depth = len(next(iter(stacked.values())))
    blocks = [{k: v[i] for k, v in stacked.items()} for i in range(depth)]
  else:
    blocks = []
    while any(k.startswith(f"Transformer/encoderblock_{len(blocks)}/") for k in flat):
      prefix = f"Transformer/encoderblock_{len(blocks)}/"
      blocks.append({k.removeprefix(prefix): v for k, v in flat.items() if k.startswith(prefix)})
  renamed = []
  for block in blocks:
    # Pre-linen checkpoints number sub-modules across types (LayerNorm_0, MHDPA_1,
    # LayerNorm_2, MlpBlock_3): renumber per type in order, as flax's convert_pre_linen.
    index = {}
    modules = sorted({k.split("/")[0] for k in block}, key=lambda m: int(m.rsplit("_", 1)[1]))
    for module in modules:
      kind = module.rsplit("_", 1)[0]
      index[module] = f"{kind}_{sum(m.rsplit('_', 1)[0] == kind for m in index)}"
    renamed.append({index[k.split("/")[0]] + "/" + k.split("/", 1)[1]: v
                    for k, v in block.items()})
  return renamed


def _position(flat: dict[str, np.ndarray], length: int) -> np.ndarray:
  """(1, length, width) position embedding resampled to a square grid of `length` patches."""
  key = next((k for k in _POSITION if k in flat), None)
  if key is None:
    raise ValueError(f"no position embedding (one of {', '.join(_POSITION)}) in the checkpoint.")
  position = flat[key]
  side = int(round(np.sqrt(position.shape[1])))
  if side * side != position.shape[1]:  # A class-token entry first.
    position = position[:, 1:]
    side = int(round(np.sqrt(position.shape[1])))
  new_side = int(round(np.sqrt(length)))
  if side == new_side:
    return position
  grid = position.reshape(side, side, -1)
  grid = scipy.ndimage.zoom(grid, (new_side / side, new_side / side, 1), order=1)
  return grid.reshape(1, new_side * new_side, -1)


def _encoder_tree(flat: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
  """The checkpoint's encoder under the LM's parameter paths."""
  tree = {"patch_embedding/kernel": flat["embedding/kernel"],
          "patch_embedding/bias": flat["embedding/bias"],
          "encoder_position_embedding": _position(flat, length),
          "encoder/norm/scale": flat["Transformer/encoder_norm/scale"],
          "encoder/norm/bias": flat["Transformer/encoder_norm/bias"]}
  ours = {"LayerNorm_0": "self_attention/norm",
          "MultiHeadDotProductAttention_0": "self_attention/attention",
          "LayerNorm_1": "mlp/norm", "MlpBlock_0/Dense_0": "mlp/dense_in",
          "MlpBlock_0/Dense_1": "mlp/dense_out"}
  for i, block in enumerate(_blocks(flat)):
    for path, value in block.items():
      module = next((m for m in ours if path.startswith(m + "/")), None)
      if module is None:
        raise ValueError(f"unexpected parameter Transformer/encoderblock_{i}/{path}.")
      tree[f"encoder/block_{i}/{ours[module]}{path[len(module):]}"] = value
  return tree


def load_vit_encoder(path: str, params: dict) -> dict:
  """`params` (the LM's) with the image encoder replaced by the ViT in the .npz at `path`.

  Raises ValueError naming the first mismatch (depth, width, patch size, a missing array).
  """
  if not os.path.isfile(path):
    raise ValueError(f"model_init={path!r}: no such file (a ViT .npz in big_vision's layout).")
  with np.load(path) as npz:
    flat = {key: npz[key] for key in npz.files}
  length = params["encoder_position_embedding"].shape[1]
  try:
    loaded = _encoder_tree(flat, length)
  except KeyError as missing:
    raise ValueError(f"model_init={path!r} has no {missing}: not a ViT .npz.") from None
  kernel = loaded["patch_embedding/kernel"]
  ours = traverse_util.flatten_dict(params, sep="/")
  if kernel.shape[2] == 3 and ours["patch_embedding/kernel"].shape[2] == 1:
    loaded["patch_embedding/kernel"] = kernel.sum(axis=2, keepdims=True)
  encoder = {k for k in ours if k.split("/")[0] in ("patch_embedding", "encoder",
                                                     "encoder_position_embedding")}
  unmatched = sorted(encoder ^ set(loaded))
  if unmatched:
    where = "checkpoint" if unmatched[0] in loaded else "LM"
    raise ValueError(f"model_init={path!r}: {unmatched[0]} is in the {where} only (the "
                     f"checkpoint has {len(_blocks(flat))} encoder blocks; set "
                     "model.encoder_depth to match).")
  for name, value in loaded.items():
    if np.shape(ours[name]) != value.shape:
      raise ValueError(f"model_init={path!r}: {name} is {value.shape} in the checkpoint, "
                       f"{np.shape(ours[name])} in the LM (patch size, width, heads or "
                       f"mlp_dim differ).")
    ours[name] = jnp.asarray(value, dtype=ours[name].dtype)
  return traverse_util.unflatten_dict(ours, sep="/")
