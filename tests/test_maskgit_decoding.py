"""MaskGIT Stage II pieces: vocabulary, transformer, masking schedules, decoding, bits."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit.decoding import (compression_bits, guided_logits, parallel_decode, reveal_steps,
                              sample_categorical, sequential_decode)
from maskgit.masking import R_MIN, decoding_mask_counts, drop_labels, training_mask
from maskgit.transformer import MaskedTransformer, Vocabulary

K, C, S = 16, 3, 20
VOCAB = Vocabulary(K, C)


def pattern_model(ids_bl):
  """Logits peaked on token (position + class) % K, more confident at later positions."""
  b, l = ids_bl.shape
  classes = ids_bl[:, :1] - K
  target = (jnp.arange(l)[None, :] - 1 + classes) % K
  strength = 30.0 + jnp.arange(l)[None, :, None]
  return jax.nn.one_hot(target, VOCAB.size) * strength


def test_vocabulary_layout():
  assert (VOCAB.mask_id, VOCAB.size) == (K + C, K + C + 1)
  seq = VOCAB.sequence(jnp.array([0, 2]), jnp.zeros((2, 4), jnp.int32))
  np.testing.assert_array_equal(seq[:, 0], [K, K + 2])


def test_transformer_shapes_dropout_and_tied_head():
  model = MaskedTransformer(VOCAB.size, 1 + S, width=32, depth=2, num_heads=4, mlp_dim=64)
  ids = jax.random.randint(jax.random.key(0), (2, 1 + S), 0, VOCAB.size)
  params = model.init(jax.random.key(1), ids)["params"]
  logits = model.apply({"params": params}, ids)
  assert logits.shape == (2, 1 + S, VOCAB.size)
  np.testing.assert_array_equal(logits, model.apply({"params": params}, ids))
  train_a = model.apply({"params": params}, ids, train=True, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(train_a, logits)
  # The output projection is the token embedding: zeroing a row zeroes its logit (minus bias).
  emb = params["token_embedding"]["embedding"]
  zeroed = {**params, "token_embedding": {"embedding": emb.at[3].set(0.0)}}
  np.testing.assert_allclose(model.apply({"params": zeroed}, ids)[..., 3], 0.0, atol=1e-6)


def test_training_mask_respects_the_45_percent_bound():
  mask = training_mask(jax.random.key(0), 4000, 256)
  ratios = np.asarray(mask.mean(axis=1))
  assert ratios.min() >= 0.45 and ratios.max() == 1.0
  # r ~ U[R_MIN, 1] -> ratio = cos(pi/2 (1 - r)); its mean is known in closed form.
  expected = (2 / math.pi) * math.sin(math.pi / 2 * (1 - R_MIN)) / (1 - R_MIN)
  assert abs(ratios.mean() - expected) < 0.01
  unbounded = np.asarray(training_mask(jax.random.key(1), 4000, 256, r_min=0.0).mean(1))
  assert unbounded.min() < 0.1 and (unbounded > 0).all()


def test_label_dropout_rate():
  ids = drop_labels(jax.random.key(0), jnp.full((20000,), K + 1), VOCAB.mask_id, 0.1)
  assert abs(float(jnp.mean(ids == VOCAB.mask_id)) - 0.1) < 0.01


@pytest.mark.parametrize("k", [1000, 7])
def test_sample_categorical_draws_from_the_softmax(k):
  """Frequencies within 5 sigma of the probabilities; codes of probability 0 never drawn."""
  logits = jax.random.normal(jax.random.key(0), (k,)) * 2.0
  logits = logits.at[::3].set(-jnp.inf)
  n = 200_000
  draws, log_prob = sample_categorical(jax.random.key(1), jnp.broadcast_to(logits, (n, k)))
  p = np.asarray(jax.nn.softmax(logits))
  np.testing.assert_allclose(log_prob, jax.nn.log_softmax(logits)[draws], rtol=1e-5)
  freq = np.bincount(np.asarray(draws), minlength=k) / n
  assert freq[::3].sum() == 0.0
  np.testing.assert_array_less(np.abs(freq - p), 5 * np.sqrt(p * (1 - p) / n) + 1e-9)


def test_decoding_schedule():
  counts = decoding_mask_counts(256, 12)
  assert counts[-1] == 0 and counts[0] < 256 and all(a > b for a, b in zip(counts, counts[1:]))
  assert counts[0] == math.floor(256 * math.cos(math.pi / 2 / 12))
  assert decoding_mask_counts(4, 8)[-1] == 0 and min(decoding_mask_counts(4, 8)[:-1]) == 1


@pytest.mark.parametrize("guidance", [0.0, 0.5])
def test_parallel_decode_follows_the_schedule_and_the_model(guidance):
  labels = jnp.array([0, 1, 2, 1])
  history = jax.jit(lambda rng: parallel_decode(pattern_model, rng, labels, S, VOCAB,
                                                num_steps=6, guidance=guidance))(
                                                    jax.random.key(0))
  assert history.shape == (6, 4, S)
  expected = (jnp.arange(S)[None, :] + labels[:, None]) % K
  np.testing.assert_array_equal(history[-1], expected)
  masked = np.asarray((history == VOCAB.mask_id).sum(-1))
  np.testing.assert_array_equal(masked, np.tile(decoding_mask_counts(S, 6), (4, 1)).T)


def test_parallel_decode_reveals_most_confident_first():
  """Without choice noise, step 1 reveals the positions the model is surest of (the last)."""
  history = parallel_decode(pattern_model, jax.random.key(0), jnp.zeros((2,), jnp.int32), S,
                            VOCAB, num_steps=4, choice_temperature=0.0)
  known = np.asarray(history[0] != VOCAB.mask_id)
  revealed = S - decoding_mask_counts(S, 4)[0]
  assert (known[:, -revealed:]).all() and not known[:, :-revealed].any()


def test_guided_logits_formula():
  def model(ids):  # Conditional logits 2, unconditional 1 (class token = mask).
    cond = jnp.where(ids[:, :1] == VOCAB.mask_id, 1.0, 2.0)
    return jnp.broadcast_to(cond[:, :, None], ids.shape + (VOCAB.size,))
  tokens = jnp.full((2, S), VOCAB.mask_id)
  out = guided_logits(model, VOCAB.class_ids(jnp.array([0, 1])), tokens, VOCAB, 0.3)
  np.testing.assert_allclose(out, 2.0 + 0.3 * (2.0 - 1.0))
  assert out.shape == (2, S, K)


def test_sequential_decode_matches_model():
  labels = jnp.array([2, 0])
  tokens = sequential_decode(pattern_model, jax.random.key(0), labels, S, VOCAB)
  np.testing.assert_array_equal(tokens, (jnp.arange(S)[None] + labels[:, None]) % K)


def test_compression_bits_uniform_perfect_and_fixed_models():
  tokens = jax.random.randint(jax.random.key(0), (3, S), 0, K)
  labels = jnp.zeros((3,), jnp.int32)
  uniform = lambda ids: jnp.zeros(ids.shape + (VOCAB.size,))
  np.testing.assert_allclose(compression_bits(uniform, tokens, labels, VOCAB), S * math.log2(K),
                             rtol=1e-5)
  logits = jax.random.normal(jax.random.key(1), (K,))
  fixed = lambda ids: jnp.broadcast_to(jnp.pad(logits, (0, C + 1)), ids.shape + (VOCAB.size,))
  log_p = np.asarray(jax.nn.log_softmax(logits))
  np.testing.assert_allclose(compression_bits(fixed, tokens, labels, VOCAB),
                             -log_p[np.asarray(tokens)].sum(1) / math.log(2), rtol=1e-5)

  def oracle(ids):  # Knows the answer only once a neighbour is visible: first group costs.
    return jax.nn.one_hot(jnp.pad(tokens, ((0, 0), (1, 0))), VOCAB.size) * 30.0
  assert float(compression_bits(oracle, tokens, labels, VOCAB).max()) < 1e-6


def test_reveal_steps_partition():
  steps = reveal_steps(S, 5)
  counts = decoding_mask_counts(S, 5)
  revealed = [S - c for c in counts]
  assert [int((steps <= t).sum()) for t in range(5)] == revealed
