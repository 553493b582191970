"""The Gittins index of a job with attained service `a`, for an empirical distribution
of job sizes (Gittins, "Bandit processes and dynamic allocation indices", J. Royal
Statistical Society B 41(2), 1979; for queues, Scully, Harchol-Balter and
Scheller-Wolf, "SOAP: One clean analysis of all age-based scheduling policies", POMACS
2(1), 2018, and Scully and Harchol-Balter, "The Gittins policy in the M/G/1 queue",
WiOpt 2021):

    G(a) = sup over D > 0 of  P(S - a <= D | S > a) / E[min(S - a, D) | S > a]

the best ratio of "chance to finish within D more" to "service spent trying". Serving
the job of highest index minimises mean response time in an M/G/1 queue whose sizes are
unknown but drawn from a known distribution; when sizes are known it reduces to SRPT
(G = 1 / remaining), with no information at all to attained-service order for
decreasing-hazard sizes.

For n samples sorted ascending and d_1 <= ... <= d_m the m of them above `a` minus `a`,
the supremum is attained at some D = d_k:

    G(a) = max over k of  k / (d_1 + ... + d_k + (m - k) d_k)

(ties within equal d's only lower the ratio, so taking every k is exact). O(m) with
numpy. A job that has outlived every sample (m = 0) gets the attained-order index
(`attained_index`, at most 1 / (1 + a/2)), so it ranks below anything the distribution
still says is short.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class IndexResult:
    """The Gittins index at attained service `a` (higher runs first), the mean of the
    remaining service among the samples above `a` (None when none is), and how many
    samples lie above `a`."""

    index: float
    mean_remaining: float | None
    samples_above: int


def attained_index(attained: float) -> float:
    """The index that orders jobs by attained service alone, least first, in levels of
    powers of two (0, 1, 2-3, 4-7, ...: a multi-level feedback queue, so jobs of one
    level keep their arrival order instead of taking turns call by call): 1 / (1 + the
    level's lower edge). What the Gittins index is without a distribution, and past the
    end of one."""
    if attained < 1:
        return 1.0
    return 1.0 / (1.0 + 2.0 ** math.floor(math.log2(attained)))


def gittins_index(sizes: np.ndarray, attained: float) -> IndexResult:
    """`sizes`: job sizes sorted ascending (a float array). Raises ValueError on a
    negative attained service."""
    if attained < 0:
        raise ValueError(f"attained service must be >= 0, got {attained}")
    start = int(np.searchsorted(sizes, attained, side="right"))
    d = sizes[start:] - attained
    m = d.size
    if m == 0:
        return IndexResult(attained_index(attained), None, 0)
    k = np.arange(1, m + 1, dtype=float)
    ratio = k / (np.cumsum(d) + (m - k) * d)
    return IndexResult(float(ratio.max()), float(d.mean()), m)
