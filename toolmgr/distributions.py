"""Small duration distributions the duration model mixes: an exponential prior, a point
mass, and a weighted mixture. Each offers ``cdf(x)``, ``quantile(q)`` and ``mean``
(the same interface as ``EmpiricalCDF``). Pure functions of their parameters; no state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

_BISECT_STEPS = 200
_REL_TOL = 1e-12


class Distribution(Protocol):
    """A distribution of non-negative durations in seconds."""

    @property
    def mean(self) -> float: ...

    def cdf(self, x: float) -> float:
        """P(duration <= x), non-decreasing in ``x``, in [0, 1]."""
        ...

    def quantile(self, q: float) -> float:
        """The smallest ``x`` with ``cdf(x) >= q``, for ``q`` in [0, 1]."""
        ...


def check_probability(q: float) -> None:
    """Raise ``ValueError`` unless ``0 <= q <= 1``."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile level must be within [0, 1], got {q!r}")


@dataclass(frozen=True, slots=True)
class Exponential:
    """The maximum-entropy guess when only a mean duration is known:
    ``cdf(x) = 1 - exp(-x / mean)``."""

    mean: float

    def __post_init__(self) -> None:
        if not self.mean > 0:
            raise ValueError(f"an exponential prior needs a mean > 0, got {self.mean!r}")

    def cdf(self, x: float) -> float:
        return 0.0 if x <= 0 else -math.expm1(-x / self.mean)

    def quantile(self, q: float) -> float:
        check_probability(q)
        return math.inf if q == 1.0 else -self.mean * math.log1p(-q)


@dataclass(frozen=True, slots=True)
class PointMass:
    """All probability at ``value``: what an unseen tool with no prior looks like."""

    value: float = 0.0

    @property
    def mean(self) -> float:
        return self.value

    def cdf(self, x: float) -> float:
        return 1.0 if x >= self.value else 0.0

    def quantile(self, q: float) -> float:
        check_probability(q)
        return self.value


@dataclass(frozen=True, slots=True)
class Mixture:
    """``sum(w * part)`` over ``(w, part)`` pairs; weights must be positive and sum to 1."""

    parts: Sequence[tuple[float, Distribution]]

    def __post_init__(self) -> None:
        total = math.fsum(w for w, _ in self.parts)
        if not self.parts or any(w <= 0 for w, _ in self.parts) or abs(total - 1) > 1e-9:
            raise ValueError(f"mixture weights must be positive and sum to 1, got {total!r}")

    @property
    def mean(self) -> float:
        return math.fsum(w * part.mean for w, part in self.parts)

    def cdf(self, x: float) -> float:
        return min(1.0, math.fsum(w * part.cdf(x) for w, part in self.parts))

    def quantile(self, q: float) -> float:
        """Bisection between the parts' own quantiles, which bracket the mixture's:
        below the smallest every part's cdf is < q, at the largest every part's is >= q."""
        check_probability(q)
        if len(self.parts) == 1:
            return self.parts[0][1].quantile(q)
        bounds = [part.quantile(q) for _, part in self.parts]
        lo, hi = min(bounds), max(bounds)
        if math.isinf(hi):
            return hi
        for _ in range(_BISECT_STEPS):
            if hi - lo <= _REL_TOL * max(1.0, abs(hi)):
                break
            mid = (lo + hi) / 2
            if self.cdf(mid) >= q:
                hi = mid
            else:
                lo = mid
        return hi
