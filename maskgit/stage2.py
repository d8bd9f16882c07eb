"""MaskGIT Stage II: a masked transformer over the tokens of a frozen Stage I tokenizer."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from fsq.data.tokens import check_cache
from fsq.distributed import to_host
from fsq.images import to_uint8
from fsq.stages.base import Stage, Stage2State, check_same_data, checksum
from fsq.stages.restore import load_frozen
from fsq.train.optim import make_optimizer
from fsq.train.state import TrainState, apply_gradients
from maskgit.decoding import compression_bits, parallel_decode
from maskgit.masking import drop_labels, training_mask
from maskgit.transformer import MaskedTransformer, Vocabulary


class MaskGITStage2(Stage):
  """Class-conditional masked token modelling (arXiv 2309.15505, Sec. 4, MaskGIT Stage II).

  Training masks ceil(cos(pi/2 (1 - r)) S) tokens with r >= R_MIN (at least 45% masked),
  replaces 10% of class tokens by the mask token (classifier-free guidance) and minimises
  label-smoothed cross-entropy on the masked tokens. The frozen tokenizer (loaded lean from
  `config.tokenizer`) is an argument of every step, not part of the checkpoint.

  Predict methods: `bits` and `tokens_per_example` (fsq.evaluators.compression),
  `sample_images` and `num_classes` (fsq.evaluators.sampling).
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.tokenizer = load_frozen(config.tokenizer)
    self._checksum = checksum(self.tokenizer.variables)
    check_same_data(config, self.tokenizer, "tokenizer")
    if config.data.train.name == "tokens":
      check_cache(config.data.train.path, self.tokenizer.workdir, self.tokenizer.step,
                  self.tokenizer.codebook_size)
    self.vocab = Vocabulary(self.tokenizer.codebook_size, config.num_classes)
    model = config.model
    self.model_kwargs = dict(vocab_size=self.vocab.size, width=model.width, depth=model.depth,
                             num_heads=model.num_heads, mlp_dim=model.mlp_dim,
                             dropout=model.dropout)
    self.tx = make_optimizer(config.optax, config.total_steps)
    self._bits = jax.jit(self._bits_batch)
    self._sample = jax.jit(self._sample_batch, static_argnames=("guidance",))

  @property
  def num_classes(self) -> int:
    return self.config.num_classes

  def frozen_variables(self) -> Any:
    return self.tokenizer.variables

  def check_restored(self, state: Stage2State) -> None:
    state.check(self.tokenizer, self._checksum)

  def _tokens(self, variables, image_uint8: jax.Array) -> jax.Array:
    tokens = self.tokenizer.tokenize(variables, image_uint8)
    return jax.lax.stop_gradient(tokens.reshape(tokens.shape[0], -1))

  def _train_tokens(self, variables, batch: dict[str, jax.Array]) -> jax.Array:
    """(B, S) tokens of a training batch: read from the token cache, or tokenised here."""
    if "tokens" in batch:
      return batch["tokens"].reshape(batch["tokens"].shape[0], -1)
    return self._tokens(variables, batch["image"])

  def _model(self, seq_len: int) -> MaskedTransformer:
    return MaskedTransformer(seq_len=1 + seq_len, **self.model_kwargs)

  def parameters(self, state: Stage2State) -> Any:
    return state.train.params

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> Stage2State:
    variables = jax.tree.map(jnp.asarray, self.tokenizer.variables)
    tokens = self._train_tokens(variables, {k: v[:1] for k, v in batch.items()})
    ids = self.vocab.sequence(batch["label"][:1], tokens)
    params = self._model(tokens.shape[1]).init(rng, ids)["params"]
    ema = params if self.config.ema_decay > 0 else None
    train = TrainState(params=params, opt_state=self.tx.init(params), model_state={},
                       ema_params=ema)
    return Stage2State.create(train, self.tokenizer, self._checksum)

  def train_step(self, state: Stage2State, batch: dict[str, jax.Array], rng: jax.Array,
                 frozen: Any):
    tokens = self._train_tokens(frozen, batch)
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

  def _bits_batch(self, state: Stage2State, variables, batch):
    tokens = self._tokens(variables, batch["image"])
    logits_fn = self._logits_fn(state.train.eval_params(), tokens.shape[1])
    return compression_bits(logits_fn, tokens, batch["label"], self.vocab,
                            num_steps=self.config.sampling.num_steps)

  def bits(self, state: Stage2State, batch: dict[str, jax.Array]) -> jax.Array:
    """(B,) bits to code each held-out image's tokens under a fixed masking schedule."""
    return self._bits(state, self.frozen_like(state), batch)

  def tokens_per_example(self, state: Stage2State) -> int:
    return int(np.prod(self._token_grid(state)))

  def _sample_batch(self, state: Stage2State, variables, rng: jax.Array, labels: jax.Array,
                    guidance: float) -> jax.Array:
    """(B,) class labels -> (B, H, W, 3) sampled images in [-1, 1]."""
    grid_shape = self._token_grid(state)
    seq_len = int(np.prod(grid_shape))
    sampling = self.config.sampling
    tokens = parallel_decode(self._logits_fn(state.train.eval_params(), seq_len), rng, labels,
                             seq_len, self.vocab, num_steps=sampling.num_steps,
                             choice_temperature=sampling.choice_temperature,
                             guidance=guidance)[-1]
    return self.tokenizer.detokenize(variables, tokens.reshape(labels.shape[0], *grid_shape))

  def _token_grid(self, state: Stage2State) -> tuple[int, int]:
    seq_len = state.train.params["position_embedding"].shape[1] - 1
    side = int(round(seq_len ** 0.5))
    return side, seq_len // side

  def sample_images(self, state: Stage2State, labels: np.ndarray, guidance: float,
                    batch_size: int, seed: int = 0) -> np.ndarray:
    """(N,) labels -> (N, H, W, 3) uint8 samples, in batches padded to `batch_size` (one
    compiled decode per guidance value); batch i draws from fold_in(key(seed), i)."""
    images, variables = [], self.frozen_like(state)
    for i, start in enumerate(range(0, len(labels), batch_size)):
      part = labels[start:start + batch_size]
      padded = np.pad(part, (0, batch_size - len(part)))
      x = self._sample(state, variables, jax.random.fold_in(jax.random.key(seed), i),
                       jnp.asarray(padded, jnp.int32), guidance=guidance)
      images.append(to_uint8(to_host(x))[:len(part)])
    return np.concatenate(images)
