"""The paper's recommended FSQ levels per target codebook size (Table 1, appendix A.4.1)."""
from __future__ import annotations

# The appendix prints [7, 5, 5, 5] for 2^12 (875 codes), a typo: Table 1 and the UViM
# section use [7, 5, 5, 5, 5] (4375 codes).
RECOMMENDED_LEVELS: dict[int, tuple[int, ...]] = {
    2**4: (5, 3),
    2**6: (8, 8),
    2**8: (8, 6, 5),
    2**9: (8, 8, 8),
    2**10: (8, 5, 5, 5),
    2**11: (8, 8, 6, 5),
    2**12: (7, 5, 5, 5, 5),
    2**14: (8, 8, 8, 6, 5),
    2**16: (8, 8, 8, 5, 5, 5),
}


def levels_for_codebook_size(size: int) -> tuple[int, ...]:
  """Levels the paper recommends for a target codebook size (a key of RECOMMENDED_LEVELS).

  The product of the levels is close to, not always equal to, the target (2^10 -> 1000).
  """
  if size not in RECOMMENDED_LEVELS:
    raise ValueError(
        f"no recommended FSQ levels for codebook size {size}; the paper gives levels for "
        f"{sorted(RECOMMENDED_LEVELS)} (2^{{4,6,8,9,10,11,12,14,16}}). Pass levels explicitly.")
  return RECOMMENDED_LEVELS[size]

