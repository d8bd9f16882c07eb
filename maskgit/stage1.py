"""MaskGIT Stage I: the VQGAN tokenizer trained with reconstruction, perceptual and GAN losses.

The generator is the VQGAN (fsq/models/conv_autoencoder.py with mid_blocks) around the quantizer the config names (FSQ or
VQ); the discriminator (maskgit/discriminator.py) has its own optimizer. Both nets are updated
every step from the same forward pass (arXiv 2309.15505, Sec. 4, MaskGIT: Adam(0, 0.99),
lr 1e-4, warmup).
Before `losses.gan_start_step` only the reconstruction (+ perceptual) loss trains the
generator and the discriminator stays as initialised (its optimizer's warmup starts then).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from fsq.images import to_model_range
from fsq.stages.base import Stage, train_state_parts
from fsq.stages.tokenizer import (FrozenTokenizer, apply_autoencoder,
                                  autoencoder_from_config, frozen_autoencoder)
from fsq.train.optim import make_optimizer
from fsq.train.state import TrainState, apply_gradients, ema_update
from maskgit import losses
from maskgit.discriminator import StyleGANDiscriminator


@flax.struct.dataclass
class Stage1State:
  """Generator (with the EMA of its weights), discriminator, and LeCam's logit EMAs."""
  step: jax.Array  # int32 scalar: steps taken, which gates the GAN loss.
  generator: TrainState
  discriminator: TrainState
  lecam_ema: jax.Array  # (2,): EMAs of the mean real and fake logits.


class Stage1(Stage):
  """The VQGAN tokenizer stage of fsq.train.loop.

  Predict methods: `reconstruct` (fsq.evaluators.reconstruction), with the generator's EMA
  weights. Frozen: a FrozenTokenizer of the EMA generator and the quantizer state (nothing of
  the discriminator, the optimizers or the perceptual network).

  Args:
    config: see configs/maskgit_tokenizer.py.
    perceptual_fn: frozen, jax-traceable `features(images_bhwc in [-1, 1]) -> pytree of
      arrays` for the perceptual loss; by default the network `losses.perceptual_network`
      names (fsq/evaluators/networks.py), needed when losses.perceptual_weight > 0. With
      `losses.perceptual_input="luma"` it reads the images' brightness only.
  """

  def __init__(self, config: ml_collections.ConfigDict,
               perceptual_fn: Callable[[jax.Array], Any] | None = None):
    cfg = config.losses
    if cfg.perceptual_weight > 0 and perceptual_fn is None:
      if not cfg.perceptual_network:
        raise ValueError(
            "losses.perceptual_weight > 0 needs a perceptual feature network: set "
            "losses.perceptual_network (scenes | inception), or losses.perceptual_weight=0.")
      from fsq.evaluators.networks import perceptual_feature_fn  # Loads weights.
      perceptual_fn = perceptual_feature_fn(cfg.perceptual_network, cfg.perceptual_weights)
    perceptual_input = cfg.get("perceptual_input", "rgb")  # Runs saved before the option.
    if perceptual_input not in losses.PERCEPTUAL_INPUTS:
      raise ValueError(f"losses.perceptual_input={perceptual_input!r}: choose one of "
                       f"{', '.join(losses.PERCEPTUAL_INPUTS)}.")
    if perceptual_fn is not None and perceptual_input == "luma":
      perceptual_fn = losses.luma_input(perceptual_fn)
    self.config = config
    self.perceptual_fn = perceptual_fn
    self.generator = autoencoder_from_config(config)
    self.codebook_size = self.generator.quantizer.codebook_size
    self.discriminator = StyleGANDiscriminator(**config.discriminator)
    self.g_tx = make_optimizer(config.optax, config.total_steps)
    self.d_tx = make_optimizer(config.d_optax, config.total_steps)
    self._reconstruct = jax.jit(self._reconstruct_batch)

  def parameters(self, state: Stage1State) -> Any:
    return state.generator.params

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> Stage1State:
    g_rng, d_rng = jax.random.split(rng)
    x = to_model_range(batch["image"][:1])
    variables = dict(self.generator.init({"params": g_rng}, x))
    g_params = variables.pop("params")
    d_params = self.discriminator.init(d_rng, x)["params"]
    generator = TrainState(params=g_params, opt_state=self.g_tx.init(g_params),
                           model_state=variables,
                           ema_params=g_params if self.config.ema_decay > 0 else None)
    discriminator = TrainState(params=d_params, opt_state=self.d_tx.init(d_params),
                               model_state={})
    return Stage1State(step=jnp.zeros((), jnp.int32), generator=generator,
                       discriminator=discriminator, lecam_ema=jnp.zeros((2,), jnp.float32))

  def _discriminate(self, params, x_bhwc: jax.Array) -> jax.Array:
    return self.discriminator.apply({"params": params}, x_bhwc)

  def train_step(self, state: Stage1State, batch: dict[str, jax.Array], rng: jax.Array,
                 frozen: Any):
    del frozen
    cfg = self.config.losses
    x = to_model_range(batch["image"])
    # A GAN starting after the last step is left out of the program altogether. Otherwise the
    # discriminator runs from step 0 and a select discards its effects before the start: not
    # lax.cond, inside which XLA's CPU backend runs convolutions ~20x slower (jax#12868).
    with_gan = cfg.gan_start_step < self.config.total_steps
    active = state.step >= cfg.gan_start_step

    def generator_loss_fn(params):
      (x_hat, aux), model_state = apply_autoencoder(
          self.generator, params, state.generator.model_state, x, True, rng)
      terms = {"recon_loss": losses.reconstruction_loss(x_hat, x, cfg.reconstruction),
               "quantizer_loss": aux["loss"]}  # 0 for FSQ: no auxiliary loss of any kind.
      loss = terms["recon_loss"] + aux["loss"]
      if cfg.perceptual_weight > 0:
        terms["perceptual_loss"] = losses.perceptual_loss(self.perceptual_fn, x_hat, x)
        loss += cfg.perceptual_weight * terms["perceptual_loss"]
      if with_gan:
        terms["g_adversarial_loss"] = losses.generator_loss(
            self._discriminate(state.discriminator.params, x_hat))
        loss += jnp.where(active, cfg.g_adversarial_weight, 0.0) * terms["g_adversarial_loss"]
      return loss, (x_hat, aux["indices"], model_state, terms)

    (loss, (x_hat, indices, model_state, terms)), g_grads = jax.value_and_grad(
        generator_loss_fn, has_aux=True)(state.generator.params)
    generator = apply_gradients(state.generator, g_grads, self.g_tx, self.config.ema_decay,
                                model_state)
    used = jnp.zeros((self.codebook_size,), jnp.int32).at[indices].max(1)
    metrics = {**terms, "loss": loss, "batch_usage": jnp.mean(used.astype(jnp.float32))}
    discriminator, lecam_ema = state.discriminator, state.lecam_ema
    if with_gan:
      d_grads, d_metrics = jax.grad(self._discriminator_loss, has_aux=True)(
          state.discriminator.params, x, jax.lax.stop_gradient(x_hat), state.lecam_ema)
      updated = apply_gradients(state.discriminator, d_grads, self.d_tx, 0.0)
      discriminator = jax.tree.map(lambda new, old: jnp.where(active, new, old), updated,
                                   state.discriminator)
      lecam_ema = jnp.where(active, ema_update(state.lecam_ema, jnp.stack(
          [d_metrics["logits_real"], d_metrics["logits_fake"]]), cfg.lecam_decay), lecam_ema)
      metrics.update(d_metrics, gan_active=active.astype(jnp.float32))
    state = Stage1State(step=state.step + 1, generator=generator, discriminator=discriminator,
                        lecam_ema=lecam_ema)
    return state, {f"train/{k}": v for k, v in metrics.items()}

  def _discriminator_loss(self, params, x_real, x_fake, lecam_ema):
    cfg = self.config.losses
    discriminate = functools.partial(self._discriminate, params)
    logits_fake = discriminate(x_fake)
    if cfg.r1_weight > 0:
      r1, logits_real = losses.r1_penalty(discriminate, x_real)
    else:
      r1, logits_real = jnp.zeros(()), discriminate(x_real)
    d_loss = losses.discriminator_loss(logits_real, logits_fake)
    lecam = jnp.zeros(())
    if cfg.lecam_weight > 0:
      lecam = losses.lecam_loss(logits_real, logits_fake, lecam_ema[0], lecam_ema[1])
    total = d_loss + cfg.r1_weight * r1 + cfg.lecam_weight * lecam
    return total, {"d_loss": d_loss, "r1_penalty": r1, "lecam_loss": lecam,
                   "logits_real": jnp.mean(logits_real), "logits_fake": jnp.mean(logits_fake)}

  def _reconstruct_batch(self, state: Stage1State, batch: dict[str, jax.Array]):
    generator = state.generator
    (x_hat, aux), _ = apply_autoencoder(self.generator, generator.eval_params(),
                                        generator.model_state, to_model_range(batch["image"]),
                                        False)
    return jnp.clip(x_hat, -1.0, 1.0), aux["indices"]

  def reconstruct(self, state: Stage1State, batch: dict[str, jax.Array]):
    """(x_hat in [-1, 1], indices) of a batch's images, with the generator's EMA weights."""
    return self._reconstruct(state, batch)

  @classmethod
  def export_paths(cls, config: ml_collections.ConfigDict) -> dict[str, tuple[str, ...]]:
    return train_state_parts(config, "generator")

  @classmethod
  def frozen(cls, config, variables, *, workdir: str, step: int) -> FrozenTokenizer:
    return frozen_autoencoder(config, variables, workdir=workdir, step=step)
