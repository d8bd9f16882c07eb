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

from fsq.distributed import to_host
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
  of the held-out tokens under a fixed masking schedule and logs a grid of samples per class.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.tokenizer, tokenizer_state, _ = load_run(config.tokenizer)
    self._tokenizer_state = tokenizer_state
    self.vocab = Vocabulary(self.tokenizer.codebook_size, config.num_classes)
    model = config.model
    self.model_kwargs = dict(vocab_size=self.vocab.size, width=model.width, depth=model.depth,
                             num_heads=model.num_heads, mlp_dim=model.mlp_dim,
                             dropout=model.dropout)
    self.tx = make_optimizer(config.optax, config.total_steps)
    self._eval_step = jax.jit(self._eval_batch)
    self._sample = jax.jit(self.sample, static_argnames=("guidance",))

  def _tokens(self, tokenizer_state, image_uint8: jax.Array) -> jax.Array:
    tokens = self.tokenizer.tokenize(tokenizer_state, image_uint8)
    return jax.lax.stop_gradient(tokens.reshape(tokens.shape[0], -1))

  def _model(self, seq_len: int) -> MaskedTransformer:
    return MaskedTransformer(seq_len=1 + seq_len, **self.model_kwargs)

  def parameters(self, state: Stage2State) -> Any:
    return state.train.params

  def init(self, rng: jax.Array, batch: dict[str, jax.Array]) -> Stage2State:
    tokenizer_state = jax.tree.map(jnp.asarray, self._tokenizer_state)
    tokens = self._tokens(tokenizer_state, batch["image"][:1])
    ids = self.vocab.sequence(batch["label"][:1], tokens)
    params = self._model(tokens.shape[1]).init(rng, ids)["params"]
    ema = params if self.config.ema_decay > 0 else None
    train = TrainState(params=params, opt_state=self.tx.init(params), model_state={},
                       ema_params=ema)
    return Stage2State(train=train, tokenizer=tokenizer_state)

  def train_step(self, state: Stage2State, batch: dict[str, jax.Array], rng: jax.Array):
    tokens = self._tokens(state.tokenizer, batch["image"])
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
    bits = compression_bits(logits_fn, tokens, batch["label"], self.vocab,
                            num_steps=self.config.sampling.num_steps)
    return bits / tokens.shape[1]

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

  def evaluate(self, state: Stage2State, batches: Iterable[dict[str, jax.Array]]):
    total, count = 0.0, 0
    for batch in batches:
      mask = to_host(batch["mask"])
      total += float(np.sum(to_host(self._eval_step(state, batch))[mask]))
      count += int(mask.sum())
    per_class = self.config.sampling.grid_per_class
    labels = jnp.repeat(jnp.arange(self.config.num_classes), per_class)
    images = self._sample(state, jax.random.key(self.config.seed), labels,
                          guidance=self.config.sampling.guidance)
    images = to_uint8(to_host(images)).reshape(self.config.num_classes, per_class,
                                               *images.shape[1:])
    return {"eval/bits_per_token": total / count}, {"eval/samples": image_grid(list(images))}
