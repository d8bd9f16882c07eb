"""Data: sources (procedural scenes, sklearn digits, TFDS datasets) and deterministic host-sharded batches.

See docs/data.md for the fields, splits and determinism contract. Importing this package never imports TensorFlow
or tensorflow_datasets; the TFDS sources import the latter when built.
"""
from fsq.data.image_ops import rgb_to_grey
from fsq.data.pipeline import (SOURCES, batch_for_step, eval_batches, global_indices, make_source, num_eval_batches,
                               train_batches)
from fsq.data.source import Example, Source
from fsq.data.tfds_sources import MissingDatasetError
