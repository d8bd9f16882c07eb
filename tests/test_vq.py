"""The VQ baselines: MaskGIT's VQ with its losses, UViM's EMA VQ with codebook splitting."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsq import EMAVectorQuantizer, VectorQuantizer
from fsq.quantizers import entropy_loss, nearest_codes
from fsq.quantizers.ema_vq import STATE


def brute_force(x, e, temperature):
  d = ((x[:, None, :] - e[None, :, :]) ** 2).sum(-1)
  probs = jax.nn.softmax(-d / temperature, axis=-1)
  sample_entropy = -jnp.mean(jnp.sum(probs * jax.nn.log_softmax(-d / temperature), -1))
  avg = probs.mean(0)
  return jnp.argmin(d, -1), sample_entropy - (-jnp.sum(avg * jnp.log(avg + 1e-5)))


@pytest.mark.parametrize("chunk_size", [None, 7, 64])
def test_nearest_neighbour_and_entropy_equal_brute_force(chunk_size):
  x = jax.random.normal(jax.random.key(0), (300, 16))
  e = jax.random.normal(jax.random.key(1), (50, 16))
  idx_ref, loss_ref = brute_force(x, e, 0.5)
  stats = nearest_codes(x, e, entropy_temperature=0.5, chunk_size=chunk_size)
  np.testing.assert_array_equal(stats.indices, idx_ref)
  np.testing.assert_allclose(entropy_loss(stats), loss_ref, rtol=1e-5, atol=1e-5)
  grad = jax.grad(lambda x, e: entropy_loss(nearest_codes(
      x, e, entropy_temperature=0.5, chunk_size=chunk_size)), argnums=(0, 1))(x, e)
  grad_ref = jax.grad(lambda x, e: brute_force(x, e, 0.5)[1], argnums=(0, 1))(x, e)
  for g, g_ref in zip(grad, grad_ref):
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-6)


def test_chunked_search_memory_at_paper_scale():
  """65,536 tokens x 65,536 codes x 256 dims: XLA's buffer plan stays under 2 GiB."""
  x = jax.ShapeDtypeStruct((65536, 256), jnp.float32)
  e = jax.ShapeDtypeStruct((65536, 256), jnp.float32)

  def loss(x, e):
    return entropy_loss(nearest_codes(x, e, entropy_temperature=0.01))

  for fn in (lambda x, e: nearest_codes(x, e).indices, jax.grad(loss, argnums=(0, 1))):
    memory = jax.jit(fn).lower(x, e).compile().memory_analysis()
    peak = (memory.temp_size_in_bytes + memory.argument_size_in_bytes
            + memory.output_size_in_bytes)
    assert peak < 2 * 2**30, peak


def test_maskgit_vq_losses_and_straight_through():
  z = jax.random.normal(jax.random.key(0), (2, 4, 4, 8))
  vq = VectorQuantizer(codebook_size=32, dim=8, entropy_weight=0.1, entropy_temperature=0.01)
  variables = vq.init(jax.random.key(1), z)
  z_q, aux = vq.apply(variables, z)
  codebook = variables["params"]["codebook"]
  idx_ref = jnp.argmin(((z.reshape(-1, 1, 8) - codebook[None]) ** 2).sum(-1), -1)
  np.testing.assert_array_equal(aux["indices"].reshape(-1), idx_ref)
  np.testing.assert_allclose(z_q.reshape(-1, 8), codebook[idx_ref], atol=1e-6)
  mse = float(jnp.mean((codebook[idx_ref] - z.reshape(-1, 8)) ** 2))
  np.testing.assert_allclose(aux["commitment_loss"], mse, rtol=1e-5)
  np.testing.assert_allclose(aux["codebook_loss"], mse, rtol=1e-5)
  np.testing.assert_allclose(
      aux["loss"], 1.25 * mse + 0.1 * aux["entropy_loss"], rtol=1e-5)
  # Straight-through: d(sum z_q)/dz is the identity.
  grad = jax.grad(lambda z: vq.apply(variables, z)[0].sum())(z)
  np.testing.assert_allclose(grad, jnp.ones_like(z))
  np.testing.assert_allclose(vq.apply(variables, aux["indices"], method="decode_indices"),
                             z_q, atol=1e-6)


def test_maskgit_vq_loss_gradients_reach_codebook_and_encoder():
  z = jax.random.normal(jax.random.key(0), (64, 8))
  vq = VectorQuantizer(codebook_size=16, dim=8)
  params = vq.init(jax.random.key(1), z)["params"]
  g_params, g_z = jax.grad(lambda p, z: vq.apply({"params": p}, z)[1]["loss"],
                           argnums=(0, 1))(params, z)
  assert float(jnp.abs(g_params["codebook"]).sum()) > 0 and float(jnp.abs(g_z).sum()) > 0


def _train_ema(split, steps=200):
  """16 clusters in a small cap of the sphere, codewords spread over all of it: plain EMA
  VQ only ever updates the few codewords nearest the cap, the rest stay dead."""
  vq = EMAVectorQuantizer(codebook_size=16, dim=4, momentum=0.8, split=split, standardize=False)
  key = jax.random.key(0)
  centers = jnp.array([1.0, 0, 0, 0]) + 0.4 * jax.random.normal(jax.random.key(7), (16, 4))
  centers = centers / jnp.linalg.norm(centers, axis=-1, keepdims=True)
  variables = vq.init(key, jnp.zeros((1, 4)))
  step = jax.jit(lambda v, x, k: vq.apply(v, x, train=True, rngs={"vq": k},
                                          mutable=[STATE]))
  for i in range(steps):
    k1, k2, k3 = jax.random.split(jax.random.fold_in(key, i), 3)
    x = centers[jax.random.randint(k1, (512,), 0, 16)] + 0.02 * jax.random.normal(
        k2, (512, 4))
    (_, aux), new_state = step(variables, x, k3)
    variables = {**variables, **new_state}
  _, aux = vq.apply(variables, centers)
  return len(np.unique(np.asarray(aux["indices"]))), variables


def test_ema_vq_splitting_revives_dead_codes():
  used_plain, plain = _train_ema(split=False)
  used_split, split = _train_ema(split=True)
  assert used_plain <= 10, used_plain
  assert int(jnp.sum(plain[STATE]["counts"] < 0.1)) >= 16 - used_plain
  assert used_split == 16, used_split
  assert float(split[STATE]["counts"].min()) >= 0.1


def test_ema_vq_standardises_and_normalises():
  z = 3 + 2 * jax.random.normal(jax.random.key(0), (2, 16, 8))
  vq = EMAVectorQuantizer(codebook_size=64, dim=8)
  variables = vq.init(jax.random.key(1), z)
  z_q, aux = vq.apply(variables, z)
  np.testing.assert_allclose(jnp.linalg.norm(z_q, axis=-1), 1.0, rtol=1e-5)
  codewords = EMAVectorQuantizer.codewords(variables[STATE]["dictionary"], variables[STATE]["counts"])
  z_std = jax.nn.standardize(z, axis=-1).reshape(-1, 8)
  idx_ref = jnp.argmin(((z_std[:, None] - codewords[None]) ** 2).sum(-1), -1)
  np.testing.assert_array_equal(aux["indices"].reshape(-1), idx_ref)
  # Evaluation never touches the statistics.
  (_, _), state = vq.apply(variables, z, mutable=[STATE])
  np.testing.assert_array_equal(state[STATE]["counts"], variables[STATE]["counts"])


@pytest.mark.parametrize("layer", [VectorQuantizer(codebook_size=8, dim=4),
                                   EMAVectorQuantizer(codebook_size=8, dim=4)])
def test_vq_reports_its_width_and_refuses_another(layer):
  assert layer.latent_dim == 4
  with pytest.raises(ValueError, match="dim=4\\) got inputs of width 3"):
    layer.init(jax.random.key(0), jnp.zeros((2, 3)))
