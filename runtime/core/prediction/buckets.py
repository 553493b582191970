"""Program sizes as empirical distributions per bucket of features, with backoff.

Service is counted in **LLM calls**: the same in both drivers, known from a trace
exactly (for an oracle), observable without engine timing, and what a program's
completion time grows with (each call brings a pause and a turn in some queue).

Each finished program adds its size (calls) to the empirical distribution of every
bucket it falls in: one bucket per backoff level, a level being a tuple of feature
names. A prediction for a program with `attained` calls finished uses the finest level
whose bucket has at least `min_samples` programs, `min_tail` of them longer than
`attained` (so the conditional distribution it reads is not a handful of points):

    level 0  agent, task_kind, repo_tokens, prompt_tokens      (sizes binned by
    level 1  agent, task_kind                                    powers of two)
    level 2  agent
    level 3  (every program)
    cold     fewer than `min_samples` programs finished at all: the attained-service
             index 1 / (1 + attained), i.e. least-attained-service order

A feature a program lacks is its own bin ("-"), so programs without features share
buckets and, with none of them predictive, the prediction is the distribution of all
programs of their agent conditioned on what they have done (still better informed than
attained order alone). Buckets keep the last `window` sizes. A bucket's sorted snapshot
is rebuilt when the sizes added since its last rebuild reach 1/16 of it (at least one),
and the index at each attained count is cached until then: a prediction costs a dict
lookup, a rebuild O(window log window), an index O(samples above attained).

Nothing here reads a clock or a global random state; the same `observe` calls give the
same predictions.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Sequence

import numpy as np

from agentrt.runtime.core.prediction.base import Features, Prediction
from agentrt.runtime.core.prediction.gittins_index import (
    IndexResult, attained_index, gittins_index,
)

DEFAULT_LEVELS: tuple[tuple[str, ...], ...] = (
    ("agent", "task_kind", "repo_tokens", "prompt_tokens"),
    ("agent", "task_kind"),
    ("agent",),
    (),
)
MISSING = "-"


class _Bucket:
    """The last `window` sizes of one bucket, a sorted snapshot, cached indices."""

    __slots__ = ("recent", "snapshot", "pending", "cache")

    def __init__(self, window: int) -> None:
        self.recent: deque[float] = deque(maxlen=window)
        self.snapshot = np.empty(0)
        self.pending = 0
        self.cache: dict[float, IndexResult] = {}

    def add(self, size: float) -> None:
        self.recent.append(size)
        self.pending += 1
        if self.pending >= max(1, self.snapshot.size // 16):
            self.snapshot = np.sort(np.fromiter(self.recent, float, len(self.recent)))
            self.pending = 0
            self.cache.clear()

    def index(self, attained: float) -> IndexResult:
        found = self.cache.get(attained)
        if found is None:
            found = self.cache[attained] = gittins_index(self.snapshot, attained)
        return found

    def above(self, attained: float) -> int:
        snap = self.snapshot
        return snap.size - int(np.searchsorted(snap, attained, side="right"))


class BucketPredictor:
    """See the module doc. Raises ValueError on bad settings."""

    def __init__(self, levels: Sequence[Sequence[str]] = DEFAULT_LEVELS,
                 min_samples: int = 30, min_tail: int = 8, window: int = 2000) -> None:
        if min_samples < 1 or min_tail < 1 or window < min_samples:
            raise ValueError(f"need min_samples >= 1, min_tail >= 1, window >= min_samples;"
                             f" got {min_samples}, {min_tail}, {window}")
        if not levels or tuple(levels[-1]):
            raise ValueError("the last level must be () (every program), so that a "
                             f"prediction always has a bucket to fall back on; got {levels}")
        self.levels = tuple(tuple(level) for level in levels)
        self.min_samples, self.min_tail, self.window = min_samples, min_tail, window
        self._buckets: list[dict[tuple, _Bucket]] = [{} for _ in self.levels]
        self.observed = 0

    def keys(self, agent: str, features: Features) -> tuple[tuple, ...]:
        """The program's bucket at each level (compute once per program)."""
        values = {"agent": agent, **(features or {})}
        return tuple(tuple(_bin(values.get(name, MISSING)) for name in level)
                     for level in self.levels)

    def running(self, program_id: str, keys: tuple[tuple, ...], attained: float) -> None:
        """Running programs are not used: buckets learn from finished programs only."""

    def observe(self, keys: tuple[tuple, ...], size: float, program_id: str | None = None
                ) -> None:
        """A program with these `keys` finished after `size` calls."""
        self.observed += 1
        for buckets, key in zip(self._buckets, keys):
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = _Bucket(self.window)
            bucket.add(float(size))

    def predict(self, keys: tuple[tuple, ...], attained: float) -> Prediction:
        """The program's remaining service after `attained` calls (see the module doc)."""
        last = len(self.levels) - 1
        for level, (buckets, key) in enumerate(zip(self._buckets, keys)):
            bucket = buckets.get(key)
            if bucket is None or bucket.snapshot.size < self.min_samples:
                continue
            if level < last and bucket.above(attained) < self.min_tail:
                continue  # too few programs this long here: ask a coarser level
            found = bucket.index(attained)
            return Prediction(found.index, found.mean_remaining, level,
                              int(bucket.snapshot.size))
        return Prediction(attained_index(attained), None, -1, 0)


def _bin(value: str | int | float) -> str | int:
    """Categories as they are; sizes by power of two (0 and below: bin -1)."""
    if isinstance(value, str):
        return value
    return int(math.floor(math.log2(value))) if value > 0 else -1
