"""The random-access interface every dataset of the project implements."""
import abc
from typing import Optional

import numpy as np

Example = dict[str, np.ndarray]


class Source(abc.ABC):
  """A finite, indexable dataset of examples with fixed shapes.

  `get(index, rng)` is a pure function of its arguments: with rng=None it returns the deterministic (evaluation)
  view of the example; a training batcher passes a seeded generator for the random augmentation of sources that
  have one. Fields, where a source has them: image uint8 (H, W, 3); label int32 (); depth float32 (H, W) in metres;
  semantic and instance int32 (H, W) (see docs/data.md).
  """

  @abc.abstractmethod
  def __len__(self) -> int:
    ...

  @abc.abstractmethod
  def get(self, index: int, rng: Optional[np.random.Generator] = None) -> Example:
    ...

  def __getitem__(self, index: int) -> Example:
    return self.get(index)

  def _check_index(self, index: int) -> int:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {type(self).__name__} of length {len(self)}")
    return index
