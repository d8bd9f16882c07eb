"""Quantizers on 8 fake CPU devices, the batch sharded on 'data', equal one device."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from fsq import CodebookUsage, EMAVectorQuantizer, FSQQuantizer, VectorQuantizer
from fsq.quantizers.ema_vq import STATE


@pytest.fixture(scope="module")
def mesh():
  if jax.device_count() < 8:
    pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8")
  return Mesh(np.array(jax.devices()[:8]), ("data",))


def run_both(mesh, fn, *args):
  """fn(*args) on one device, and jitted with the leading axis of args[-1] sharded."""
  single = jax.jit(fn)(*args)
  replicated = NamedSharding(mesh, P())
  shardings = [replicated] * (len(args) - 1) + [NamedSharding(mesh, P("data"))]
  args = [jax.device_put(a, s) for a, s in zip(args, shardings)]
  sharded = jax.jit(fn, in_shardings=shardings)(*args)
  return single, sharded


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def test_fsq_sharded(mesh):
  z = jax.random.normal(jax.random.key(0), (16, 8, 8, 4)) * 2
  layer = FSQQuantizer(levels=(8, 5, 5, 5))
  single, sharded = run_both(mesh, lambda z: layer.apply({}, z), z)
  np.testing.assert_array_equal(single[1]["indices"], sharded[1]["indices"])
  np.testing.assert_array_equal(single[0], sharded[0])


def test_maskgit_vq_loss_and_gradients_sharded(mesh):
  z = jax.random.normal(jax.random.key(0), (16, 4, 4, 8))
  vq = VectorQuantizer(codebook_size=64, dim=8, chunk_size=24)
  params = vq.init(jax.random.key(1), z)["params"]

  def loss_and_grads(params, z):
    def loss(params, z):
      z_q, aux = vq.apply({"params": params}, z)
      return jnp.mean(z_q**2) + aux["loss"], aux["indices"]
    return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, z)

  single, sharded = run_both(mesh, loss_and_grads, params, z)
  np.testing.assert_array_equal(single[0][1], sharded[0][1])
  assert_trees_close(single, sharded)


def test_ema_vq_statistics_and_splits_sharded(mesh):
  z = jax.random.normal(jax.random.key(0), (16, 32, 8))
  vq = EMAVectorQuantizer(codebook_size=128, dim=8, momentum=0.3)
  variables = vq.init(jax.random.key(1), z)

  def steps(variables, z, vq=vq):
    for i in range(3):  # Momentum 0.3 and 128 codes for 512 tokens: splits happen.
      _, new_state = vq.apply(variables, z, train=True, rngs={"vq": jax.random.key(i)},
                              mutable=[STATE])
      variables = {**variables, **new_state}
    return variables

  single, sharded = run_both(mesh, steps, variables, z)
  assert_trees_close(single, sharded, rtol=1e-4, atol=1e-5)
  plain = steps(variables, z, vq.clone(split=False))
  assert float(jnp.min(plain[STATE]["counts"])) < 0.1  # There were dead codes to split,
  assert float(jnp.min(sharded[STATE]["counts"])) >= 0.1  # and none is left.


def test_usage_of_sharded_indices(mesh):
  idx = jax.random.randint(jax.random.key(0), (64, 16), 0, 500)
  sharded = jax.device_put(idx, NamedSharding(mesh, P("data")))
  a, b = CodebookUsage(500), CodebookUsage(500)
  a.update(idx)
  b.update(sharded)
  assert a.summary() == b.summary()
