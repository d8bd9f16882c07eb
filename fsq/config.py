"""Config helpers: big_vision-style argument strings and validation before anything compiles.

`configs/NAME.py:get_config(arg)` receives the text after the colon of
`--config=configs/NAME.py:quantizer=vq,codebook_size=1024,runlocal`; `parse_arg` turns it
into typed values (a bare name means True; levels are written `8-5-5-5`).
"""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from fsq import data as data_lib
from fsq.data.tokens import read_manifest
from fsq.quantizers import QUANTIZERS, make_quantizer
from fsq.train import evaluation


class ConfigError(ValueError):
  """A config that cannot run; the message says what to change."""


def _convert(key: str, text: str, default: Any) -> Any:
  try:
    if isinstance(default, bool):
      if text.lower() in ("1", "true", "yes", ""):
        return True
      if text.lower() in ("0", "false", "no"):
        return False
      raise ValueError(text)
    if isinstance(default, int):
      return int(text)
    if isinstance(default, float):
      return float(text)
    if isinstance(default, tuple):
      return tuple(int(x) for x in text.split("-"))
  except ValueError:
    raise ConfigError(f"config argument {key}={text!r} is not a valid {type(default).__name__}"
                      + (" (write levels like 8-5-5-5)" if isinstance(default, tuple) else "")
                      ) from None
  return text


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses "k1=v1,flag,k2=v2" into the keys of `defaults`, typed like the defaults."""
  values = dict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, text = item.partition("=")
    key = key.strip()
    if key not in defaults:
      raise ConfigError(f"unknown config argument {key!r}; this config takes "
                        f"{', '.join(sorted(defaults))}.")
    values[key] = True if "=" not in item else _convert(key, text.strip(), defaults[key])
  return ml_collections.ConfigDict(values)


def set_dotted(config: ml_collections.ConfigDict, key: str, value: Any) -> None:
  """config.a.b.c = value for key "a.b.c"; a ConfigError names what exists where a part does not."""
  *parents, leaf = key.split(".")
  node = config
  for name in parents:
    node = node.get(name) if hasattr(node, "get") else None
    if node is None:
      raise ConfigError(f"{key}: the config has no {name!r}.")
  if leaf not in node:
    raise ConfigError(f"{key}: the config has no {leaf!r}; it has "
                      f"{', '.join(sorted(node.keys()))}.")
  try:
    node[leaf] = value
  except (TypeError, ValueError) as e:
    raise ConfigError(f"{key}={value!r}: {e}") from None


def parse_value(text: str, like: Any) -> Any:
  """`text` as a value of the type of `like` (the field's current value).

  Tuples are comma-separated (levels also as 8-5-5-5); a field that is None or a dict takes
  a Python literal, or the text itself.
  """
  if isinstance(like, tuple):
    body = text.strip("()[] ")
    sep = "-" if re.fullmatch(r"\d+(-\d+)+", body) else ","
    first = like[0] if like else None
    return tuple(parse_value(p.strip(), first) for p in body.split(sep) if p.strip())
  if isinstance(like, (bool, int, float)):
    return _convert("value", text, like)
  if isinstance(like, str):
    return text
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_overrides(config: ml_collections.ConfigDict, items: Sequence[str]) -> None:
  """Applies "a.b=value" items, each typed like the field it replaces; every bad item at once.

  The one override mechanism: `--config.a.b=value` of scripts.train, scripts.evaluate and
  scripts.sample, and the overrides of a sweep's runs, all end here.
  """
  problems = []
  for item in items:
    key, sep, text = item.partition("=")
    if not sep:
      problems.append(f"{item!r}: write KEY=VALUE.")
      continue
    try:
      like = _get_dotted(config, key)
      set_dotted(config, key, parse_value(text, like))
    except ConfigError as e:
      problems.append(str(e))
  if problems:
    raise ConfigError("bad config override" + ("s" if len(problems) > 1 else "") + ":\n  "
                      + "\n  ".join(problems))


def _get_dotted(config: ml_collections.ConfigDict, key: str) -> Any:
  node = config
  for i, name in enumerate(key.split(".")):
    if not hasattr(node, "keys") or name not in node:
      where = ".".join(key.split(".")[:i]) or "the config"
      known = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "no keys"
      raise ConfigError(f"{key}: {where} has no {name!r}; it has {known}.")
    node = node[name]
  return node


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """The config of `configs/NAME.py[:ARG]`: the file's get_config(ARG)."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"config file {path!r} does not exist (write --config=configs/NAME.py[:ARG]).")
  module_spec = importlib.util.spec_from_file_location(
      "config_" + os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def split_config_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """(the "KEY=VALUE" of each --config.KEY=VALUE in argv, the other arguments)."""
  overrides, rest = [], []
  for arg in argv:
    if arg.startswith("--config."):
      overrides.append(arg.removeprefix("--config."))
    else:
      rest.append(arg)
  return overrides, rest


@dataclasses.dataclass
class Check:
  """One named validation; `fn(config)` returns an error message, a list of them, or None."""
  name: str
  fn: Callable[[ml_collections.ConfigDict], str | list[str] | None]


def check_quantizer(config: ml_collections.ConfigDict) -> str | None:
  q = config.quantizer
  if q.name not in QUANTIZERS:
    return f"quantizer.name={q.name!r} is not one of {sorted(QUANTIZERS)}."
  try:
    quantizer = make_quantizer(**q)
    size = quantizer.codebook_size
    z = jax.ShapeDtypeStruct((1, quantizer.latent_dim), jnp.float32)
    jax.eval_shape(quantizer.init, jax.random.key(0), z)  # What building the layer checks.
  except (TypeError, ValueError) as e:
    return f"quantizer: {e}"
  if size < 2:
    return f"quantizer.codebook_size must be >= 2, got {size}."
  return None


def check_batch(config: ml_collections.ConfigDict, device_count: int,
                process_count: int) -> list[str]:
  return [f"{key}={size} must be a positive multiple of the device count {device_count} "
          f"({process_count} process(es)); set --config.{key} accordingly."
          for key in ("batch_size", "eval_batch_size")
          if (size := config.get(key)) is not None
          and (size <= 0 or size % device_count or size % process_count)]


def check_steps(config: ml_collections.ConfigDict) -> list[str]:
  return [f"{key} must be positive, got {config[key]}."
          for key in ("total_steps", "log_every", "eval_every", "checkpoint_every")
          if config[key] <= 0]


def check_data(config: ml_collections.ConfigDict) -> list[str]:
  """Opens every source the run reads (no example is read) and finds every evaluator's module:
  unknown names, bad options and unprepared TFDS datasets show before anything is written."""
  sources = {}
  if config.data.train.get("name") != "tokens":  # check_token_cache reads the cache's manifest.
    sources["data.train"] = config.data.train.to_dict()
  problems = []
  for name, cfg in config.get("evals", {}).items():
    try:
      found = importlib.util.find_spec(cfg.get("type", ""))
    except (ImportError, ValueError):
      found = None
    if found is None:
      problems.append(f"evals.{name}.type={cfg.get('type')!r} is not a module; set it to one "
                      f"such as fsq.evaluators.reconstruction.")
    sources.setdefault(f"evals.{name}.data" if cfg.get("data") else "data.eval",
                       evaluation.data_config(config, name))
  failures: dict[str, list[str]] = {}  # One line for one dataset missing for train and eval.
  for where, source in sources.items():
    try:
      data_lib.make_source(source)
    except (ValueError, TypeError, OSError) as e:
      failures.setdefault(str(e), []).append(where)
  return problems + [f"{', '.join(wheres)}: {e}" for e, wheres in failures.items()]


def check_workdir(path: str) -> str | None:
  """Whether `path` is, or can be created as, a directory this process can write (nothing is
  created)."""
  if os.path.exists(path) and not os.path.isdir(path):
    return f"workdir {path!r} is a file; pass a directory (new to start a run, a run's to resume)."
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    return f"workdir {path!r} is below the file {existing!r}; pass a path below a directory."
  if not os.access(existing, os.W_OK | os.X_OK):
    return f"workdir {path!r}: {existing!r} is not writable; pass a workdir you can write to."
  return None


def check_workdir_exists(path: str, what: str) -> str | None:
  if not path:
    return f"{what} is not set; pass the workdir of a finished Stage I run."
  if not os.path.isdir(os.path.join(path, "checkpoints")):
    return f"{what}={path!r} holds no checkpoints/ folder; train Stage I there first."
  return None


def check_token_cache(path: str) -> str | None:
  try:
    read_manifest(path)
  except FileNotFoundError as e:
    return f"token_cache: {e}"
  return None


def validate(config: ml_collections.ConfigDict, device_count: int, process_count: int,
             extra: tuple[Check, ...] = ()) -> None:
  """Raises ConfigError listing every problem of `config` (common checks + a stage's own)."""
  checks = [Check("steps", check_steps),
            Check("batch", lambda c: check_batch(c, device_count, process_count)),
            Check("data", check_data)]
  if "quantizer" in config:
    checks.append(Check("quantizer", check_quantizer))
  if "tokenizer" in config:
    checks.append(Check("tokenizer", lambda c: check_workdir_exists(c.tokenizer, "tokenizer")))
  if config.data.train.get("name") == "tokens":
    checks.append(Check("token_cache", lambda c: check_token_cache(c.data.train.path)))
  problems = []
  for check in (*checks, *extra):
    found = check.fn(config)
    problems.extend([found] if isinstance(found, str) else found or [])
  if problems:
    raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
