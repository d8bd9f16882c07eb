"""MaskGIT Stage I: VQGAN and discriminator shapes, blur-pool, losses, a tiny training run."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import maskgit_tokenizer
from fsq.config import ConfigError, set_dotted
from fsq.quantizers import FSQQuantizer, VectorQuantizer
from fsq.stages import make_stage
from fsq.train.loop import train
from fsq.train.writers import read_metrics
from maskgit import losses
from maskgit.discriminator import StyleGANDiscriminator, blur_pool
from maskgit.stage1 import Stage1
from fsq.models.conv_autoencoder import ConvVQVAE
from train_utils import assert_trees_equal, restore_params

# The paper's widths (arXiv 2309.15505, Sec. 4, MaskGIT), from the imagenet256 config.
PAPER = maskgit_tokenizer.get_config("variant=imagenet256")


def paper_vqgan(quantizer):
  return ConvVQVAE(quantizer, **PAPER.model)


def test_paper_config_matches_the_paper():
  assert PAPER.model.width == 128 and PAPER.model.channel_multipliers == (1, 1, 2, 2, 4)
  assert PAPER.model.num_res_blocks == 2 and PAPER.batch_size == 512
  assert PAPER.quantizer.levels == (8, 5, 5, 5)
  assert (PAPER.optax.b1, PAPER.optax.b2, PAPER.optax.lr) == (0.0, 0.99, 1e-4)
  assert PAPER.ema_decay == 0.999 and PAPER.losses.r1_weight == 10.0
  vq = maskgit_tokenizer.get_config("quantizer=vq,codebook_size=1024,variant=imagenet256")
  assert vq.quantizer.entropy_weight == 0.1 and vq.quantizer.dim == 256


@pytest.mark.parametrize("tokens", [16, 8])
def test_scenes_tokenizer_makes_the_token_grid_it_is_asked_for(tokens):
  config = maskgit_tokenizer.get_config(f"tokens={tokens}")
  vqgan = ConvVQVAE(FSQQuantizer(levels=(8, 5, 5, 5)), **config.model)
  x = jnp.zeros((1, 64, 64, 3))
  _, aux = jax.eval_shape(vqgan.apply, jax.eval_shape(vqgan.init, jax.random.key(0), x), x)
  assert aux["indices"].shape == (1, tokens, tokens)


def test_scenes_tokenizer_rejects_other_token_grids():
  with pytest.raises(ConfigError, match="16 x 16 or 8 x 8"):
    maskgit_tokenizer.get_config("tokens=12")


@pytest.mark.parametrize("quantizer,latent_dim", [
    (FSQQuantizer(levels=(8, 5, 5, 5)), 4), (VectorQuantizer(codebook_size=1024), 256)])
def test_vqgan_shapes_at_paper_widths(quantizer, latent_dim):
  model = paper_vqgan(quantizer)
  x = jnp.zeros((2, 32, 32, 3))  # /16: a 2 x 2 token grid.
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  (x_hat, aux) = jax.eval_shape(model.apply, variables, x)
  assert x_hat.shape == (2, 32, 32, 3) and aux["indices"].shape == (2, 2, 2)
  z = jax.eval_shape(lambda v: model.apply(v, x, method=lambda m, x: m.encoder(x)), variables)
  assert z.shape == (2, 2, 2, latent_dim)
  params = variables["params"]
  assert params["encoder"]["Conv_0"]["kernel"].shape == (3, 3, 3, 128)
  assert "bias" not in params["encoder"]["Conv_0"]
  assert params["decoder"]["Conv_0"]["kernel"].shape == (3, 3, latent_dim, 512)
  # Encoder: 5 levels x 2 blocks + 2 extra; the decoder mirrors it.
  for part in ("encoder", "decoder"):
    assert sum(k.startswith("ResBlock") for k in params[part]) == 12


def test_fsq_vqgan_has_no_codebook_and_fewer_parameters():
  count = lambda model: sum(
      math.prod(p.shape) for p in jax.tree.leaves(jax.eval_shape(
          model.init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))["params"]))
  fsq = count(paper_vqgan(FSQQuantizer(levels=(8, 5, 5, 5))))
  vq = count(paper_vqgan(VectorQuantizer(codebook_size=1024)))
  # The codebook, plus the wider 1x1 encoder output conv and 3x3 decoder input conv.
  assert vq - fsq == 1024 * 256 + (512 + 1) * (256 - 4) + 9 * 512 * (256 - 4)


@pytest.mark.parametrize("size,blocks,widths", [
    (256, 6, [128, 256, 512, 512, 512, 512]), (128, 5, [256, 512, 512, 512, 512])])
def test_discriminator_shapes_follow_stylegan_table(size, blocks, widths):
  disc = StyleGANDiscriminator(**PAPER.discriminator)
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  params = jax.eval_shape(disc.init, jax.random.key(0), x)["params"]
  assert jax.eval_shape(disc.apply, {"params": params}, x).shape == (2,)
  names = sorted((k for k in params if k.startswith("DiscriminatorBlock")),
                 key=lambda k: int(k.split("_")[1]))
  assert len(names) == blocks  # One block per halving, down to 4 x 4.
  assert [params[k]["Conv_1"]["kernel"].shape[-1] for k in names] == widths
  assert params["Conv_0"]["kernel"].shape[-1] == 64 * 256 // size
  assert params["Dense_0"]["kernel"].shape == (4 * 4 * 512, 512)


def test_discriminator_rejects_non_power_of_two():
  with pytest.raises(ValueError, match="power of 2"):
    StyleGANDiscriminator().init(jax.random.key(0), jnp.zeros((1, 24, 24, 3)))


def test_blur_pool_is_a_binomial_low_pass_with_stride_2():
  x = np.zeros((1, 8, 8, 2), np.float32)
  x[0, 3, 5, 0] = 1.0  # An impulse in channel 0.
  y = np.asarray(blur_pool(jnp.asarray(x)))
  assert y.shape == (1, 4, 4, 2)
  # SAME pads one row/column on each side: out[i] = sum_k f[k] x[2i + k - 1], f = [1,3,3,1]/8.
  rows = np.array([0, 3, 1, 0]) / 8  # Impulse at 3: out[1] = f[2], out[2] = f[0].
  cols = np.array([0, 0, 3, 1]) / 8  # Impulse at 5: out[2] = f[2], out[3] = f[0].
  np.testing.assert_allclose(y[0, :, :, 0], np.outer(rows, cols), atol=1e-7)
  np.testing.assert_array_equal(y[..., 1], 0)
  # A constant image stays constant away from the zero padding; the filter sums to 1.
  ones = np.asarray(blur_pool(jnp.ones((1, 8, 8, 1))))[0, 1:-1, 1:-1, 0]
  np.testing.assert_allclose(ones, 1.0, rtol=1e-6)


def test_blur_pool_equals_a_depthwise_convolution():
  x = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
  taps = np.array([1.0, 3.0, 3.0, 1.0])
  kernel = np.tile((np.outer(taps, taps) / 64)[:, :, None, None], (1, 1, 1, 3))
  conv = jax.lax.conv_general_dilated(x, jnp.asarray(kernel, jnp.float32), (2, 2), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=3)
  np.testing.assert_allclose(blur_pool(x), conv, atol=1e-6)


def test_non_saturating_gan_losses():
  zero = jnp.zeros((4,))
  np.testing.assert_allclose(losses.generator_loss(zero), math.log(2), rtol=1e-6)
  np.testing.assert_allclose(losses.discriminator_loss(zero, zero), 2 * math.log(2), rtol=1e-6)
  real, fake = jnp.array([1.0, 3.0]), jnp.array([-1.0, 2.0])
  softplus = lambda t: math.log1p(math.exp(t))
  np.testing.assert_allclose(losses.generator_loss(fake),
                             (softplus(1.0) + softplus(-2.0)) / 2, rtol=1e-6)
  np.testing.assert_allclose(losses.discriminator_loss(real, fake),
                             (softplus(-1.0) + softplus(-3.0)) / 2
                             + (softplus(-1.0) + softplus(2.0)) / 2, rtol=1e-6)


def test_r1_penalty_of_a_linear_discriminator_is_the_squared_weight_norm():
  a = jax.random.normal(jax.random.key(1), (4, 4, 3))
  discriminator = lambda x: jnp.einsum("bhwc,hwc->b", x, a)  # D(x) = a . x per image.
  x = jax.random.normal(jax.random.key(2), (5, 4, 4, 3))
  penalty, logits = losses.r1_penalty(discriminator, x)
  np.testing.assert_allclose(penalty, jnp.sum(a ** 2), rtol=1e-5)
  np.testing.assert_allclose(logits, discriminator(x), rtol=1e-5)
  # Quadratic D(x) = |x|^2 / 2 per image: grad = x, penalty = mean_b |x_b|^2.
  penalty, _ = losses.r1_penalty(lambda x: 0.5 * jnp.sum(x ** 2, axis=(1, 2, 3)), x)
  np.testing.assert_allclose(penalty, jnp.mean(jnp.sum(x ** 2, axis=(1, 2, 3))), rtol=1e-5)


def test_lecam_and_reconstruction_and_perceptual_losses():
  real, fake = jnp.array([2.0, -1.0]), jnp.array([0.0, 1.0])
  # relu(real - 0.5)^2 = [2.25, 0]; relu(0.5 - fake)^2 = [0.25, 0].
  np.testing.assert_allclose(losses.lecam_loss(real, fake, 0.5, 0.5), 1.25, rtol=1e-6)
  x, x_hat = jnp.zeros((1, 2, 2, 1)), jnp.array([1.0, -1.0, 2.0, 0.0]).reshape(1, 2, 2, 1)
  np.testing.assert_allclose(losses.reconstruction_loss(x_hat, x, "l2"), 1.5)
  np.testing.assert_allclose(losses.reconstruction_loss(x_hat, x, "l1"), 1.0)
  with pytest.raises(ValueError, match="l2"):
    losses.reconstruction_loss(x_hat, x, "l3")
  features = lambda im: {"pixels": im, "doubled": 2 * im}  # 1.5 + 4 * 1.5.
  np.testing.assert_allclose(losses.perceptual_loss(features, x_hat, x), 7.5)


def test_a_luma_perceptual_loss_leaves_colour_to_the_reconstruction_loss():
  """Through a colour-sensitive feature map, a reconstruction that differs from its image by a
  luma-neutral colour change has a perceptual loss and gradient with RGB input, neither with
  luma input; a change of brightness keeps both."""
  rgb_features = lambda im: [im * jnp.array([1.0, -2.0, 3.0])]
  luma_features = losses.luma_input(rgb_features)
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 4, 4, 3), minval=-0.5, maxval=0.5)
  weights = jnp.asarray(losses.LUMA_WEIGHTS)
  neutral = jnp.array([1.0, 0.0, -weights[0] / weights[2]]) * 0.2  # Red up, blue down.
  brighter = (0.2 * float(weights.sum())) ** 2 * (1 + 4 + 9) / 3  # Luma up by 0.2 * sum.
  for change, luma_loss in ((neutral, 0.0), (jnp.full(3, 0.2), brighter)):
    x_hat = x + change
    assert float(losses.perceptual_loss(rgb_features, x_hat, x)) > 1e-3
    np.testing.assert_allclose(losses.perceptual_loss(luma_features, x_hat, x), luma_loss,
                               atol=1e-6, rtol=1e-4)
  grad = jax.grad(lambda y: losses.perceptual_loss(luma_features, y, x))(x + neutral)
  np.testing.assert_allclose(grad, 0.0, atol=1e-7)
  with pytest.raises(ValueError, match="perceptual_input='lab': choose one of rgb, luma"):
    Stage1(tiny_config(**{"losses.perceptual_input": "lab"}), perceptual_fn=rgb_features)


def tiny_config(arg="", **overrides):
  config = maskgit_tokenizer.get_config("runlocal,levels=5-5-5" + (f",{arg}" if arg else ""))
  settings = {"total_steps": 4, "batch_size": 8, "eval_batch_size": 16, "log_every": 1,
              "eval_every": 4, "checkpoint_every": 4, "tensorboard": False,
              "data.train.image_size": 16, "data.eval.image_size": 16,
              "data.eval.num_examples": 32, "model.width": 8,
              "model.channel_multipliers": (1, 2), "discriminator.max_width": 16,
              "losses.gan_start_step": 2, "evals.recon.network": "", **overrides}
  for key, value in settings.items():
    set_dotted(config, key, value)
  return config


@pytest.mark.slow
def test_fsq_run_has_no_quantizer_loss_and_starts_the_gan_on_time(tmp_path):
  config = tiny_config(checkpoint_every=2, **{"losses.lecam_weight": 0.001})
  stage = Stage1(config)
  state = train(stage, config, str(tmp_path))
  events = read_metrics(str(tmp_path))
  steps = [e for e in events if "train/loss" in e]
  assert [e["step"] for e in steps] == [1, 2, 3, 4]
  assert all(e["train/quantizer_loss"] == 0 for e in steps)
  assert [e["train/gan_active"] for e in steps] == [0, 0, 1, 1]
  assert all(e["train/d_loss"] > 0 and e["train/r1_penalty"] > 0 for e in steps)
  # The discriminator (and LeCam's EMAs) change only from the start step (2) on.
  initial = stage.init(jax.random.key(config.seed), {"image": np.zeros((1, 16, 16, 3), np.uint8)})
  at_start = restore_params(tmp_path, 2)
  assert_trees_equal(jax.device_get(initial.discriminator.params),
                     at_start["discriminator"]["params"])
  np.testing.assert_array_equal(at_start["lecam_ema"], 0)
  assert np.all(np.asarray(state.lecam_ema) != 0)
  assert not np.allclose(state.discriminator.params["Dense_1"]["kernel"],
                         initial.discriminator.params["Dense_1"]["kernel"])
  final = [e for e in events if "eval/recon/psnr" in e][-1]
  assert final["step"] == 4 and final["eval/recon/psnr"] > 5 and final["eval/recon/num_used"] >= 2
  assert final["eval/recon/usage"] == pytest.approx(final["eval/recon/num_used"] / 125)
  # The perplexity of the used codes' distribution is at most their number.
  assert 1 < final["eval/recon/perplexity"] <= final["eval/recon/num_used"]
  assert (tmp_path / "images" / "eval_recon_reconstructions_4.png").exists()


def test_vq_run_trains_with_its_auxiliary_loss(tmp_path):
  config = tiny_config("quantizer=vq,codebook_size=64", **{"losses.gan_start_step": 100})
  train(make_stage(config), config, str(tmp_path), devices=jax.devices()[:1])
  events = read_metrics(str(tmp_path))
  assert all(e["train/quantizer_loss"] > 0 for e in events if "train/loss" in e)
  final = [e for e in events if "eval/recon/usage" in e][-1]
  assert final["eval/recon/usage"] == pytest.approx(final["eval/recon/num_used"] / 64)
  assert final["eval/recon/num_used"] >= 1


def test_perceptual_weight_without_a_network_fails_clearly():
  config = tiny_config(**{"losses.perceptual_weight": 0.1, "losses.perceptual_network": ""})
  with pytest.raises(ValueError, match="perceptual_weight"):
    make_stage(config)


def test_scenes_perceptual_loss_and_scenes_fid_come_from_the_config(tmp_path):
  config = tiny_config(**{"losses.perceptual_weight": 0.1, "losses.perceptual_network": "scenes",
                          "evals.recon.network": "scenes", "total_steps": 2, "eval_every": 2,
                          "checkpoint_every": 2, "losses.gan_start_step": 100})
  train(make_stage(config), config, str(tmp_path), devices=jax.devices()[:1])
  events = read_metrics(str(tmp_path))
  steps = [e for e in events if "train/loss" in e]
  assert len(steps) == 2 and all(e["train/perceptual_loss"] > 0 for e in steps)
  for e in steps:  # The total is reconstruction + 0.1 x perceptual (FSQ: no other term).
    np.testing.assert_allclose(e["train/loss"],
                               e["train/recon_loss"] + 0.1 * e["train/perceptual_loss"],
                               rtol=1e-5)
  final = [e for e in events if "eval/recon/fid" in e][-1]
  # Scenes-FID of two steps' reconstructions: far from the data; the consistency is a
  # fraction of the 32 held-out scenes.
  assert final["eval/recon/fid"] > 1
  consistency = final["eval/recon/class_consistency"] * 32
  assert consistency == pytest.approx(round(consistency)) and 0 <= consistency <= 32


def test_an_imagenet_tokenizer_is_tokenised_without_inception_weights(tmp_path):
  """load_frozen reads the EMA generator and quantizer state only: no perceptual network, no
  discriminator, no dataset (the run itself trains on TFDS mock ImageNet)."""
  tfds = pytest.importorskip("tensorflow_datasets")
  from fsq.stages.restore import load_frozen
  config = maskgit_tokenizer.get_config("variant=imagenet128,levels=5-5-5")
  absent = str(tmp_path / "no_inception_weights.npz")
  settings = {"total_steps": 2, "batch_size": 4, "eval_batch_size": 4, "log_every": 1,
              "eval_every": 2, "checkpoint_every": 2, "tensorboard": False,
              "data.train.image_size": 32, "data.eval.image_size": 32, "model.width": 8,
              "model.channel_multipliers": (1, 2), "model.num_res_blocks": 1,
              "discriminator.base_width": 4, "discriminator.max_width": 8,
              "losses.perceptual_weights": absent, "evals.recon.network": "",
              "optax.warmup_steps": 1, "d_optax.warmup_steps": 1}
  for key, value in settings.items():
    set_dotted(config, key, value)
  with pytest.raises(FileNotFoundError):  # Training does need the perceptual network...
    make_stage(config)
  workdir = str(tmp_path / "tokenizer")
  with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
    train(Stage1(config, perceptual_fn=lambda x: [x]), config, workdir,
          devices=jax.devices()[:1])
  tokenizer = load_frozen(workdir)  # ... tokenising does not.
  assert tokenizer.step == 2 and set(tokenizer.variables) == {"params"}
  assert "discriminator" not in str(jax.tree_util.tree_structure(tokenizer.variables))
  images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8)
  tokens = tokenizer.tokenize(tokenizer.variables, images)
  assert tokens.shape == (2, 16, 16) and 0 <= int(tokens.min()) and int(tokens.max()) < 125
