"""Why FSQ's usage drops above 2^10 in the embedded trade-off study: training budget, tanh's
bound, both or neither?

  python -m scripts.reproduce --sweep=configs/sweeps/usage_drop.py --root=runs/tradeoff \
      --out=docs/results/usage_drop --figure=usage_drop

FSQ at 2^12 and 2^14 (the paper's levels, Table 1) on the embedded trade-off's VQ-VAE
(configs/sweeps/tradeoff.py), with tanh (the paper's bound) and with iFSQ's
`2 * sigmoid(1.6 z) - 1` (arXiv 2601.17124), at the trade-off's 1500 steps and at 4x as many
(evaluated every 1500 steps: usage against steps within one schedule).
The 1x runs are the trade-off study's own (same names, same configs): share its --root.
Arguments: steps (the 1x budget), factor (the longer budget's multiple).
"""
from configs.sweeps.tradeoff import vqvae_run
from fsq.config import parse_arg


def get_sweep(arg: str | None = None) -> list[dict]:
  arg = parse_arg(arg, steps=1500, factor=4)
  runs = []
  for factor in (1, arg.factor):  # Every short run before any long one.
    for size in (16384, 4096):
      for quantizer in ("fsq", "ifsq"):
        suffix = f"_x{factor}" if factor > 1 else ""
        runs.append(vqvae_run(quantizer, size, arg.steps * factor, every=arg.steps,
                              name=f"{quantizer}_{size}{suffix}"))
  return runs
