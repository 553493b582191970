"""What every size predictor offers the queue policies (`SizePredictor`), and its result.

A predictor learns the distribution of program sizes (in LLM calls) online from the
programs that finish, and answers, for a program with `attained` calls finished, the
Gittins index of its remaining size (`runtime.core.prediction.gittins_index`).

    keys(agent, features) -> K      once per program: whatever the predictor needs of
                                    it (its buckets, its regression row)
    running(pid, K, attained)       the program has finished `attained` calls and goes
                                    on (a predictor may learn from it: its size is more)
    observe(K, size, pid)           the program finished after `size` calls (>= 1)
    predict(K, attained) -> Prediction
    observed                        programs observed so far

`predict` never raises for a program it has no data for: it falls back (coarser data,
or the attained-service index 1 / (1 + attained) on cold start). Predictors are
deterministic: the same calls give the same answers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Protocol

Features = Mapping[str, str | int | float] | None


@dataclass(frozen=True, slots=True)
class Prediction:
    """`index`: the Gittins index of the program's remaining calls (higher runs first);
    `mean_remaining`: expected calls left, when the predictor gives it (None on cold
    start, past every sample, or from a predictor that does not); `level`: the data
    used (-1: cold start; for buckets, the backoff level); `samples`: programs behind
    it."""

    index: float
    mean_remaining: float | None
    level: int
    samples: int


class SizePredictor(Protocol):
    observed: int

    def keys(self, agent: str, features: Features) -> Hashable | Any: ...
    def running(self, program_id: str, keys: Any, attained: float) -> None: ...
    def observe(self, keys: Any, size: float, program_id: str | None = None) -> None: ...
    def predict(self, keys: Any, attained: float) -> Prediction: ...
