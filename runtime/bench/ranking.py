"""Do two rankings of the same policies agree, where each side can tell them apart?

A ranking measured on a noisy machine orders two policies only when their difference is
larger than its run-to-run noise; a simulator's ranking orders two policies only when the
order does not hang on the uncertainty of what it was fitted to. Counting a swap between
two policies that one side cannot separate as a disagreement measures noise, not
fidelity. So every pair of policies gets an order on each side, -1 (the first is faster),
+1 (the second is) or 0 (that side cannot tell):

- measured side (`paired_order`): repeats are run interleaved (every policy once per
  round), so each round gives a paired difference; the pair is ordered when the
  two-sided confidence interval of the mean difference (Student's t, `level`) excludes 0;
- modelled side (`stable_order`): the model is re-fitted several times (for instance on
  resamples of its calibration points); the pair is ordered when at least `agree` of the
  re-fitted models give the order of the central one.

`agreement` then counts pairs both sides order alike (concordant) and oppositely
(discordant), and Kendall's tau-b over all pairs with the unordered ones as ties
(Kendall, "The treatment of ties in ranking problems", Biometrika 33(3), 1945):

    tau_b = (C - D) / sqrt((P - T_x) (P - T_y))

P pairs in all, T_x and T_y those each side leaves unordered. The rankings agree when no
pair is discordant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Mapping, Sequence

# Two-sided 95% quantiles of Student's t by degrees of freedom (1-30); beyond, the normal.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074,
         2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` >= 1 degrees of freedom."""
    if df < 1:
        raise ValueError(f"need at least 1 degree of freedom, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.960


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Mean of `a - b` over paired repeats, the half-width of its 95% interval (inf with
    one repeat), and the order it supports (-1: a faster, +1: b faster, 0: cannot tell)."""

    mean: float
    half_width: float
    order: int


def paired_order(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    """`a[i]` and `b[i]` measured in the same round. Raises ValueError when the lengths
    differ or there is no repeat."""
    if len(a) != len(b) or not a:
        raise ValueError(f"need the same number (>= 1) of repeats, got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    n = len(diffs)
    mean = sum(diffs) / n
    if n == 1:
        return PairedDifference(mean, math.inf, 0)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    order = 0 if abs(mean) <= half else (-1 if mean < 0 else 1)
    return PairedDifference(mean, half, order)


def stable_order(central: Mapping[str, float], refits: Sequence[Mapping[str, float]],
                 a: str, b: str, agree: float = 0.9) -> int:
    """The order of `a` and `b` under the central model (-1: a faster), kept only when at
    least `agree` of the re-fitted models give it too; 0 otherwise or on an exact tie."""
    order = sign(central[a] - central[b])
    if order == 0:
        return 0
    if refits and refits_keeping(central, refits, a, b) < agree * len(refits):
        return 0
    return order


def refits_keeping(central: Mapping[str, float], refits: Sequence[Mapping[str, float]],
                   a: str, b: str) -> int:
    """How many re-fitted models order `a` and `b` as the central one does."""
    order = sign(central[a] - central[b])
    return sum(sign(r[a] - r[b]) == order for r in refits)


@dataclass(frozen=True, slots=True)
class Agreement:
    pairs: int
    concordant: int
    discordant: int
    unordered_x: int  # pairs the first side cannot order
    unordered_y: int
    tau_b: float  # nan when a side orders no pair

    @property
    def agrees(self) -> bool:
        """No pair in opposite orders, and at least one pair ordered alike."""
        return self.discordant == 0 and self.concordant > 0


def agreement(x: Mapping[tuple[str, str], int], y: Mapping[tuple[str, str], int]
              ) -> Agreement:
    """`x`, `y`: the order of each pair (same keys) on each side. Raises ValueError when
    the pairs differ."""
    if set(x) != set(y):
        raise ValueError("both sides must order the same pairs")
    c = sum(1 for k in x if x[k] and x[k] == y[k])
    d = sum(1 for k in x if x[k] and y[k] and x[k] != y[k])
    tx = sum(1 for k in x if not x[k])
    ty = sum(1 for k in y if not y[k])
    p = len(x)
    denominator = math.sqrt((p - tx) * (p - ty))
    tau = (c - d) / denominator if denominator else math.nan
    return Agreement(p, c, d, tx, ty, tau)


def pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    return list(combinations(names, 2))


def sign(v: float) -> int:
    """-1, 0 or +1."""
    return (v > 0) - (v < 0)
