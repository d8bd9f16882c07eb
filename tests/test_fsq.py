"""FSQ semantics (arXiv 2309.15505, Sec. 3), each known pitfall as a test."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsq import FSQ, FSQQuantizer, levels_for_codebook_size
from fsq.quantizers import RECOMMENDED_LEVELS


def test_worked_example_levels_3_5_4():
  q = FSQ([3, 5, 4])
  codes = q.quantize(jnp.array([0.25, 0.6, -7.0]))
  np.testing.assert_array_equal(codes, [0.0, 0.5, -1.0])
  assert int(q.codes_to_indexes(codes)) == 10
  np.testing.assert_array_equal(q.indexes_to_codes(jnp.array(10)), [0.0, 0.5, -1.0])


def test_codebook_order_first_channel_fastest():
  codebook = FSQ([3, 4]).codebook
  assert codebook.shape == (12, 2)
  np.testing.assert_array_equal(codebook[:6], [[-1, -1], [0, -1], [1, -1],
                                               [-1, -0.5], [0, -0.5], [1, -0.5]])
  np.testing.assert_array_equal(codebook[-1], [1, 0.5])


@pytest.mark.parametrize("levels", list(RECOMMENDED_LEVELS.values()))
def test_index_round_trip_every_code(levels):
  q = FSQ(levels)
  idx = jnp.arange(q.codebook_size)
  codes = q.indexes_to_codes(idx)
  np.testing.assert_array_equal(q.codes_to_indexes(codes), idx)
  assert len(np.unique(np.asarray(codes), axis=0)) == q.codebook_size


@pytest.mark.parametrize("levels", list(RECOMMENDED_LEVELS.values()))
def test_quantize_reaches_every_code(levels):
  """Quantizing a fine grid of inputs hits all prod(L) codes."""
  q = FSQ(levels)
  grids = [np.linspace(-4, 4, 4 * L + 1) for L in levels]
  if q.codebook_size > 4096:  # Per channel is enough where the product grid is too big.
    for i, grid in enumerate(grids):
      z = np.zeros((grid.size, len(levels)), np.float32)
      z[:, i] = grid
      assert len(np.unique(np.asarray(q.quantize(z))[:, i])) == levels[i]
    return
  z = np.array(list(itertools.product(*grids)), np.float32)
  assert len(np.unique(np.asarray(q.codes_to_indexes(q.quantize(z))))) == q.codebook_size


@pytest.mark.parametrize("levels", [*RECOMMENDED_LEVELS.values(), (16,) * 5, (9,) * 7])
def test_call_indices_equal_codes_to_indexes(levels):
  """__call__ reads indices off the codes with an fp32 dot (small codebooks) or integers."""
  q = FSQ(levels)
  z = jax.random.normal(jax.random.key(1), (8192, len(levels))) * 3
  codes, idx = jax.jit(q.__call__)(z)
  np.testing.assert_array_equal(idx, q.codes_to_indexes(codes))
  assert idx.dtype == jnp.int32


def test_recommended_levels_and_typo():
  assert levels_for_codebook_size(2**12) == (7, 5, 5, 5, 5)
  assert levels_for_codebook_size(2**10) == (8, 5, 5, 5)
  with pytest.raises(ValueError, match="no recommended FSQ levels"):
    levels_for_codebook_size(2**13)


@pytest.mark.parametrize("bound", ["tanh", "ifsq"])
@pytest.mark.parametrize("shift", ["atanh", "tan"])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("level", [2, 3, 4, 5, 6, 7, 8, 15, 16])
def test_every_level_gives_exactly_l_values(level, symmetric, shift, bound):
  q = FSQ([level], shift=shift, symmetric=symmetric, bound=bound)
  z = jnp.linspace(-30.0, 30.0, 200_001)[:, None]
  codes = np.asarray(q.quantize(z))
  assert not np.isnan(codes).any()
  values = np.unique(codes)
  assert len(values) == level
  if symmetric or level % 2:
    np.testing.assert_allclose(values, np.linspace(-1, 1, level), atol=1e-6)
  else:  # Even L: {-L/2 .. L/2 - 1} / (L/2), e.g. L = 8 -> -1, -0.75, ..., 0.75.
    np.testing.assert_allclose(values, np.arange(-(level // 2), level // 2) / (level // 2))
  grad = jax.grad(lambda x: q.quantize(x).sum())(z)
  assert np.isfinite(np.asarray(grad)).all()


@pytest.mark.parametrize("bound", ["tanh", "ifsq"])
def test_zero_maps_to_code_zero(bound):
  for levels in ([8, 5, 5, 5], [2, 4, 6]):
    np.testing.assert_array_equal(
        FSQ(levels, bound=bound).quantize(jnp.zeros((1, len(levels)))), 0.0)


def test_ifsq_bound_is_the_sigmoid_and_spreads_normal_inputs_less():
  """bound="ifsq" is 2 sigmoid(1.6 z) - 1 scaled like tanh; for N(0, 1) inputs it puts less
  mass on the outer levels than tanh does (the encoder's real distribution decides which
  is uniform)."""
  levels = [7, 5]
  z = jax.random.normal(jax.random.key(4), (100_000, 2))
  ifsq, tanh = FSQ(levels, bound="ifsq"), FSQ(levels)
  half_l = (np.array(levels) - 1) * (1 - 1e-3) / 2
  np.testing.assert_allclose(ifsq.bound(z), (2 * jax.nn.sigmoid(1.6 * z) - 1) * half_l,
                             rtol=1e-5, atol=1e-6)  # Odd L: no shift.
  outer = lambda q: float(np.mean(np.abs(np.asarray(q.quantize(z))[:, 0]) == 1.0))
  assert 0 < outer(ifsq) < 0.7 * outer(tanh)


def test_tan_and_atanh_shifts_differ_only_slightly():
  z = jax.random.normal(jax.random.key(0), (4096, 4)) * 2
  a = FSQ([8, 6, 4, 5]).bound(z)
  t = FSQ([8, 6, 4, 5], shift="tan").bound(z)
  assert 0 < float(jnp.abs(a - t).max()) < 0.05
  np.testing.assert_array_equal(a[:, 3], t[:, 3])  # Odd L has no shift.


@pytest.mark.parametrize("bound", ["tanh", "ifsq"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_ste_gradient_equals_bound_derivative(symmetric, bound):
  q = FSQ([8, 5, 4, 7], symmetric=symmetric, bound=bound)
  z = jax.random.normal(jax.random.key(1), (64, 4)) * 1.5
  w = jax.random.normal(jax.random.key(2), (64, 4))
  grad_q = jax.grad(lambda x: jnp.sum(w * q.quantize(x)))(z)
  bound_jvp = jax.jvp(q.bound, (z,), (w,))[1]  # Elementwise: jvp = bound'(z) * w.
  scale = np.array([4, 2, 2, 3]) if not symmetric else (np.array([8, 5, 4, 7]) - 1) / 2
  np.testing.assert_allclose(grad_q, bound_jvp / scale, rtol=1e-5, atol=1e-7)
  assert float(jnp.abs(grad_q).min()) > 0


@pytest.mark.parametrize("bound", ["tanh", "ifsq"])
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_inputs_give_fp32_indices(dtype, bound):
  """bf16 index arithmetic loses integers (1001 -> 1000); FSQ indexes in fp32/int."""
  q = FSQ([8, 8, 8, 6, 5], bound=bound)
  z = (jax.random.normal(jax.random.key(3), (20000, 5)) * 2).astype(dtype)
  codes_lp, idx_lp = q(z)
  codes_32, idx_32 = q(z.astype(jnp.float32))
  assert codes_lp.dtype == dtype and idx_lp.dtype == jnp.int32
  np.testing.assert_array_equal(idx_lp, idx_32)
  # Indices recovered from the low-precision codes themselves are right too.
  np.testing.assert_array_equal(q.codes_to_indexes(codes_lp), idx_32)
  assert idx_32.max() > 2048  # Beyond the integers bf16 represents exactly.


def test_slightly_off_codes_round_not_truncate():
  """Casting float codes to int without rounding gives off-by-one indices."""
  q = FSQ([7, 5, 5, 5, 5])
  idx = jnp.arange(q.codebook_size)
  codes = q.indexes_to_codes(idx)
  np.testing.assert_array_equal(q.codes_to_indexes(codes - 1e-4), idx)
  np.testing.assert_array_equal(q.codes_to_indexes(codes + 1e-4), idx)


def test_too_many_codes_for_int32_is_a_clear_error():
  assert not jax.config.jax_enable_x64
  with pytest.raises(ValueError, match="int32"):
    FSQ([8] * 11)  # 2^33 codes.
  q = FSQ([2] * 31)  # 2^31 codes: largest index 2^31 - 1 still fits int32.
  # For L = 2, code 0 is digit 1: all-zero codes are the largest index.
  assert int(q.codes_to_indexes(jnp.zeros((31,)))) == 2**31 - 1


def test_huge_codebook_not_built_eagerly():
  with pytest.raises(ValueError, match="indexes_to_codes"):
    _ = FSQ([8] * 10).codebook
  assert FSQ([8] * 10).indexes_to_codes(jnp.array([2**30 - 1])).shape == (1, 10)


@pytest.mark.parametrize("levels,match", [
    ([], "non-empty"), ([8, 1], ">= 2"), ([8, 2.5], "integers"), ("855", "sequence"),
    ([8, True], "integers"), (8, "sequence"),
])
def test_bad_levels_are_clear_errors(levels, match):
  with pytest.raises(ValueError, match=match):
    FSQ(levels)


def test_wrong_last_dimension_is_a_clear_error():
  with pytest.raises(ValueError, match="last dimension 4"):
    FSQ([8, 5, 5, 5]).quantize(jnp.zeros((2, 3)))
  with pytest.raises(ValueError, match="shift"):
    FSQ([8], shift="sin")


@settings(max_examples=60, deadline=None)
@given(levels=st.lists(st.integers(2, 17), min_size=1, max_size=6),
       seed=st.integers(0, 2**31 - 1), symmetric=st.booleans())
def test_property_round_trip_and_ranges(levels, seed, symmetric):
  q = FSQ(levels, symmetric=symmetric)
  z = jax.random.normal(jax.random.key(seed), (257, len(levels))) * 3
  codes = q.quantize(z)
  assert float(jnp.abs(codes).max()) <= 1.0
  idx = q.codes_to_indexes(codes)
  assert int(idx.min()) >= 0 and int(idx.max()) < q.codebook_size
  np.testing.assert_allclose(q.indexes_to_codes(idx), codes, atol=1e-6)
  call_codes, call_idx = q(z)
  np.testing.assert_array_equal(call_codes, codes)
  np.testing.assert_array_equal(call_idx, idx)
  rand_idx = jax.random.randint(jax.random.key(seed + 1), (257,), 0, q.codebook_size)
  np.testing.assert_array_equal(q.codes_to_indexes(q.indexes_to_codes(rand_idx)), rand_idx)


class TestFSQQuantizer:

  def test_plain_layer_matches_fsq(self):
    z = jax.random.normal(jax.random.key(0), (2, 4, 4, 4))
    layer = FSQQuantizer(levels=(8, 5, 5, 5))
    variables = layer.init(jax.random.key(1), z)
    assert not jax.tree.leaves(variables)  # No parameters at all.
    z_q, aux = layer.apply(variables, z)
    codes, idx = FSQ((8, 5, 5, 5))(z)
    np.testing.assert_array_equal(z_q, codes)
    np.testing.assert_array_equal(aux["indices"], idx)
    assert float(aux["loss"]) == 0.0

  @pytest.mark.parametrize("num_codebooks,num_stages", [(1, 1), (2, 1), (1, 3), (3, 2)])
  def test_projection_groups_stages_decode(self, num_codebooks, num_stages):
    z = jax.random.normal(jax.random.key(0), (2, 5, 24))
    layer = FSQQuantizer(levels=(8, 5, 5), dim=24, num_codebooks=num_codebooks,
                         num_stages=num_stages)
    variables = layer.init(jax.random.key(1), z)
    z_q, aux = layer.apply(variables, z)
    assert z_q.shape == z.shape
    tokens = num_codebooks * num_stages
    assert aux["indices"].shape == ((2, 5) if tokens == 1 else (2, 5, tokens))
    decoded = layer.apply(variables, aux["indices"], method="decode_indices")
    np.testing.assert_allclose(decoded, z_q, atol=1e-6)

  def test_residual_stages_reduce_error(self):
    z = 0.9 * jnp.tanh(jax.random.normal(jax.random.key(0), (4096, 4)))
    errors = []
    for stages in (1, 2, 3):
      z_q, _ = FSQQuantizer(levels=(7, 7, 7, 7), num_stages=stages).apply({}, z)
      errors.append(float(jnp.mean((z_q - z) ** 2)))
    assert errors[0] > 3 * errors[1] > 9 * errors[2]

  def test_wrong_width_is_a_clear_error(self):
    with pytest.raises(ValueError, match="last dimension 4"):
      FSQQuantizer(levels=(8, 5, 5, 5)).init(jax.random.key(0), jnp.zeros((2, 3)))


def test_fsq_layer_reports_its_latent_width():
  assert FSQQuantizer(levels=(8, 5, 5, 5)).latent_dim == 4
  assert FSQQuantizer(levels=(8, 5, 5, 5), num_codebooks=2).latent_dim == 8
  assert FSQQuantizer(levels=(8, 5, 5, 5), dim=16).latent_dim == 16  # Projected in and out.
