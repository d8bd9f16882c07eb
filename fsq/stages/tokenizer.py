"""The convolutional autoencoder as a stage part and as a frozen tokenizer for Stage II.

Shared by the VQ-VAE stage (fsq/stages/vqvae.py) and MaskGIT Stage I (maskgit/stage1.py).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import ml_collections

from fsq.images import to_model_range
from fsq.models.conv_autoencoder import ConvVQVAE
from fsq.quantizers import make_quantizer
from fsq.stages.base import inference_variables


@dataclasses.dataclass(frozen=True)
class FrozenTokenizer:
  """A convolutional autoencoder's inference half: images <-> token grids.

  `variables` are the evaluation weights ("params", the EMA ones where the run kept them)
  and the quantizer's state; the methods take them as an argument so a jitted caller passes
  them in rather than baking them into its program. `workdir` and `step` say which run and
  checkpoint this is.
  """
  model: nn.Module
  variables: dict[str, Any]
  codebook_size: int
  config: ml_collections.ConfigDict
  workdir: str
  step: int

  def tokenize(self, variables: dict[str, Any], image_uint8: jax.Array) -> jax.Array:
    """(B, H, W, 3) uint8 images -> (B, h, w) token indices."""
    _, aux = self.model.apply(variables, to_model_range(image_uint8), method="encode")
    return aux["indices"]

  def detokenize(self, variables: dict[str, Any], indices_bhw: jax.Array) -> jax.Array:
    """(B, h, w) token indices -> (B, H, W, 3) images in [-1, 1]."""
    return self.model.apply(variables, indices_bhw, method="decode_indices")


def apply_autoencoder(model: ConvVQVAE, params: Any, model_state: dict[str, Any],
                      x_bhwc: jax.Array, train: bool, rng: jax.Array | None = None):
  """((x_hat, aux), new model_state): training updates a stateful quantizer's statistics
  (the EMA VQ's codebook, with rng stream "vq")."""
  variables = {"params": params, **model_state}
  if train and model_state:
    return model.apply(variables, x_bhwc, train=True, rngs={"vq": rng}, mutable=list(model_state))
  return model.apply(variables, x_bhwc, train=train), model_state


def autoencoder_from_config(config: ml_collections.ConfigDict) -> ConvVQVAE:
  return ConvVQVAE(make_quantizer(**config.quantizer), **config.model)


def frozen_autoencoder(config: ml_collections.ConfigDict, variables: dict[str, Any], *,
                       workdir: str, step: int) -> FrozenTokenizer:
  model = autoencoder_from_config(config)
  return FrozenTokenizer(model, inference_variables(variables), model.quantizer.codebook_size,
                         config, workdir, step)
