"""MaskGIT Stage II: a masked transformer over the tokens of a frozen Stage I tokenizer."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from fsq.data.tokens import check_cache
from fsq.distributed import to_host
from fsq.evaluators.fid import Statistics, feature_statistics, frechet_distance
from fsq.evaluators.precision_recall import precision_recall
from fsq.stages.vqvae import image_grid, to_uint8
from fsq.train.optim import make_optimizer
from fsq.train.restore import load_run
from fsq.train.state import TrainState, apply_gradients
from maskgit.decoding import compression_bits, parallel_decode
from maskgit.masking import drop_labels, training_mask
from maskgit.transformer import MaskedTransformer, Vocabulary


@flax.struct.dataclass
class Stage2State:
  """The transformer's train state and the frozen tokenizer's (checkpointed with it)."""
  train: TrainState
  tokenizer: Any


class MaskGITStage2:
  """Class-conditional masked token modelling (PAPER.md section 4, Stage II).

  Training masks ceil(cos(pi/2 (1 - r)) S) tokens with r >= R_MIN (at least 45% masked),
  replaces 10% of class tokens by the mask token (classifier-free guidance) and minimises
  label-smoothed cross-entropy on the masked tokens. Evaluation reports the bits per token
  of the held-out tokens under a fixed masking schedule; with the network `config.fid` names,
  the FID, precision/recall and (scenes) class consistency of one sample per held-out label,
  for the guidance weight and a sweep of others; and logs a grid of samples per class.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.tokenizer, tokenizer_state, _ = load_run(config.tokenizer)
    self._tokenizer_state = tokenizer_state
    if config.token_cache:
      # Training reads the cached tokens; evaluation keeps the images (FID needs them). The
      # replaced data config is what the run's config.json records.
      check_cache(config.token_cache, config.tokenizer, self.tokenizer.codebook_size)
      config.data.train = {"name": "tokens", "path": config.token_cache}
    self.vocab = Vocabulary(self.tokenizer.codebook_size, config.num_classes)
    model = config.model
    self.model_kwargs = dict(vocab_size=self.vocab.size, width=model.width, depth=model.depth,
                             num_heads=model.num_heads, mlp_dim=model.mlp_dim,
                             dropout=model.dropout)
    self.tx = make_optimizer(config.optax, config.total_steps)
    self.fid_features = self.class_probabilities = None
    if config.fid.network:
      from fsq.evaluators import networks  # Loads weights: only when asked.
      self.fid_features = networks.fid_feature_fn(config.fid.network, config.fid.weights)
      self.class_probabilities = networks.class_probability_fn(config.fid.network,
                                                               config.fid.weights)
    self._eval_step = jax.jit(self._eval_batch)
    self._sample = jax.jit(self.sample, static_argnames=("guidance",))

  def _tokens(self, tokenizer_state, image_uint8: jax.Array) -> jax.Array:
    tokens = self.tokenizer.tokenize(tokenizer_state, image_uint8)
    return jax.lax.stop_gradient(tokens.reshape(tokens.shape[0], -1))

  def _train_tokens(self, tokenizer_state, batch: dict[str, jax.Array]) -> jax.Array:
    """(B, S) tokens of a training batch: read from the token cache, or tokenised here."""
    if "tokens" in batch:
      return batch["tokens"].reshape(batch["tokens"].shape[0], -1)
    return self._tokens(tokenizer_state, batch["image"])

  def _model(self, seq_len: int) -> MaskedTransformer:
    return MaskedTransformer(seq_len=1 + seq_len, **self.model_kwargs)

  def parameters(self, state: Stage2State) -> Any:
    return state.train.params

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> Stage2State:
    tokenizer_state = jax.tree.map(jnp.asarray, self._tokenizer_state)
    tokens = self._train_tokens(tokenizer_state, {k: v[:1] for k, v in batch.items()})
    ids = self.vocab.sequence(batch["label"][:1], tokens)
    params = self._model(tokens.shape[1]).init(rng, ids)["params"]
    ema = params if self.config.ema_decay > 0 else None
    train = TrainState(params=params, opt_state=self.tx.init(params), model_state={},
                       ema_params=ema)
    return Stage2State(train=train, tokenizer=tokenizer_state)

  def train_step(self, state: Stage2State, batch: dict[str, jax.Array], rng: jax.Array):
    tokens = self._train_tokens(state.tokenizer, batch)
    batch_size, seq_len = tokens.shape
    rng_mask, rng_label, rng_dropout = jax.random.split(rng, 3)
    masked = training_mask(rng_mask, batch_size, seq_len)
    class_ids = drop_labels(rng_label, self.vocab.class_ids(batch["label"]), self.vocab.mask_id,
                            self.config.label_dropout)
    ids = jnp.concatenate(
        [class_ids[:, None], jnp.where(masked, self.vocab.mask_id, tokens)], axis=1)
    targets = optax.smooth_labels(jax.nn.one_hot(tokens, self.vocab.codebook_size),
                                  self.config.label_smoothing)

    def loss_fn(params):
      logits = self._model(seq_len).apply({"params": params}, ids, train=True,
                                          rngs={"dropout": rng_dropout})
      logits = logits[:, 1:, :self.vocab.codebook_size]
      losses = optax.softmax_cross_entropy(logits, targets)
      loss = jnp.sum(losses * masked) / jnp.sum(masked)
      correct = (jnp.argmax(logits, -1) == tokens) * masked
      return loss, jnp.sum(correct) / jnp.sum(masked)

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.train.params)
    train = apply_gradients(state.train, grads, self.tx, self.config.ema_decay)
    return state.replace(train=train), {"train/loss": loss, "train/masked_accuracy": accuracy}

  def _logits_fn(self, params, seq_len: int):
    model = self._model(seq_len)
    return lambda ids: model.apply({"params": params}, ids)

  def _eval_batch(self, state: Stage2State, batch):
    tokens = self._tokens(state.tokenizer, batch["image"])
    logits_fn = self._logits_fn(state.train.eval_params(), tokens.shape[1])
    return compression_bits(logits_fn, tokens, batch["label"], self.vocab,
                            num_steps=self.config.sampling.num_steps)

  def sample(self, state: Stage2State, rng: jax.Array, labels: jax.Array,
             guidance: float) -> jax.Array:
    """(B,) class labels -> (B, H, W, 3) sampled images in [-1, 1]."""
    grid_shape = self._token_grid(state)
    seq_len = int(np.prod(grid_shape))
    sampling = self.config.sampling
    tokens = parallel_decode(self._logits_fn(state.train.eval_params(), seq_len), rng, labels,
                             seq_len, self.vocab, num_steps=sampling.num_steps,
                             choice_temperature=sampling.choice_temperature,
                             guidance=guidance)[-1]
    return self.tokenizer.detokenize(state.tokenizer,
                                     tokens.reshape(labels.shape[0], *grid_shape))

  def _token_grid(self, state: Stage2State) -> tuple[int, int]:
    seq_len = state.train.params["position_embedding"].shape[1] - 1
    side = int(round(seq_len ** 0.5))
    return side, seq_len // side

  def sample_images(self, state: Stage2State, labels: np.ndarray, guidance: float,
                    batch_size: int, seed: int = 0) -> np.ndarray:
    """(N,) labels -> (N, H, W, 3) uint8 samples, in batches padded to `batch_size` (one
    compiled decode per guidance value); batch i draws from fold_in(key(seed), i)."""
    images = []
    for i, start in enumerate(range(0, len(labels), batch_size)):
      part = labels[start:start + batch_size]
      padded = np.pad(part, (0, batch_size - len(part)))
      x = self._sample(state, jax.random.fold_in(jax.random.key(seed), i),
                       jnp.asarray(padded, jnp.int32), guidance=guidance)
      images.append(to_uint8(to_host(x))[:len(part)])
    return np.concatenate(images)

  def _sample_metrics(self, state: Stage2State, labels: np.ndarray, real: Statistics,
                      real_features: np.ndarray, guidance: float) -> dict[str, float]:
    """FID, precision/recall (k = 3) against the held-out images and class consistency, of
    one sample per held-out label."""
    images = self.sample_images(state, labels, guidance, self.config.eval_batch_size,
                                self.config.seed)
    features = self.fid_features(images)
    metrics = {"fid": frechet_distance(*feature_statistics([features]), *real)}
    metrics["precision"], metrics["recall"] = precision_recall(real_features, features)
    if self.class_probabilities is not None:
      predicted = np.argmax(self.class_probabilities(images), axis=-1)
      metrics["class_consistency"] = float(np.mean(predicted == labels))
    return metrics

  def evaluate(self, state: Stage2State, batches: Iterable[dict[str, jax.Array]]):
    """Bits per image and per token to code the held-out tokens; with a `config.fid` network, the sampling
    metrics of `sampling.guidance` (eval/fid, ...) and of each `sampling.guidance_sweep`
    value (eval/fid_cfg0.5, ...); a grid of samples per class."""
    total, count, labels, real_features = 0.0, 0, [], []
    num_samples = self.config.sampling.num_eval_samples
    for batch in batches:
      mask = to_host(batch["mask"])
      total += float(np.sum(to_host(self._eval_step(state, batch))[mask]))
      count += int(mask.sum())
      if self.fid_features is not None and sum(map(len, labels)) < num_samples:
        labels.append(to_host(batch["label"])[mask])
        real_features.append(self.fid_features(to_host(batch["image"])[mask]))
    metrics = {"eval/bits_per_image": total / count,
               "eval/bits_per_token": float(total / count / np.prod(self._token_grid(state)))}
    sampling = self.config.sampling
    if self.fid_features is not None:
      labels = np.concatenate(labels)[:num_samples]
      real_features = np.concatenate(real_features)[:num_samples]
      real = feature_statistics([real_features])
      for guidance in sorted({sampling.guidance, *sampling.guidance_sweep}):
        suffix = "" if guidance == sampling.guidance else f"_cfg{guidance:g}"
        for k, v in self._sample_metrics(state, labels, real, real_features, guidance).items():
          metrics[f"eval/{k}{suffix}"] = v
    per_class = sampling.grid_per_class
    grid_labels = np.repeat(np.arange(self.config.num_classes), per_class)
    images = self.sample_images(state, grid_labels, sampling.guidance, len(grid_labels),
                                self.config.seed)
    images = images.reshape(self.config.num_classes, per_class, *images.shape[1:])
    return metrics, {"eval/samples": image_grid(list(images))}
