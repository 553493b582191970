"""Per-tool duration models: how long will a call to this tool take?

TTL policies ask ``survival(tool, x)`` (will the tool still be running after x seconds?)
and planners ask ``quantile`` and ``mean``. Estimates come from observed durations once
a tool has enough of them and from priors before that:

    observed samples  n >= min_samples        -> the tool's empirical CDF  ("observed")
    0 < n < min_samples                        -> w * empirical + (1 - w) * fallback,
                                                  w = n / min_samples       ("blended")
    n == 0                                      -> fallback

    fallback = Exponential(prior mean)  if the tool has a prior            ("prior")
             = global empirical CDF     else, if any tool has samples      ("global")
             = point mass at 0.0        else                               ("none")

The global CDF holds the most recent samples of all tools together. Everything is
deterministic: the same ``record`` calls give the same answers.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Literal

from agentrt.toolmgr.distributions import Distribution, Exponential, Mixture, PointMass, check_probability

DurationSource = Literal["observed", "blended", "prior", "global", "none"]


class EmpiricalCDF:
    """The empirical distribution of the most recent ``max_samples`` samples.

    ``add`` is O(n) (insertion into a sorted list), queries are O(log n). When full, the
    oldest sample is forgotten, so the CDF follows drift. Queries on an empty CDF raise
    ``ValueError``, except ``mean`` and ``count``, which are 0.
    """

    __slots__ = ("_max", "_recent", "_sorted", "_sum")

    def __init__(self, max_samples: int = 10_000) -> None:
        if max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples!r}")
        self._max = max_samples
        self._recent: deque[float] = deque()
        self._sorted: list[float] = []
        self._sum = 0.0

    def add(self, x: float) -> None:
        """Record one sample (a finite number); forgets the oldest when full."""
        if not math.isfinite(x):
            raise ValueError(f"a duration sample must be finite, got {x!r}")
        if len(self._recent) == self._max:
            oldest = self._recent.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
            self._sum -= oldest
        self._recent.append(x)
        bisect.insort(self._sorted, x)
        self._sum += x

    @property
    def count(self) -> int:
        return len(self._sorted)

    @property
    def mean(self) -> float:
        return self._sum / len(self._sorted) if self._sorted else 0.0

    @property
    def sorted_samples(self) -> Sequence[float]:
        """The samples kept, ascending: a read-only view owned by this CDF (do not
        mutate it or keep it past the next ``add``)."""
        return self._sorted

    def cdf(self, x: float) -> float:
        """Fraction of samples <= ``x``."""
        self._require_samples()
        return bisect.bisect_right(self._sorted, x) / len(self._sorted)

    def survival(self, x: float) -> float:
        """Fraction of samples > ``x``."""
        return 1.0 - self.cdf(x)

    def quantile(self, q: float) -> float:
        """The smallest sample ``s`` with ``cdf(s) >= q`` (``q = 0`` gives the minimum)."""
        check_probability(q)
        self._require_samples()
        n = len(self._sorted)
        rank = math.ceil(q * n - 1e-9)  # tolerance: 0.7 * 10 is 7.000000000000001
        return self._sorted[min(max(rank, 1), n) - 1]

    def _require_samples(self) -> None:
        if not self._sorted:
            raise ValueError("empirical CDF has no samples yet; add() some first")


class DurationModel:
    """Duration estimates for every tool; see the module docstring for which source
    answers when. ``record`` mutates; the query methods do not."""

    def __init__(
        self,
        priors: Mapping[str, float] | None = None,
        min_samples: int = 100,
        max_samples: int = 10_000,
    ) -> None:
        if min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {min_samples!r}")
        if max_samples < min_samples:
            raise ValueError(
                f"max_samples ({max_samples}) must be >= min_samples ({min_samples}), "
                "or no tool could ever reach the observed regime"
            )
        self.min_samples = min_samples
        self._max_samples = max_samples
        self._priors: dict[str, Exponential] = {}
        self._observed: dict[str, EmpiricalCDF] = {}
        self._global = EmpiricalCDF(max_samples)
        for tool, mean_s in (priors or {}).items():
            self.set_prior(tool, mean_s)

    def set_prior(self, tool: str, mean_s: float) -> None:
        """Use an exponential distribution with this mean until ``tool`` has data."""
        self._priors[tool] = Exponential(mean_s)

    def record(self, tool: str, seconds: float) -> None:
        """Add one observed duration (>= 0) for ``tool`` and to the global CDF."""
        if not seconds >= 0:
            raise ValueError(f"a duration must be >= 0 seconds, got {seconds!r} for {tool!r}")
        observed = self._observed.get(tool)
        if observed is None:
            observed = self._observed[tool] = EmpiricalCDF(self._max_samples)
        observed.add(seconds)
        self._global.add(seconds)

    def source(self, tool: str) -> DurationSource:
        """Which source answers queries about ``tool`` right now."""
        n = self.count(tool)
        if n >= self.min_samples:
            return "observed"
        if n > 0:
            return "blended"
        if tool in self._priors:
            return "prior"
        return "global" if self._global.count else "none"

    def distribution(self, tool: str) -> Distribution:
        """The distribution the query methods read (a snapshot only until the next
        ``record``)."""
        n = self.count(tool)
        if n >= self.min_samples:
            return self._observed[tool]
        fallback = self._fallback(tool)
        if n == 0:
            return fallback
        w = n / self.min_samples
        return Mixture(((w, self._observed[tool]), (1.0 - w, fallback)))

    def _fallback(self, tool: str) -> Distribution:
        prior = self._priors.get(tool)
        if prior is not None:
            return prior
        return self._global if self._global.count else PointMass(0.0)

    def cdf(self, tool: str, x: float) -> float:
        """P(a call to ``tool`` takes <= ``x`` seconds)."""
        return self.distribution(tool).cdf(x)

    def survival(self, tool: str, x: float) -> float:
        """P(a call to ``tool`` takes > ``x`` seconds)."""
        return 1.0 - self.distribution(tool).cdf(x)

    def quantile(self, tool: str, q: float) -> float:
        """Seconds within which a fraction ``q`` of calls finish (may be ``inf`` for
        ``q == 1`` under a prior)."""
        return self.distribution(tool).quantile(q)

    def mean(self, tool: str) -> float:
        """Expected seconds: observed mean, blend, prior mean, global mean, or 0.0."""
        return self.distribution(tool).mean

    def empirical(self, tool: str) -> EmpiricalCDF | None:
        """The tool's observed durations only (no prior, no blend); None when unseen.
        Read-only: record through ``record``."""
        return self._observed.get(tool)

    def global_empirical(self) -> EmpiricalCDF:
        """The most recent durations of all tools together. Read-only."""
        return self._global

    def count(self, tool: str) -> int:
        """Observed samples kept for ``tool`` (at most ``max_samples``)."""
        observed = self._observed.get(tool)
        return observed.count if observed is not None else 0

    def tools(self) -> list[str]:
        """Tools with a prior or observations, sorted by name."""
        return sorted(self._priors.keys() | self._observed.keys())
