"""Stage I losses as pure functions: reconstruction, perceptual, GAN, R1, LeCam.

Logits are the discriminator's raw outputs (B,); images are (B, H, W, C) in [-1, 1].
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from fsq.data.image_ops import LUMA_WEIGHTS

RECONSTRUCTION_LOSSES = ("l2", "l1")
PERCEPTUAL_INPUTS = ("rgb", "luma")


def reconstruction_loss(x_hat: jax.Array, x: jax.Array, kind: str = "l2") -> jax.Array:
  """Mean squared ("l2") or absolute ("l1") error over every pixel and channel."""
  if kind == "l2":
    return jnp.mean((x_hat - x) ** 2)
  if kind == "l1":
    return jnp.mean(jnp.abs(x_hat - x))
  raise ValueError(f"reconstruction loss must be one of {RECONSTRUCTION_LOSSES}, got {kind!r}.")


def perceptual_loss(feature_fn: Callable[[jax.Array], Any], x_hat: jax.Array,
                    x: jax.Array) -> jax.Array:
  """Sum over the feature maps of `feature_fn` (any pytree of arrays) of their mean squared
  difference. The network behind `feature_fn` is frozen; it decides which layers and which
  normalisation (LPIPS-style unit-normalised channels, or ResNet logits as MAGVIT) count."""
  diffs = jax.tree.map(lambda a, b: jnp.mean((a - b) ** 2), feature_fn(x_hat), feature_fn(x))
  return sum(jax.tree.leaves(diffs), jnp.zeros((), jnp.float32))


def luma_input(feature_fn: Callable[[jax.Array], Any]) -> Callable[[jax.Array], Any]:
  """`feature_fn` of the images' BT.601 luma repeated over three channels: a perceptual loss
  that sees brightness only, so that colour is left to the reconstruction loss."""
  weights = jnp.asarray(LUMA_WEIGHTS)
  return lambda x_bhwc: feature_fn(jnp.repeat((x_bhwc @ weights)[..., None], 3, axis=-1))


def generator_loss(logits_fake: jax.Array) -> jax.Array:
  """Non-saturating generator loss -log sigmoid(D(G(z))) = softplus(-D(G(z)))."""
  return jnp.mean(jax.nn.softplus(-logits_fake))


def discriminator_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  """-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), averaged over each batch."""
  return jnp.mean(jax.nn.softplus(-logits_real)) + jnp.mean(jax.nn.softplus(logits_fake))


def r1_penalty(discriminator_fn: Callable[[jax.Array], jax.Array],
               x_real: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(E_x ||grad_x D(x)||^2 over real images, the logits D(x_real)).

  Mescheder et al. 2018. No gamma/2 factor: as in the StyleGAN/MaskGIT code, the config's
  penalty weight (10 in MaskGIT) multiplies this mean squared gradient norm directly.
  """
  def summed_logits(x):
    logits = discriminator_fn(x)
    return jnp.sum(logits), logits

  grads, logits = jax.grad(summed_logits, has_aux=True)(x_real)
  penalty = jnp.mean(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1))
  return penalty, logits


def lecam_loss(logits_real: jax.Array, logits_fake: jax.Array, ema_real: jax.Array,
               ema_fake: jax.Array) -> jax.Array:
  """LeCam regulariser (Tseng et al. 2021): E relu(D(x) - ema_fake)^2 +
  E relu(ema_real - D(G(z)))^2, anchored on EMAs of the mean logits. The one-sided (relu) form
  is that of the authors' code and MAGVIT's."""
  return (jnp.mean(jax.nn.relu(logits_real - ema_fake) ** 2)
          + jnp.mean(jax.nn.relu(ema_real - logits_fake) ** 2))

