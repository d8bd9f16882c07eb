"""Config arguments and validation: every mistake is a clear error before anything compiles."""
import ml_collections
import pytest

from configs import vqvae
from fsq.config import ConfigError, check_workdir_exists, parse_arg, validate


def test_parse_arg_types_flags_and_levels():
  arg = parse_arg("quantizer=vq,levels=8-5-5-5,res=32,runlocal", quantizer="fsq", levels=(),
                  res=64, runlocal=False, lr=1.0)
  assert arg.quantizer == "vq" and arg.levels == (8, 5, 5, 5) and arg.res == 32
  assert arg.runlocal is True and arg.lr == 1.0


def test_unknown_argument_names_the_known_ones():
  with pytest.raises(ConfigError, match="unknown config argument 'levles'.*levels"):
    vqvae.get_config("levles=8-5-5")


@pytest.mark.parametrize("arg,match", [("res=big", "res='big'"),
                                       ("levels=8,5", "unknown config argument '5'"),
                                       ("levels=8-x", "8-5-5-5")])
def test_bad_argument_values(arg, match):
  with pytest.raises(ConfigError, match=match):
    vqvae.get_config(arg)


def test_fsq_codebook_size_picks_the_paper_levels():
  assert vqvae.get_config("codebook_size=4096").quantizer.levels == (7, 5, 5, 5, 5)
  assert vqvae.get_config("quantizer=vq,codebook_size=4096").quantizer.codebook_size == 4096


def test_config_is_locked_against_unknown_keys_and_wrong_types():
  config = vqvae.get_config("runlocal")
  with pytest.raises(AttributeError):
    config.totl_steps = 5
  with pytest.raises(TypeError):
    config.total_steps = "many"


def test_validation_lists_every_problem():
  config = vqvae.get_config("runlocal")
  config.batch_size = 12
  config.quantizer.levels = (8, 1)
  with pytest.raises(ConfigError) as e:
    validate(config, device_count=8, process_count=1)
  assert "batch_size=12" in str(e.value) and "multiple of the device count 8" in str(e.value)
  assert "quantizer: FSQ levels must be integers >= 2" in str(e.value)
  validate(vqvae.get_config("runlocal"), device_count=8, process_count=1)


def test_missing_stage_one_workdir(tmp_path):
  assert "no checkpoints/" in check_workdir_exists(str(tmp_path), "tokenizer")
  assert "not set" in check_workdir_exists("", "tokenizer")
  (tmp_path / "checkpoints").mkdir()
  assert check_workdir_exists(str(tmp_path), "tokenizer") is None


def test_unknown_quantizer_and_steps():
  config = ml_collections.ConfigDict(vqvae.get_config("runlocal").to_dict())
  config.quantizer.name = "pq"
  config.total_steps = 0
  with pytest.raises(ConfigError, match="(?s)total_steps must be positive.*'pq'"):
    validate(config, 1, 1)


def test_stage_two_without_tokenizer_workdir(tmp_path):
  from configs import maskgit_transformer
  config = maskgit_transformer.get_config(f"tokenizer={tmp_path}/nope,runlocal")
  with pytest.raises(ConfigError, match="tokenizer=.*nope.*no checkpoints"):
    validate(config, 1, 1)
  with pytest.raises(ConfigError, match="tokenizer is not set"):
    validate(maskgit_transformer.get_config("runlocal"), 1, 1)


@pytest.mark.parametrize("module,arg", [("vqvae", "quantizer=fsq"),
                                        ("maskgit_tokenizer", "quantizer=fsq"),
                                        ("uvim_oracle", "quantizer=fsq,runlocal")])
def test_every_fsq_config_takes_the_ifsq_bound(module, arg):
  import importlib

  import jax

  from fsq.quantizers import make_quantizer
  config = importlib.import_module(f"configs.{module}").get_config(arg)
  assert config.quantizer.bound == "tanh"  # The paper's, by default.
  config.quantizer.bound = "ifsq"
  layer = make_quantizer(**config.quantizer)
  z = jax.numpy.full((1, layer.latent_dim), 0.5)
  variables = layer.init(jax.random.key(0), z)
  assert layer.bind(variables).fsq.bound_name == "ifsq"
  with pytest.raises(ValueError, match="bound must be one of"):
    config.quantizer.bound = "sigmoid"
    make_quantizer(**config.quantizer).init(jax.random.key(0), z)
