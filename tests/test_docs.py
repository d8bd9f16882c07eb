"""Every Python block of README.md and docs/ runs as written."""
import os
import pathlib
import re

import numpy as np
import pytest
from flax import traverse_util

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [(page, i, code) for page in PAGES
          for i, code in enumerate(re.findall(r"^```python\n(.*?)^```", page.read_text(),
                                              re.MULTILINE | re.DOTALL))]
# Blocks that read the FID Inception (random weights here, written where the user's go): the
# network's compilation takes a minute on 2 cores.
NEEDS_INCEPTION = "load_variables()"


def _random_inception_weights(home: pathlib.Path) -> None:
  from fsq.evaluators import inception
  shapes = traverse_util.flatten_dict(inception.variable_shapes(), sep="/")
  rng = np.random.default_rng(0)
  # He-initialised kernels, identity batch norms: finite, non-degenerate features.
  fill = {"mean": np.zeros, "var": np.ones, "scale": np.ones, "bias": np.zeros}
  flat = {k: (rng.normal(0.0, np.sqrt(2 / np.prod(s.shape[:-1])), s.shape)
              if k.endswith("kernel") else fill[k.rsplit("/", 1)[1]](s.shape)).astype(np.float32)
          for k, s in shapes.items()}
  path = pathlib.Path(os.path.expanduser(inception.DEFAULT_NPZ.replace("~", str(home))))
  path.parent.mkdir(parents=True)
  np.savez(path, **flat)


def test_the_readme_has_python_to_run():
  assert any(page.name == "README.md" for page, _, _ in BLOCKS)


@pytest.mark.parametrize(
    "page, index, code",
    [pytest.param(*block, marks=[pytest.mark.slow] if NEEDS_INCEPTION in block[2] else [])
     for block in BLOCKS],
    ids=[f"{p.relative_to(ROOT)}#{i}" for p, i, _ in BLOCKS])
def test_python_block_runs(page, index, code, monkeypatch, tmp_path):
  monkeypatch.chdir(tmp_path)
  if NEEDS_INCEPTION in code:
    monkeypatch.setenv("HOME", str(tmp_path))
    _random_inception_weights(tmp_path)
  exec(compile(code, f"{page.relative_to(ROOT)} block {index}", "exec"), {})
