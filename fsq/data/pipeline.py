"""From a data config to this host's batches (docs/design.md, "How a run flows").

Training: the global batch at step s is a pure function of (seed, s): rows s*B .. s*B + B - 1 of an endless stream
that visits the dataset in a fresh seeded permutation every epoch, each row with its own augmentation generator.
Host p of P builds only rows [p*B/P, (p+1)*B/P) of it, so hosts need no communication and a resumed run sees exactly
the batches it would have seen. Evaluation: the whole source once, in index order, padded to full batches with a
`mask` field that is False on padding rows.
"""
import collections
import functools
import itertools
from concurrent import futures
import multiprocessing
from typing import Iterator, Mapping, Optional

import numpy as np

from fsq.data import digits, scenes, tfds_sources, tokens
from fsq.data.source import Example, Source

SOURCES = {
    "scenes": scenes.Scenes,
    "digits": digits.Digits,
    "imagenet2012": functools.partial(tfds_sources.ImageClassification, "imagenet2012"),
    "imagenette/160px-v2": functools.partial(tfds_sources.ImageClassification, "imagenette/160px-v2"),
    "nyu_depth_v2": functools.partial(tfds_sources.NyuDepth, "nyu_depth_v2"),
    "coco/2017_panoptic": functools.partial(tfds_sources.CocoPanoptic, "coco/2017_panoptic"),
    "tokens": tokens.TokenCache,  # MaskGIT Stage II's pre-tokenised data (scripts/tokenize.py).
}


def make_source(config: Mapping) -> Source:
  """The source named by `config.name` (a key of SOURCES); every other key is passed to it (split, image_size...)."""
  kwargs = dict(config)
  name = kwargs.pop("name")
  if name not in SOURCES:
    raise ValueError(f"unknown data source {name!r}; known: {sorted(SOURCES)}")
  return SOURCES[name](**kwargs)


def _host_rows(global_batch_size: int, process_index: int, process_count: int) -> np.ndarray:
  if global_batch_size % process_count:
    raise ValueError(f"global batch size {global_batch_size} is not divisible by {process_count} processes")
  per_host = global_batch_size // process_count
  return np.arange(process_index * per_host, (process_index + 1) * per_host)


@functools.lru_cache(maxsize=2)
def _epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
  return np.random.default_rng([seed, 0, epoch]).permutation(num_examples)


def global_indices(step: int, global_batch_size: int, seed: int, num_examples: int) -> np.ndarray:
  """Dataset indices (global_batch_size,) of the global batch at `step`."""
  positions = step * global_batch_size + np.arange(global_batch_size)
  epochs, offsets = np.divmod(positions, num_examples)
  return np.concatenate([_epoch_permutation(seed, int(e), num_examples)[offsets[epochs == e]]
                         for e in np.unique(epochs)])


def stack(examples: list[Example]) -> Example:
  return {key: np.stack([example[key] for example in examples]) for key in examples[0]}


def batch_for_step(source: Source, step: int, *, global_batch_size: int, seed: int, process_index: int = 0,
                   process_count: int = 1) -> Example:
  """This host's rows of the global training batch at `step`: arrays with a leading dim global_batch_size / P."""
  rows = _host_rows(global_batch_size, process_index, process_count)
  indices = global_indices(step, global_batch_size, seed, len(source))[rows]
  positions = step * global_batch_size + rows
  return stack([source.get(int(index), np.random.default_rng([seed, 1, int(position)]))
                for index, position in zip(indices, positions)])


_worker_source: Optional[Source] = None


def _set_worker_source(source: Source):
  global _worker_source
  _worker_source = source


def _worker_batch(step: int, **kwargs) -> Example:
  return batch_for_step(_worker_source, step, **kwargs)


def train_batches(source: Source, *, start_step: int, global_batch_size: int, seed: int, process_index: int = 0,
                  process_count: int = 1, num_workers: int = 0, prefetch: int = 2) -> Iterator[tuple[int, Example]]:
  """Yields (step, batch_for_step(step)) for step = start_step, start_step + 1, ... forever.

  Batches are built ahead of the consumer: in one background thread (num_workers=0), which overlaps the
  accelerator's step, or in `num_workers` spawned processes, which also builds several batches at once. Either way
  the batches are exactly those of batch_for_step.
  """
  batch_kwargs = dict(global_batch_size=global_batch_size, seed=seed, process_index=process_index,
                      process_count=process_count)
  if num_workers:
    executor = futures.ProcessPoolExecutor(num_workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_set_worker_source, initargs=(source,))
    make_batch = functools.partial(_worker_batch, **batch_kwargs)
  else:
    executor = futures.ThreadPoolExecutor(1)
    make_batch = functools.partial(batch_for_step, source, **batch_kwargs)
  ahead = max(prefetch, num_workers, 1)
  try:
    pending = collections.deque(executor.submit(make_batch, start_step + k) for k in range(ahead))
    for step in itertools.count(start_step):
      batch = pending.popleft().result()
      pending.append(executor.submit(make_batch, step + ahead))
      yield step, batch
  finally:
    executor.shutdown(wait=False, cancel_futures=True)


def num_eval_batches(source: Source, global_batch_size: int) -> int:
  return -(-len(source) // global_batch_size)


def eval_batches(source: Source, *, global_batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[Example]:
  """This host's rows of every global batch of the whole source in index order, plus a boolean `mask` (rows,).

  Every host yields num_eval_batches batches; the rows past the end of the source are zeros with mask False.
  """
  rows = _host_rows(global_batch_size, process_index, process_count)
  padding = {key: np.zeros_like(value) for key, value in source[0].items()}
  for batch in range(num_eval_batches(source, global_batch_size)):
    positions = batch * global_batch_size + rows
    mask = positions < len(source)
    examples = stack([source[int(p)] if valid else padding for p, valid in zip(positions, mask)])
    yield {**examples, "mask": mask}
