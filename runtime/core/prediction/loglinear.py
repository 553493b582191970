"""Program sizes from a small online regression on log size, with the spread of its
errors: every feature at once, however sparse their combinations.

    log(size) = w . x + e        x: 1, one indicator per (feature, category) seen
                                    (agent included), log2(1 + value) per size feature
                                    (a feature a program lacks adds nothing)
    w: ridge least squares over the last `window` finished programs
    e: their residuals, pooled (the same spread for every program)

A program's size distribution is then exp(w . x + e_i) over the residuals e_i, and the
prediction after `attained` calls is its Gittins index conditioned on size > attained
(`gittins_index`), as for an empirical distribution of sizes. Residuals are those of
the finished programs, in-sample (slightly narrower than the truth); they are kept as
at most `quantiles` quantiles.

**Programs still running** are data too (right-censored: their size exceeds the calls
they have finished). Learning from finished programs alone is biased short while the
first programs run, since the short ones finish first, and long programs wait behind
that bias. So each fit also takes the running programs with `attained` >= 1 calls
done (`running`; at most `window` of them, those furthest along), each at its expected
size given that it passed `attained` under the previous fit, E[size | size >
attained] (a Buckley-James step: Buckley and James, "Linear regression with censored
data", Biometrika 66(3), 1979).

Refits happen when the programs added since the last one reach 1/16 of the programs it
was fitted on (at least one), as the bucket predictor refreshes; predictions in between use the
last fit. Indices are cached per (w . x rounded to `mu_step`, attained) until the next
refit, so a prediction usually costs a dot product and a dict lookup. Before
`min_samples` programs have finished, the attained-service index (cold start).
Deterministic: the same `observe` calls give the same predictions.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from agentrt.runtime.core.prediction.gittins_index import attained_index, gittins_index
from agentrt.runtime.core.prediction.base import Features, Prediction


class ProgramRow:
    """A program's regression inputs: (column name, value) pairs, computed once, and
    their column positions once the predictor has columns for them."""

    __slots__ = ("terms", "cols", "vals", "width")

    def __init__(self, terms: tuple[tuple[str, float], ...]) -> None:
        self.terms = terms
        self.cols = np.empty(0, dtype=np.intp)
        self.vals = np.empty(0)
        self.width = -1  # the weight vector's size when placed (-1: never)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProgramRow) and other.terms == self.terms

    def __hash__(self) -> int:
        return hash(self.terms)

    def __repr__(self) -> str:
        return f"ProgramRow({self.terms!r})"


class LogLinearPredictor:
    """See the module doc. Raises ValueError on bad settings."""

    def __init__(self, min_samples: int = 30, window: int = 2000, ridge: float = 1.0,
                 quantiles: int = 256, mu_step: float = 0.05) -> None:
        if min_samples < 2 or window < min_samples or ridge <= 0 or quantiles < 2 \
                or mu_step <= 0:
            raise ValueError("need min_samples >= 2, window >= min_samples, ridge > 0, "
                             f"quantiles >= 2, mu_step > 0; got {min_samples}, {window}, "
                             f"{ridge}, {quantiles}, {mu_step}")
        self.min_samples, self.window, self.ridge = min_samples, window, ridge
        self.quantiles, self.mu_step = quantiles, mu_step
        self.observed = 0
        self._recent: deque[tuple[ProgramRow, float]] = deque(maxlen=window)
        self._running: dict[str, tuple[ProgramRow, float]] = {}  # program -> attained
        self._columns: dict[str, int] = {"1": 0}
        self._w = np.zeros(1)
        self._residuals = np.empty(0)
        self._pending = 0
        self._fitted = 0  # programs in the last fit
        self._cache: dict[tuple[int, float], float] = {}

    def keys(self, agent: str, features: Features) -> ProgramRow:
        """The program's row (compute once per program)."""
        terms: list[tuple[str, float]] = [("1", 1.0), (f"agent={agent}", 1.0)]
        for name, value in sorted((features or {}).items()):
            if isinstance(value, str):
                terms.append((f"{name}={value}", 1.0))
            else:
                terms.append((name, math.log2(1.0 + max(0.0, float(value)))))
        return ProgramRow(tuple(terms))

    def running(self, program_id: str, row: ProgramRow, attained: float) -> None:
        """The program has finished `attained` calls and goes on (used at the next fit)."""
        self._running[program_id] = (row, attained)

    def observe(self, row: ProgramRow, size: float, program_id: str | None = None) -> None:
        """A program with this row finished after `size` calls (>= 1); `program_id`,
        when it was reported `running`, stops counting as running."""
        if program_id is not None:
            self._running.pop(program_id, None)
        self.observed += 1
        self._recent.append((row, math.log(max(1.0, size))))
        self._pending += 1
        if self._pending >= max(1, self._fitted // 16):
            self._fit()

    def predict(self, row: ProgramRow, attained: float) -> Prediction:
        if self._fitted < self.min_samples:
            return Prediction(attained_index(attained), None, -1, 0)
        mu = self._mu(row)
        key = (round(mu / self.mu_step), attained)
        index = self._cache.get(key)
        if index is None:
            sizes = np.exp(key[0] * self.mu_step + self._residuals)
            index = self._cache[key] = gittins_index(sizes, attained).index
        return Prediction(index, None, 0, self._fitted)

    def _mu(self, row: ProgramRow) -> float:
        if row.width != self._w.size:
            self._place(row)
        return float(self._w[row.cols] @ row.vals)

    def _place(self, row: ProgramRow) -> None:
        """Column positions of the row's terms that have a fitted weight; a term without
        one (a category first seen after the last fit) counts for nothing until then."""
        known = [(self._columns[n], v) for n, v in row.terms
                 if self._columns.get(n, self._w.size) < self._w.size]
        row.cols = np.array([c for c, _ in known], dtype=np.intp)
        row.vals = np.array([v for _, v in known], dtype=float)
        row.width = self._w.size

    def _fit(self) -> None:
        finished = [row for row, _ in self._recent]
        y_done = np.fromiter((v for _, v in self._recent), float, len(self._recent))
        running = sorted(((a, pid) for pid, (_, a) in self._running.items() if a >= 1),
                         reverse=True)[:self.window]
        censored = [self._running[pid][0] for _, pid in running]
        y_cens = self._expected_log_sizes(censored, np.array([a for a, _ in running]))
        rows = finished + censored
        for row in rows:
            for name, _ in row.terms:
                self._columns.setdefault(name, len(self._columns))
        self._w = np.zeros(len(self._columns))  # every term has a column now
        for row in rows:
            if row.width != self._w.size:
                self._place(row)
        X = np.zeros((len(rows), len(self._columns)))
        at = np.repeat(np.arange(len(rows)), [r.cols.size for r in rows])
        X[at, np.concatenate([r.cols for r in rows])] = np.concatenate([r.vals for r in rows])
        y = np.concatenate([y_done, y_cens])
        penalty = self.ridge * np.eye(X.shape[1])
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        self._w = np.linalg.solve(X.T @ X + penalty, X.T @ y)
        n = len(finished)
        residuals = np.sort(y[:n] - X[:n] @ self._w)
        if residuals.size > self.quantiles:
            residuals = np.quantile(residuals, np.linspace(0, 1, self.quantiles))
        self._residuals = residuals
        self._fitted, self._pending = n, 0
        self._cache.clear()

    def _expected_log_sizes(self, rows: list[ProgramRow], attained: np.ndarray
                            ) -> np.ndarray:
        """log E[size | size > attained] per running program under the current fit
        (log(attained + 1) where the fit has no size beyond it, or before any fit)."""
        fallback = np.log(attained + 1.0)
        e = self._residuals
        if not rows or not e.size:
            return fallback
        mu = np.array([self._mu(row) for row in rows])
        # Suffix sums of exp(e) over the sorted residuals: the mean of exp(mu + e) over
        # e > log(attained) - mu in O(log n) per program.
        tail = np.concatenate([np.cumsum(np.exp(e)[::-1])[::-1], [0.0]])
        first = np.searchsorted(e, np.log(attained) - mu, side="right")
        count = e.size - first
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.exp(mu) * tail[first] / count
        return np.where(count > 0, np.log(np.maximum(mean, attained + 1.0)), fallback)
