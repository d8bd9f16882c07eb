r"""Converts pytorch-fid's FID Inception weights (.pth) once into the .npz our module loads.

  pip install torch   # only for this conversion; the project itself never imports torch
  python -m scripts.convert_inception_weights \
      --input pt_inception-2015-12-05-6726825d.pth \
      --output ~/.cache/fsq/fid_inception_2015-12-05.npz

The input is the file pytorch-fid downloads (its FID_WEIGHTS_URL, release "fid_weights"),
a port of TF's inception-2015-12-05 graph. See docs/evaluators.md.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Mapping

import numpy as np

from fsq.evaluators import inception

# torch.hub names files <name>-<first 8 hex digits of their sha256>.pth.
EXPECTED_SHA256_PREFIX = "6726825d"
# The 1008-way classifier is not part of the pool3 feature network.
_DROPPED = ("fc.weight", "fc.bias")
_BN = {"weight": ("params", "scale"), "bias": ("params", "bias"),
       "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def convert_state_dict(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """pytorch-fid state dict (numpy values) -> flat {"params/Mixed_5b/.../kernel": array}."""
  flat = {}
  for key, value in state_dict.items():
    if key in _DROPPED or key.endswith("num_batches_tracked"):
      continue
    block, _, name = key.rpartition(".")  # "Mixed_5b.branch1x1" "." "conv" "." "weight"
    block, _, layer = block.rpartition(".")
    if layer == "conv" and name == "weight":
      collection, leaf = "params", "kernel"
      value = np.transpose(value, (2, 3, 1, 0))  # OIHW -> HWIO
    elif layer == "bn" and name in _BN:
      collection, leaf = _BN[name]
    else:
      raise ValueError(f"unexpected entry {key!r}: is this pytorch-fid's {inception.WEIGHTS_FILE}?")
    flat[f"{collection}/{block.replace('.', '/')}/{layer}/{leaf}"] = np.asarray(value, np.float32)
  inception.check_variables(flat)
  return flat


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--input", required=True, help=f"path to {inception.WEIGHTS_FILE}")
  parser.add_argument("--output", default=inception.DEFAULT_NPZ, help="where to write the .npz")
  args = parser.parse_args(argv)
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    sys.exit("This one-time conversion needs PyTorch to read the .pth file: `pip install torch` "
             "(any recent CPU build), then run it again. Training and evaluation do not need it.")

  if not os.path.exists(args.input):
    sys.exit(f"{args.input} does not exist: download pytorch-fid's {inception.WEIGHTS_FILE} first.")
  with open(args.input, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  if not digest.startswith(EXPECTED_SHA256_PREFIX):
    print(f"WARNING: sha256 of {args.input} is {digest[:16]}..., the FID weights file's name "
          f"says {EXPECTED_SHA256_PREFIX}...: FIDs may not be comparable to published ones.",
          file=sys.stderr)
  state_dict = torch.load(args.input, map_location="cpu", weights_only=True)
  flat = convert_state_dict({k: v.numpy() for k, v in state_dict.items()})

  output = os.path.expanduser(args.output)
  os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
  tmp = output + ".tmp.npz"
  np.savez(tmp, **flat)
  os.replace(tmp, output)
  print(f"Wrote {len(flat)} arrays to {output}.")


if __name__ == "__main__":
  main()
