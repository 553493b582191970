"""The planning problem of one program: subtasks, models, options and estimates.

    subtask s  --(model m, k samples)-->  k calls in parallel, each verified
      success  P = 1 - (1 - p[s, m])^k        any sample passes
      cost     sum of the k calls' costs      prompt x input price + output x output price
      time     max of the k calls' times      prefill(prompt) + output x time per token

Options are (model, k) with k in KS, indexed o = m * len(KS) + i. The arrays the planners
read are in `OptionStats` (shape (S, O), subtasks in a deterministic topological order);
they are recomputed after `observe`, which is the only mutation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from agentrt.runtime.core.budget import Price
from agentrt.runtime.core.planner.estimates import (
    LengthEstimate,
    LengthEstimates,
    SuccessEstimates,
    max_of_k_weights,
)

KS: tuple[int, ...] = (1, 2, 4, 8)


class LatencyModel(Protocol):
    """Seconds for one call of a model; pure."""

    def prefill_s(self, prompt_tokens: int) -> float: ...

    def tpot_s(self, context_tokens: int) -> float: ...


@dataclass(frozen=True, slots=True)
class TableLatency:
    """A per-model table: fixed + per-token prefill, constant time per output token."""

    prefill_fixed: float
    prefill_per_token: float
    tpot: float

    def prefill_s(self, prompt_tokens: int) -> float:
        return self.prefill_fixed + prompt_tokens * self.prefill_per_token

    def tpot_s(self, context_tokens: int) -> float:
        return self.tpot


@dataclass(frozen=True, slots=True)
class PerfLatency:
    """Latency from an engine performance model (anything with `prefill_time(tokens)`
    and `decode_tpot(batch, context)`, e.g. runtime.engines.PerfModel) at a typical
    decode batch size."""

    perf: Any
    batch: int = 16

    def prefill_s(self, prompt_tokens: int) -> float:
        return float(self.perf.prefill_time(prompt_tokens))

    def tpot_s(self, context_tokens: int) -> float:
        return float(self.perf.decode_tpot(self.batch, context_tokens))


@dataclass(frozen=True, slots=True)
class ModelCard:
    name: str
    price: Price
    latency: LatencyModel


@dataclass(frozen=True, slots=True)
class Option:
    model: str
    k: int


@dataclass(frozen=True, slots=True)
class SubtaskSpec:
    subtask_id: str
    deps: tuple[str, ...] = ()
    prompt_tokens: int = 1000
    max_tokens: int = 1000
    max_samples: int = 8


@dataclass(frozen=True, slots=True)
class Prior:
    """What the planner is told about one sample of a model on a subtask."""

    p: float
    strength: float = 4.0
    len_median: float = 300.0
    len_sigma: float = 0.5
    len_weight: float = 4.0
    len_median_sigma: float = 0.0
    """How far off (log scale, one standard deviation) the told median may be."""


@dataclass(frozen=True, slots=True)
class OptionStats:
    """Per (subtask, option) figures from the current estimates, all (S, O)."""

    p_success: np.ndarray  # 1 - (1 - mean p)^k
    exp_cost: np.ndarray  # USD, k x expected call cost
    worst_cost: np.ndarray  # USD, k calls at max_tokens: what a ledger reserves
    exp_time: np.ndarray  # seconds, prefill + E[max of k lengths] x time per token
    valid: np.ndarray  # k <= the subtask's max_samples


class PlanningProblem:
    """Subtasks (topological order), model cards, options and online estimates."""

    def __init__(self, subtasks: Sequence[SubtaskSpec], cards: Sequence[ModelCard],
                 priors: Mapping[tuple[str, str], Prior], ks: Sequence[int] = KS) -> None:
        self.subtasks = _topological(subtasks)
        self.ids = [s.subtask_id for s in self.subtasks]
        self.index = {sid: i for i, sid in enumerate(self.ids)}
        self.deps = [tuple(self.index[d] for d in s.deps) for s in self.subtasks]
        self.cards = list(cards)
        self.models = [c.name for c in self.cards]
        self.model_index = {m: i for i, m in enumerate(self.models)}
        self.ks = np.asarray(ks, dtype=int)
        missing = [(s, m) for s in self.ids for m in self.models if (s, m) not in priors]
        if missing:
            raise ValueError(f"no prior for (subtask, model) pairs {missing[:4]}; give one "
                             "per pair")
        self._arrays(priors)
        self._stats: OptionStats | None = None

    def _arrays(self, priors: Mapping[tuple[str, str], Prior]) -> None:
        subs, cards = self.subtasks, self.cards
        self.prompt = np.array([s.prompt_tokens for s in subs], dtype=float)
        self.max_tokens = np.array([s.max_tokens for s in subs], dtype=float)
        self.max_samples = np.array([s.max_samples for s in subs], dtype=int)
        self.price_in = np.array([c.price.input_per_m for c in cards]) / 1e6
        self.price_out = np.array([c.price.output_per_m for c in cards]) / 1e6
        self.prefill = np.array([[c.latency.prefill_s(s.prompt_tokens) for c in cards]
                                 for s in subs])
        self.tpot = np.array([[c.latency.tpot_s(s.prompt_tokens + s.max_tokens // 2)
                               for c in cards] for s in subs])
        table = [[priors[s.subtask_id, c.name] for c in cards] for s in subs]
        self.success = SuccessEstimates(np.array([[p.p for p in row] for row in table]),
                                        np.array([[p.strength for p in row] for row in table]))
        self.lengths = LengthEstimates([[LengthEstimate(p.len_median, p.len_sigma,
                                                        p.len_weight, s.max_tokens,
                                                        p.len_median_sigma)
                                         for p in row] for s, row in zip(subs, table)])
        self.opt_model = np.repeat(np.arange(len(cards)), len(self.ks))
        self.opt_k = np.tile(self.ks, len(cards))
        self._max_weights = max_of_k_weights(self.opt_k)  # (O, Q)

    # -- options ---------------------------------------------------------------------

    @property
    def num_options(self) -> int:
        return len(self.opt_k)

    def option(self, o: int) -> Option:
        return Option(self.models[self.opt_model[o]], int(self.opt_k[o]))

    def option_index(self, option: Option) -> int:
        if option.model not in self.model_index or option.k not in self.ks:
            raise ValueError(f"unknown option {option}; models {self.models}, k in "
                             f"{self.ks.tolist()}")
        return int(self.model_index[option.model] * len(self.ks)
                   + np.flatnonzero(self.ks == option.k)[0])

    def call_worst_usd(self, s: int, m: int) -> float:
        """Cost of one call at max_tokens: what a ledger reserves before dispatch."""
        return float(self.prompt[s] * self.price_in[m] + self.max_tokens[s] * self.price_out[m])

    def stats(self) -> OptionStats:
        """Option figures from the current estimates; valid until the next `observe`."""
        if self._stats is None:
            self._stats = self._compute_stats()
        return self._stats

    def _compute_stats(self) -> OptionStats:
        m, k = self.opt_model, self.opt_k
        p = self.success.mean()[:, m]
        table = self.lengths.table[:, m, :]  # (S, O, Q)
        mean_len = table.mean(axis=2)
        max_len = (table * self._max_weights[None]).sum(axis=2)
        prompt_cost = self.prompt[:, None] * self.price_in[m]
        call = prompt_cost + mean_len * self.price_out[m]
        worst = prompt_cost + self.max_tokens[:, None] * self.price_out[m]
        return OptionStats(
            p_success=1.0 - (1.0 - p) ** k,
            exp_cost=k * call,
            worst_cost=k * worst,
            exp_time=self.prefill[:, m] + max_len * self.tpot[:, m],
            valid=k[None, :] <= self.max_samples[:, None],
        )

    # -- observations ----------------------------------------------------------------

    def observe(self, subtask_id: str, model: str, successes: int, failures: int,
                lengths: Sequence[int]) -> None:
        """Record verified samples: Beta update and new empirical lengths."""
        s, m = self.index[subtask_id], self.model_index[model]
        self.success.update(s, m, successes, failures)
        if lengths:
            self.lengths.update(s, m, list(lengths))
        self._stats = None


def _topological(subtasks: Sequence[SubtaskSpec]) -> list[SubtaskSpec]:
    """Dependencies first, otherwise listed order. Raises ValueError on unknown
    dependencies or a cycle."""
    known = {s.subtask_id for s in subtasks}
    unknown = sorted({d for s in subtasks for d in s.deps} - known)
    if unknown:
        raise ValueError(f"subtasks depend on unknown subtasks {unknown}")
    placed: dict[str, SubtaskSpec] = {}
    left = list(subtasks)
    while left:
        ready = next((s for s in left if all(d in placed for d in s.deps)), None)
        if ready is None:
            raise ValueError(f"subtasks {[s.subtask_id for s in left]} form a cycle")
        placed[ready.subtask_id] = ready
        left.remove(ready)
    return list(placed.values())
