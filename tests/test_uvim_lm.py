"""UViM's Stage II language model (uvim/lm.py) and its decoding (uvim/decode.py)."""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from uvim.decode import greedy_decode, sample_decode
from uvim.lm import LanguageModel, _CrossAttention, shift_right

VOCAB, SEQ_LEN = 37, 16
MODEL = LanguageModel(VOCAB, SEQ_LEN, image_size=16, patch_size=4, width=32, encoder_depth=1,
                      decoder_depth=2, mlp_dim=64, num_heads=2)


def images(seed: int, batch: int = 2) -> jax.Array:
  return jax.random.uniform(jax.random.key(seed), (batch, 16, 16, 3), minval=-1, maxval=1)


def random_codes(seed: int, batch: int = 2) -> jax.Array:
  return jax.random.randint(jax.random.key(seed), (batch, SEQ_LEN), 0, VOCAB - 1)


@functools.lru_cache
def init(seed: int = 0):
  return jax.jit(MODEL.init)(jax.random.key(seed), images(0), jnp.zeros((2, SEQ_LEN), jnp.int32))


def with_random_logits(variables, seed: int = 1, bias_0: float = 0.0):
  """The zero-initialised logits kernel made random: at init every logit is equal, argmax
  picks token 0's masked neighbour everywhere and no test could see what they depend on.
  `bias_0` is added to the start token's logit."""
  params = jax.tree.map(lambda x: x, variables["params"])
  logits = params["decoder"]["logits"]
  logits["kernel"] = jax.random.normal(jax.random.key(seed), logits["kernel"].shape)
  logits["bias"] = logits["bias"].at[0].add(bias_0)
  return {**variables, "params": params}


def test_shift_right():
  codes = jnp.array([[3, 0, 5, 2]])
  np.testing.assert_array_equal(shift_right(codes), [[0, 4, 1, 6]])


def test_zero_initialised_head_gives_uniform_logits():
  variables = init()
  logits = MODEL.apply(variables, images(1), shift_right(random_codes(0)))
  assert logits.shape == (2, SEQ_LEN, VOCAB) and logits.dtype == jnp.float32
  np.testing.assert_array_equal(logits, 0.0)


def test_logits_are_causal_and_depend_on_the_image():
  variables = with_random_logits(init())
  encoded = MODEL.apply(variables, images(1), method="encode")
  tokens = shift_right(random_codes(0))
  logits = MODEL.apply(variables, tokens, encoded, method="decode")
  changed = MODEL.apply(variables, tokens.at[:, 9].set((tokens[:, 9] + 1) % VOCAB), encoded,
                        method="decode")
  np.testing.assert_array_equal(changed[:, :9], logits[:, :9])
  assert not np.allclose(changed[:, 9], logits[:, 9])
  other_image = MODEL.apply(variables, images(2), tokens)
  assert np.all(np.abs(other_image - logits).max(axis=-1) > 1e-4)


def test_cross_attention_is_flax_attention():
  x, kv = jax.random.normal(jax.random.key(0), (2, 3, 32)), jnp.ones((2, 5, 32))
  flax_attention = nn.MultiHeadDotProductAttention(num_heads=2)
  params = flax_attention.init(jax.random.key(1), x, kv)
  np.testing.assert_allclose(_CrossAttention(2).apply(params, x, kv),
                             flax_attention.apply(params, x, kv), atol=1e-6)


def test_cached_steps_equal_teacher_forcing():
  variables = with_random_logits(init())
  encoded = MODEL.apply(variables, images(1), method="encode")
  tokens = shift_right(random_codes(0))
  forced = MODEL.apply(variables, tokens, encoded, method="decode")
  _, state = MODEL.apply(variables, encoded, method="init_cache", mutable=["cache"])
  for i in range(SEQ_LEN):
    step, state = MODEL.apply({**variables, **state}, tokens[:, i:i + 1],
                              method="decode_step", mutable=["cache"])
    np.testing.assert_allclose(step[:, 0], forced[:, i], rtol=1e-4, atol=1e-5)


def test_cached_and_uncached_greedy_decoding_agree():
  variables = with_random_logits(init())
  encoded = MODEL.apply(variables, images(1, batch=3), method="encode")
  cached = greedy_decode(MODEL, variables, encoded)
  uncached = greedy_decode(MODEL, variables, encoded, cached=False)
  assert cached.shape == (3, SEQ_LEN) and cached.dtype == jnp.int32
  np.testing.assert_array_equal(cached, uncached)
  assert len(np.unique(np.asarray(cached))) > 1
  # Greedy codes are teacher forcing's argmax on their own prefix.
  logits = MODEL.apply(variables, shift_right(cached), encoded, method="decode")
  np.testing.assert_array_equal(jnp.argmax(logits[..., 1:], axis=-1), cached)


def test_start_symbol_is_never_emitted():
  variables = with_random_logits(init(), bias_0=1e3)
  encoded = MODEL.apply(variables, images(1), method="encode")
  logits = MODEL.apply(variables, jnp.zeros((2, SEQ_LEN), jnp.int32), encoded, method="decode")
  assert np.all(jnp.argmax(logits, axis=-1) == 0)  # Token 0's logit is the largest.
  for codes in (greedy_decode(MODEL, variables, encoded),
                greedy_decode(MODEL, variables, encoded, cached=False),
                sample_decode(MODEL, variables, encoded, jax.random.key(3), temperature=1e3)):
    assert codes.shape == (2, SEQ_LEN)
    assert 0 <= int(codes.min()) and int(codes.max()) < VOCAB - 1


def test_the_paper_variant_builds_uvims_language_model(capsys):
  """configs/uvim_lm.py variant=paper: ViT-L/16 encoder over 512 px (1024 tokens), a 24-layer
  decoder over 256 codes with 4096 + 1 tokens (eval_shape only)."""
  from configs import uvim_lm
  config = uvim_lm.get_config("task=depth,variant=paper")
  model = LanguageModel(vocab_size=4096 + 1, seq_len=256, image_size=512, **config.model)
  variables = jax.eval_shape(model.init, jax.random.key(0),
                             jax.ShapeDtypeStruct((1, 512, 512, 3), jnp.float32),
                             jax.ShapeDtypeStruct((1, 256), jnp.int32))
  count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
  params = variables["params"]
  d, m = 1024, 4096
  block = 4 * d * d + 2 * d * m + 9 * d + m  # Self-attention, MLP, two LayerNorms.
  encoder = 24 * block + 2 * d + 16 * 16 * 3 * d + d + 1024 * d  # + norm, patches, positions.
  assert count([params[k] for k in ("encoder", "patch_embedding",
                                     "encoder_position_embedding")]) == encoder
  cross = 4 * d * d + 4 * d + 2 * d  # Cross-attention projections and its LayerNorm.
  decoder = 24 * (block + cross) + 2 * d + 4097 * d + 256 * d + d * 4097 + 4097
  assert count(params["decoder"]) == decoder
  with capsys.disabled():
    print(f"\nUViM LM at the paper's widths: {count(params):,} parameters "
          f"(encoder {encoder:,}, decoder {decoder:,})")
