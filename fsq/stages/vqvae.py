"""The plain VQ-VAE stage: encoder, FSQ or VQ, decoder, reconstruction loss, nothing else."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from fsq.distributed import to_host
from fsq.evaluators.fid import RunningStatistics, frechet_distance
from fsq.models.conv_autoencoder import ConvVQVAE
from fsq.quantizers import CodebookUsage, make_quantizer
from fsq.train.optim import make_optimizer
from fsq.train.state import TrainState, apply_gradients


def to_model_range(image_uint8: jax.Array) -> jax.Array:
  return image_uint8.astype(jnp.float32) / 127.5 - 1.0


def to_uint8(x: np.ndarray) -> np.ndarray:
  return np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def reconstruction_errors(x: jax.Array, x_hat: jax.Array) -> dict[str, jax.Array]:
  """Per-image MSE and PSNR (dB) on [0, 1] images, from images in [-1, 1]."""
  mse = jnp.mean(((jnp.clip(x_hat, -1.0, 1.0) - x) / 2.0) ** 2, axis=(1, 2, 3))
  return {"mse": mse, "psnr": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))}


def image_grid(rows: list[np.ndarray]) -> np.ndarray:
  """Rows of (N, H, W, 3) uint8 images -> one (rows * H, N * W, 3) image."""
  return np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)


def latent_dim(quantizer_config: ml_collections.ConfigDict, vq_dim: int) -> int:
  return len(quantizer_config.levels) if quantizer_config.name == "fsq" else vq_dim


def _network_fn_from_config(config: ml_collections.ConfigDict, kind: str):
  """`networks.<kind>(network, weights)` for the network `config.fid` names, or None."""
  fid = config.get("fid")
  if fid is None or not fid.network:
    return None
  from fsq.evaluators import networks  # Loads weights: only when asked.
  return getattr(networks, kind)(fid.network, fid.weights)


def fid_feature_fn_from_config(config: ml_collections.ConfigDict):
  """The FID feature function `config.fid` names ({"network", "weights"}), or None."""
  return _network_fn_from_config(config, "fid_feature_fn")


def class_probability_fn_from_config(config: ml_collections.ConfigDict):
  """The classifier of the network `config.fid` names (the scenes network), or None."""
  return _network_fn_from_config(config, "class_probability_fn")


def tokenize(model: ConvVQVAE, state: TrainState, image_uint8: jax.Array) -> jax.Array:
  """(B, H, W, 3) uint8 images -> (B, h, w) token indices, with the evaluation parameters."""
  variables = {"params": state.eval_params(), **state.model_state}
  _, aux = model.apply(variables, to_model_range(image_uint8), method="encode")
  return aux["indices"]


def detokenize(model: ConvVQVAE, state: TrainState, indices_bhw: jax.Array) -> jax.Array:
  """(B, h, w) token indices -> (B, H, W, 3) images in [-1, 1]."""
  variables = {"params": state.eval_params(), **state.model_state}
  return model.apply(variables, indices_bhw, method="decode_indices")


def evaluate_reconstructions(eval_step: Callable[[dict], tuple], batches: Iterable[dict],
                             codebook_size: int, fid_feature_fn: Callable | None = None,
                             class_probability_fn: Callable | None = None):
  """Reconstruction metrics over every real (unmasked) example of the held-out `batches`.

  `eval_step(batch) -> (reconstruction_errors, indices, x_hat in [-1, 1])`. Returns
  eval/mse and eval/psnr (per image, averaged), codebook usage over the whole split, eval/fid
  (reconstructions against originals in `fid_feature_fn`'s features) when one is given,
  eval/class_consistency (the fraction of reconstructions `class_probability_fn` assigns to
  their image's label: the ceiling of a Stage II model's class consistency on these tokens)
  when one is given, and an image of 8 originals above their reconstructions.
  """
  usage = CodebookUsage(codebook_size)
  sums, count, grid = {"mse": 0.0, "psnr": 0.0}, 0, None
  if class_probability_fn is not None:
    sums["class_consistency"] = 0.0
  fid_stats = None if fid_feature_fn is None else (RunningStatistics(), RunningStatistics())
  for batch in batches:
    per_image, indices, x_hat = eval_step(batch)
    mask, image, x_hat = to_host(batch["mask"]), to_host(batch["image"]), to_host(x_hat)
    for k, v in per_image.items():
      sums[k] += float(np.sum(to_host(v)[mask]))
    count += int(mask.sum())
    usage.update(indices, valid=batch["mask"])
    if fid_stats is not None and mask.any():
      fid_stats[0].update(fid_feature_fn(np.asarray(to_model_range(image[mask]))))
      fid_stats[1].update(fid_feature_fn(x_hat[mask]))
    if class_probability_fn is not None and mask.any():
      predicted = np.argmax(class_probability_fn(x_hat[mask]), axis=-1)
      sums["class_consistency"] += float(np.sum(predicted == to_host(batch["label"])[mask]))
    if grid is None:
      n = min(8, x_hat.shape[0])
      grid = image_grid([image[:n], to_uint8(x_hat[:n])])
  metrics = {f"eval/{k}": v / count for k, v in sums.items()}
  metrics.update({f"eval/{k}": v for k, v in usage.summary().items()})
  if fid_stats is not None:
    real, reconstructed = (s.result() for s in fid_stats)
    metrics["eval/fid"] = frechet_distance(*reconstructed, *real)
  return metrics, {"eval/reconstructions": grid}


class VQVAEStage:
  """Reconstruction with an L2 loss plus the quantizer's auxiliary loss (0 for FSQ).

  Evaluation (`evaluate_reconstructions`) reports PSNR, MSE, codebook usage over the whole
  held-out split and, when `config.fid` names a network, the reconstruction FID; with the EMA
  parameters when ema_decay > 0.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.fid_feature_fn = fid_feature_fn_from_config(config)
    quantizer = make_quantizer(**config.quantizer)
    self.codebook_size = quantizer.codebook_size
    model = config.model
    self.model = ConvVQVAE(quantizer, latent_dim(config.quantizer, model.vq_dim),
                           width=model.width, channel_multipliers=model.channel_multipliers,
                           num_res_blocks=model.num_res_blocks)
    self.tx = make_optimizer(config.optax, config.total_steps)
    self._eval_step = jax.jit(self._eval_batch)

  def parameters(self, state: TrainState) -> Any:
    return state.params

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    variables = dict(self.model.init({"params": rng}, to_model_range(batch["image"][:1])))
    params = variables.pop("params")
    return TrainState(params=params, opt_state=self.tx.init(params), model_state=variables,
                      ema_params=params if self.config.ema_decay > 0 else None)

  def _apply(self, params, model_state, x, train: bool, rng=None):
    variables = {"params": params, **model_state}
    if train and model_state:
      return self.model.apply(variables, x, train=True, rngs={"vq": rng},
                              mutable=list(model_state))
    return self.model.apply(variables, x, train=train), model_state

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], rng: jax.Array):
    x = to_model_range(batch["image"])

    def loss_fn(params):
      (x_hat, aux), model_state = self._apply(params, state.model_state, x, True, rng)
      recon = jnp.mean((x_hat - x) ** 2)
      return recon + aux["loss"], (recon, aux, model_state)

    (loss, (recon, aux, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    state = apply_gradients(state, grads, self.tx, self.config.ema_decay, model_state)
    batch_used = jnp.zeros((self.codebook_size,), jnp.int32).at[aux["indices"]].max(1)
    return state, {"train/loss": loss, "train/recon_loss": recon,
                   "train/quantizer_loss": aux["loss"],
                   "train/batch_usage": jnp.mean(batch_used.astype(jnp.float32))}

  def tokenize(self, state: TrainState, image_uint8: jax.Array) -> jax.Array:
    return tokenize(self.model, state, image_uint8)

  def detokenize(self, state: TrainState, indices: jax.Array) -> jax.Array:
    return detokenize(self.model, state, indices)

  def _eval_batch(self, params, model_state, batch):
    x = to_model_range(batch["image"])
    (x_hat, aux), _ = self._apply(params, model_state, x, False)
    x_hat = jnp.clip(x_hat, -1.0, 1.0)
    return reconstruction_errors(x, x_hat), aux["indices"], x_hat

  def evaluate(self, state: TrainState, batches: Iterable[dict[str, jax.Array]]):
    return evaluate_reconstructions(
        lambda batch: self._eval_step(state.eval_params(), state.model_state, batch), batches,
        self.codebook_size, self.fid_feature_fn)
