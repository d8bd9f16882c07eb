"""UViM's Stage I oracle (uvim/oracle.py) and the pre-LN ViT pieces it is built of (uvim/vit.py)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsq.quantizers import make_quantizer
from uvim.oracle import Oracle, code_dropout_mask
from uvim.vit import AttentionBlock

OUTPUTS = {"semantics": 4, "instances": 3}
TINY = dict(image_size=32, patch_size=8, code_grid=2, width=32, encoder_depth=1,
            decoder_depth=2, mlp_dim=64, num_heads=2)
QUANTIZERS = {"fsq": dict(name="fsq", levels=(7, 5, 5, 5, 5)),
              "vq_ema": dict(name="vq_ema", codebook_size=64, dim=16)}


def tiny_oracle(quantizer: str, **kwargs) -> Oracle:
  return Oracle(make_quantizer(**QUANTIZERS[quantizer]), OUTPUTS, **{**TINY, **kwargs})


def make_batch(seed: int, batch: int = 2, context_channels: int = 3):
  rng = np.random.default_rng(seed)
  targets = {k: jnp.asarray(rng.normal(size=(batch, 32, 32, c)), jnp.float32)
             for k, c in OUTPUTS.items()}
  context = jnp.asarray(rng.uniform(-1, 1, size=(batch, 32, 32, context_channels)), jnp.float32)
  return targets, context


def with_random_heads(variables, seed: int = 1):
  """The zero-initialised heads replaced by random ones, so outputs show what they depend on."""
  params = dict(variables["params"])
  for i, name in enumerate(OUTPUTS):
    head = params[f"head_{name}"]
    kernel = 0.1 * jax.random.normal(jax.random.key(seed + i), head["kernel"].shape)
    params[f"head_{name}"] = {**head, "kernel": kernel}
  return {**variables, "params": params}


def count(tree) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("quantizer,context_channels", [
    ("fsq", 3), ("vq_ema", 3), ("fsq", 1)])
def test_shapes_in_evaluation_and_training(quantizer, context_channels):
  model = tiny_oracle(quantizer)
  targets, context = make_batch(0, context_channels=context_channels)
  variables = model.init(jax.random.key(0), targets, context)
  assert ("quantizer_state" in variables) == (quantizer == "vq_ema")
  latent_dim = {"fsq": 5, "vq_ema": 16}[quantizer]
  z_q, aux = model.apply(variables, targets, context, method="encode")
  assert z_q.shape == (2, 2, 2, latent_dim) and z_q.dtype == jnp.float32
  assert aux["indices"].shape == (2, 2, 2) and aux["indices"].dtype == jnp.int32
  assert 0 <= int(aux["indices"].min()) and int(aux["indices"].max()) < (
      model.quantizer.codebook_size)

  rngs = {"dropout": jax.random.key(1), "vq": jax.random.key(2)}
  (outputs, aux), state = model.apply(variables, targets, context, train=True, rngs=rngs,
                                      mutable=["quantizer_state"])
  assert {k: v.shape for k, v in outputs.items()} == {
      "semantics": (2, 32, 32, 4), "instances": (2, 32, 32, 3)}
  assert aux["indices"].shape == (2, 2, 2)
  if quantizer == "vq_ema":  # Training moved the EMA counts off their initial ones.
    assert not np.allclose(state["quantizer_state"]["quantizer"]["counts"], 1.0)
  else:
    assert not state


@pytest.mark.parametrize("quantizer", ["fsq", "vq_ema"])
def test_heads_are_zero_initialised(quantizer):
  model = tiny_oracle(quantizer)
  targets, context = make_batch(0)
  variables = model.init(jax.random.key(0), targets, context)
  outputs, _ = model.apply(variables, targets, context)
  for name, logits in outputs.items():
    assert np.all(np.asarray(logits) == 0.0), name
    assert np.all(np.asarray(variables["params"][f"head_{name}"]["kernel"]) == 0.0)
  # Only the heads are zero: the codes below them do vary with the targets.
  z_a, _ = model.apply(variables, targets, context, method="encode")
  z_b, _ = model.apply(variables, make_batch(1)[0], context, method="encode")
  assert not np.allclose(z_a, z_b)


def test_code_dropout_mask_keeps_a_uniform_fraction_at_random_positions():
  # With 4 codes the importances are 0.8, 0.6, 0.4, 0.2: t ~ U(0, 1) keeps 0 .. 4 of them
  # with probability 1/5 each (independent per-code dropout would give a binomial).
  keep = np.asarray(code_dropout_mask(jax.random.key(0), 20_000, 4))
  np.testing.assert_allclose(np.bincount(keep.sum(1), minlength=5) / 20_000, 0.2, atol=0.015)
  keep = np.asarray(code_dropout_mask(jax.random.key(1), 4_000, 256))
  fraction = keep.mean(1)
  assert abs(fraction.mean() - 0.5) < 0.02 and abs(np.mean(fraction < 0.25) - 0.25) < 0.03
  # Shuffled positions: every code is kept about half the time, the first ones included.
  np.testing.assert_allclose(keep.mean(0), 0.5, atol=0.05)


def test_code_dropout_zeroes_whole_codes_only_in_training():
  model = tiny_oracle("fsq", code_grid=4)
  targets, context = make_batch(0)
  variables = with_random_heads(model.init(jax.random.key(0), targets, context))
  z_q = jax.random.normal(jax.random.key(3), (512, 4, 4, 5))
  np.testing.assert_array_equal(model.apply(variables, z_q, method="drop_codes"), z_q)
  dropped = model.apply(variables, z_q, train=True, method="drop_codes",
                        rngs={"dropout": jax.random.key(4)})
  zero, same = np.all(dropped == 0, axis=-1), np.all(dropped == z_q, axis=-1)
  assert np.all(zero ^ same)  # Each code is kept as it was or zeroed as a whole.
  assert abs(same.mean() - 0.5) < 0.05 and len(np.unique(same.sum((1, 2)))) > 10

  z_q, _ = model.apply(variables, targets, context, method="encode")
  rngs = {"dropout": jax.random.key(5)}
  train = model.apply(variables, z_q, context, train=True, rngs=rngs, method="decode")
  z_dropped = model.apply(variables, z_q, train=True, rngs=rngs, method="drop_codes")
  assert 0 < np.sum(np.all(z_dropped == 0, axis=-1)) < 32
  expected = model.apply(variables, z_dropped, context, method="decode")
  evaluation = model.apply(variables, z_q, context, method="decode")
  for name in OUTPUTS:
    np.testing.assert_array_equal(train[name], expected[name])
    assert not np.allclose(train[name], evaluation[name])
  no_dropout = model.clone(code_dropout=False)
  train = no_dropout.apply(variables, z_q, context, train=True, rngs=rngs, method="decode")
  for name in OUTPUTS:
    np.testing.assert_array_equal(train[name], evaluation[name])


@pytest.mark.parametrize("use_context", [True, False])
def test_outputs_depend_on_the_context_only_with_use_context(use_context):
  model = tiny_oracle("fsq", use_context=use_context)
  targets, context = make_batch(0)
  other_context = make_batch(1)[1]
  variables = with_random_heads(model.init(jax.random.key(0), targets, context))
  has_context_params = any("context" in name for name in variables["params"])
  assert has_context_params == use_context

  outputs = [model.apply(variables, targets, c)[0] for c in (context, other_context)]
  z_q, _ = model.apply(variables, targets, context, method="encode")
  floors = [model.apply(variables, jnp.zeros_like(z_q), c, method="decode")
            for c in (context, other_context)]
  # The encoder's context reaches the codes (straight-through gradient).
  grad = jax.grad(lambda c: jnp.sum(model.apply(variables, targets, c, method="encode")[0]))(
      context)
  for name in OUTPUTS:
    differ = np.max(np.abs(outputs[0][name] - outputs[1][name]))
    floor_differ = np.max(np.abs(floors[0][name] - floors[1][name]))
    if use_context:
      assert differ > 1e-3 and floor_differ > 1e-3
    else:
      assert differ == 0.0 and floor_differ == 0.0
  assert (np.max(np.abs(grad)) > 0) == use_context
  if not use_context:  # No context at all gives the same outputs.
    without, _ = model.apply(variables, targets, None)
    for name in OUTPUTS:
      np.testing.assert_array_equal(without[name], outputs[0][name])


@pytest.mark.parametrize("quantizer", ["fsq", "vq_ema"])
def test_decode_indices_equals_decode_of_the_codes(quantizer):
  model = tiny_oracle(quantizer)
  targets, context = make_batch(0)
  variables = with_random_heads(model.init(jax.random.key(0), targets, context))
  z_q, aux = model.apply(variables, targets, context, method="encode")
  from_codes = model.apply(variables, z_q, context, method="decode")
  from_indices = model.apply(variables, aux["indices"], context, method="decode_indices")
  for name in OUTPUTS:
    assert np.max(np.abs(from_codes[name])) > 1e-3
    np.testing.assert_allclose(from_indices[name], from_codes[name], atol=1e-5)


def test_rejects_targets_other_than_the_outputs_and_a_missing_context():
  model = tiny_oracle("fsq")
  targets, context = make_batch(0)
  with pytest.raises(ValueError, match="targets has keys"):
    model.init(jax.random.key(0), {"semantics": targets["semantics"]}, context)
  with pytest.raises(ValueError, match="needs context_bhwc"):
    model.init(jax.random.key(0), targets, None)
  with pytest.raises(ValueError, match=r"\(B, 32, 32, C\)"):
    model.init(jax.random.key(0), targets, context[:, :16])


def test_paper_widths_parameter_counts():
  """UViM's oracle at the paper's widths (arXiv 2309.15505, Sec. 4.2): FSQ saves the codebook."""
  d, m, p, n, depth = 768, 3072, 16, (512 // 16) ** 2, 6 + 12
  outputs = {"depth": 256}  # NYU depth: 256 bins, one-hot targets.
  targets = {"depth": jax.ShapeDtypeStruct((1, 512, 512, 256), jnp.float32)}
  context = jax.ShapeDtypeStruct((1, 512, 512, 3), jnp.float32)
  variables = {}
  for name, kwargs in {"fsq": dict(levels=(7, 5, 5, 5, 5)),
                       "vq_ema": dict(codebook_size=4096, dim=768)}.items():
    model = Oracle(make_quantizer(name, **kwargs), outputs, image_size=512, patch_size=16,
                   code_grid=16, width=d, encoder_depth=6, decoder_depth=12, mlp_dim=m,
                   num_heads=12)
    variables[name] = jax.eval_shape(model.init, jax.random.key(0), targets, context)
    _, aux = jax.eval_shape(model.apply, variables[name], targets, context)
    assert aux["indices"].shape == (1, 16, 16)
  fsq, vq = variables["fsq"], variables["vq_ema"]

  assert set(fsq) == {"params"} and "quantizer" not in fsq["params"]
  assert "quantizer" not in vq["params"]
  state = vq["quantizer_state"]["quantizer"]
  assert state["dictionary"].shape == (4096, 768) and state["counts"].shape == (4096,)
  # Per block: q, k, v, out projections 4(d^2 + d), MLP 2dm + m + d, two LayerNorms 4d.
  block = 4 * d * d + 2 * d * m + 9 * d + m
  rest = (depth * block + 2 * 2 * d  # Blocks and the two final LayerNorms.
          + 2 * n * d  # Position embeddings.
          + p * p * 256 * d + d + 2 * (p * p * 3 * d + d)  # Target and context patch embeddings.
          + d * p * p * 256 + p * p * 256)  # Depth head.
  bottleneck = {"fsq": 2 * d * 5 + d + 5, "vq_ema": 2 * d * 768 + d + 768}
  assert count(fsq) == rest + bottleneck["fsq"]
  assert count(vq["params"]) == rest + bottleneck["vq_ema"]
  # Beyond the codebook the models differ only in the Dense layers to and from the codes.
  unchanged = set(fsq["params"]) - {"encoder_head", "decoder_stem"}
  assert all(count(fsq["params"][k]) == count(vq["params"][k]) for k in unchanged)
  codebook = 4096 * 768 + 4096
  assert count(vq) - count(fsq) == codebook + bottleneck["vq_ema"] - bottleneck["fsq"]
  print(f"\nUViM oracle at paper widths (NYU depth heads): FSQ {count(fsq):,} variables; "
        f"VQ {count(vq):,} = {count(vq['params']):,} params + {codebook:,} codebook state "
        f"(4096 x 768 + counts); bottleneck Dense layers {bottleneck['fsq']:,} (FSQ) vs "
        f"{bottleneck['vq_ema']:,} (VQ).")


def test_attention_block_masks_and_attends_across():
  """The pieces the language model reuses: a causal mask, and cross-attention to a memory."""
  block = AttentionBlock(num_heads=2)
  x = jax.random.normal(jax.random.key(0), (1, 5, 8))
  memory = jax.random.normal(jax.random.key(1), (1, 3, 8))
  causal = jnp.tril(jnp.ones((5, 5), bool))
  params = block.init(jax.random.key(2), x)
  later_changed = x.at[:, 4].add(1.0)
  a = block.apply(params, x, mask=causal)
  b = block.apply(params, later_changed, mask=causal)
  np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-6)
  assert not np.allclose(a[:, 4], b[:, 4])
  cross = [block.apply(params, x, kv) for kv in (memory, 2 * memory)]
  assert cross[0].shape == x.shape and not np.allclose(cross[0], cross[1])
