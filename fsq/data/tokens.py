"""A pre-tokenised copy of a dataset for MaskGIT Stage II: the `tokens` source and its format.

scripts/tokenize.py writes DIR/tokens.npy (N, h, w) int32, DIR/labels.npy (N,) int32 and, last,
DIR/manifest.json: the tokenizer workdir (absolute) and checkpoint step, the data config it
tokenised (the deterministic, rng=None view of each example: a source with random augmentation
such as TFDS ImageNet's train crops and flips is cached without it), num_examples, token_shape
and codebook_size. The whole directory is written under a temporary name and renamed, so a
directory named DIR is complete.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

from fsq.data.source import Example, Source

MANIFEST, TOKENS, LABELS = "manifest.json", "tokens.npy", "labels.npy"
_COMMAND = "python -m scripts.tokenize --tokenizer={} --out=DIR"


def read_manifest(path: str) -> dict[str, Any]:
  if not os.path.isdir(path):
    raise FileNotFoundError(f"token cache {path!r} does not exist; write one with "
                            f"`{_COMMAND.format('STAGE1_WORKDIR')}`.")
  manifest = os.path.join(path, MANIFEST)
  if not os.path.exists(manifest):
    raise FileNotFoundError(f"token cache {path!r} has no {MANIFEST}: it is not a cache, or its "
                            f"writing was interrupted (then delete it); write one with "
                            f"`{_COMMAND.format('STAGE1_WORKDIR')}`.")
  with open(manifest) as f:
    return json.load(f)


def check_cache(path: str, tokenizer: str, step: int, codebook_size: int) -> dict[str, Any]:
  """The manifest of the cache at `path`; ValueError unless it holds the tokens of checkpoint
  `step` of the Stage I run in `tokenizer`, with `codebook_size` codes."""
  manifest = read_manifest(path)
  problems = []
  if os.path.realpath(manifest["tokenizer"]) != os.path.realpath(tokenizer):
    problems.append(f"it was made by the tokenizer in {manifest['tokenizer']!r}, not {tokenizer!r}")
  if manifest["tokenizer_step"] != step:
    problems.append(f"it holds the tokens of checkpoint {manifest['tokenizer_step']}, and the "
                    f"tokenizer's latest checkpoint is {step}")
  if manifest["codebook_size"] != codebook_size:
    problems.append(f"its codebook size is {manifest['codebook_size']}, the tokenizer's "
                    f"{codebook_size}")
  if problems:
    raise ValueError(f"token_cache={path!r} does not match the tokenizer: {'; '.join(problems)}. "
                     f"Tokenise again into a new directory (`{_COMMAND.format(tokenizer)}`), or "
                     f"leave token_cache out of the config to tokenise on the fly.")
  return manifest


def write_cache(out: str, manifest: dict[str, Any], num_examples: int,
                batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> str:
  """Writes (tokens (B, h, w), labels (B,)) batches, num_examples rows in all, as the cache `out`
  with `manifest` (plus num_examples and token_shape); returns `out`."""
  if os.path.exists(out) and os.listdir(out):
    raise FileExistsError(f"{out!r} exists and is not empty; choose another directory.")
  tmp = f"{out.rstrip(os.sep)}.tmp-{os.getpid()}"
  os.makedirs(tmp)
  try:
    labels = np.lib.format.open_memmap(os.path.join(tmp, LABELS), "w+", np.int32, (num_examples,))
    tokens, start = None, 0
    for batch_tokens, batch_labels in batches:
      if tokens is None:
        tokens = np.lib.format.open_memmap(os.path.join(tmp, TOKENS), "w+", np.int32,
                                           (num_examples, *batch_tokens.shape[1:]))
      tokens[start:start + len(batch_tokens)] = batch_tokens
      labels[start:start + len(batch_labels)] = batch_labels
      start += len(batch_tokens)
    if tokens is None or start != num_examples:
      raise ValueError(f"got {start} examples, expected {num_examples}.")
    tokens.flush()
    labels.flush()
    manifest = {**manifest, "num_examples": num_examples, "token_shape": list(tokens.shape[1:])}
    with open(os.path.join(tmp, MANIFEST), "w") as f:
      json.dump(manifest, f, indent=2)
    os.rename(tmp, out)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return out


class TokenCache(Source):
  """The examples {"tokens": int32 (h, w), "label": int32 ()} of a cache written by
  scripts/tokenize.py, memory-mapped; example i is the tokens of example i of the data config
  in its manifest."""

  def __init__(self, path: str):
    self.path = path
    self.manifest = read_manifest(path)
    self._arrays: Optional[tuple[np.ndarray, np.ndarray]] = None
    tokens, labels = self._open()
    expected = (self.manifest["num_examples"], *self.manifest["token_shape"])
    if tokens.shape != expected or labels.shape != expected[:1]:
      raise ValueError(f"token cache {path!r}: tokens {tokens.shape} and labels {labels.shape} "
                       f"do not match its manifest {expected}; delete it and write it again "
                       f"with `{_COMMAND.format(self.manifest['tokenizer'])}`.")

  def _open(self) -> tuple[np.ndarray, np.ndarray]:
    if self._arrays is None:
      self._arrays = tuple(np.load(os.path.join(self.path, name), mmap_mode="r")
                           for name in (TOKENS, LABELS))
    return self._arrays

  def __getstate__(self) -> dict[str, Any]:
    # Data workers (spawned processes) map the files themselves: a pickled memmap is a copy.
    return {**self.__dict__, "_arrays": None}

  def __len__(self) -> int:
    return self.manifest["num_examples"]

  def get(self, index: int, rng: Optional[np.random.Generator] = None) -> Example:
    del rng  # The cache holds the deterministic view only.
    index = self._check_index(index)
    tokens, labels = self._open()
    return {"tokens": np.array(tokens[index]), "label": np.int32(labels[index])}

