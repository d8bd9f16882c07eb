"""How scenes-FID behaves on 32 px scenes: its floor between two real samples, and how far
blur, colour and noise move it (the measurement behind leaving it out of the main job's plot).

  python -m fsq.studies.scenes_fid [--sizes=256,1024,4096] [--n=1024]

Real A is the held-out split's first N scenes, real B the training split's first N (disjoint
draws of the same generator); each degradation is applied to A and scored against B. Prints a
markdown table.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from fsq import data as data_lib
from fsq.evaluators import networks
from fsq.evaluators.fid import feature_statistics, frechet_distance


def scenes(split: str, n: int, size: int = 32) -> np.ndarray:
  source = data_lib.make_source({"name": "scenes", "split": split, "image_size": size,
                                 "num_examples": n})
  return np.concatenate([np.asarray(b["image"])[np.asarray(b["mask"])]
                         for b in data_lib.eval_batches(source, global_batch_size=256)])


def _blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
  return lambda x: ndimage.gaussian_filter(x.astype(np.float32), (0, sigma, sigma, 0))


def _token_average(x: np.ndarray) -> np.ndarray:
  """Each 4 x 4 patch (one token of the 8 x 8 tokenizer) replaced by its mean colour."""
  n, h, w, c = x.shape
  mean = x.astype(np.float32).reshape(n, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))
  return np.repeat(np.repeat(mean, 4, axis=1), 4, axis=2)


def _desaturate(x: np.ndarray) -> np.ndarray:
  grey = x.astype(np.float32).mean(axis=-1, keepdims=True)
  return 0.5 * x + 0.5 * grey


def _noise(x: np.ndarray) -> np.ndarray:
  return x + np.random.default_rng(0).normal(0.0, 8.0, x.shape)


DEGRADATIONS = {
    "Gaussian blur, sigma 0.5 px": _blur(0.5),
    "Gaussian blur, sigma 1 px": _blur(1.0),
    "Gaussian blur, sigma 2 px": _blur(2.0),
    "4 x 4 patch means (one colour per token)": _token_average,
    "half desaturated": _desaturate,
    "red + 16/255": lambda x: x + np.array([16.0, 0.0, 0.0]),
    "Gaussian noise, sd 8/255": _noise,
}


def psnr(x: np.ndarray, y: np.ndarray) -> float:
  mse = np.mean(((x.astype(np.float64) - y.astype(np.float64)) / 255.0) ** 2, axis=(1, 2, 3))
  return float(np.mean(-10.0 * np.log10(np.maximum(mse, 1e-10))))


def main(argv: list[str] | None = None) -> str:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="256,1024,4096", help="N for the real-vs-real rows")
  parser.add_argument("--n", type=int, default=1024, help="N for the degradation rows")
  args = parser.parse_args(argv)
  features = networks.fid_feature_fn("scenes")

  def stats(images: np.ndarray):
    return feature_statistics([features(images.astype(np.uint8))])

  lines = ["| scored against N real training-split scenes | N | scenes-FID | PSNR (dB) |",
           "|---|---|---|---|"]
  for n in sorted(int(s) for s in args.sizes.split(",")):
    fid = frechet_distance(*stats(scenes("validation", n)), *stats(scenes("train", n)))
    lines.append(f"| N real held-out scenes | {n} | {fid:.2f} | |")
  a, b = scenes("validation", args.n), scenes("train", args.n)
  real = stats(b)
  for name, degrade in DEGRADATIONS.items():
    x = np.clip(np.round(degrade(a)), 0, 255)
    lines.append(f"| held-out scenes, {name} | {args.n} | "
                 f"{frechet_distance(*stats(x), *real):.2f} | {psnr(x, a):.2f} |")
  table = "\n".join(lines)
  print(table)
  return table


if __name__ == "__main__":
  main()
