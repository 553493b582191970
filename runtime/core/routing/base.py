"""What a router sees and what it must do.

The scheduler keeps a `ClusterView`: its own bookkeeping of each worker's queue and
in-flight calls, the last `EngineStats` each worker reported, where each session's
cache lives (and about how much of it), and a cost model of the workers. Routers read
it; only the scheduler writes it.

    ClusterView
      workers        worker id -> WorkerLoad   (in the order workers joined)
      session_home   session id -> worker id   (where its KV lives, or last served it)
      session_tokens session id -> tokens of KV it left there (its last prompt + reply)
      program_home   program id -> worker id   (where its latest call was placed)
      cost           prefill and KV transfer times (a PerfModel, or FlatCost)
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

from agentrt.runtime.core.messages import EngineStats, LLMRequest


class CostModel(Protocol):
    """The two figures routing needs; `runtime.engines.perf_model.PerfModel` has both."""

    def prefill_time(self, tokens: int, context: int = 0) -> float: ...
    def transfer_time(self, tokens: int, link: str = "nvlink") -> float: ...


@dataclass(frozen=True, slots=True)
class FlatCost:
    """A linear stand-in for a PerfModel (about an 8B model on one H100: 128 KiB of KV
    per token). Drivers pass their PerfModel instead."""

    prefill_tokens_per_s: float = 40_000.0
    kv_bytes_per_token: float = 131_072.0
    link_bytes_per_s: tuple[tuple[str, float], ...] = (
        ("nvlink", 360e9), ("network", 50e9), ("host", 25e9))

    def prefill_time(self, tokens: int, context: int = 0) -> float:
        return tokens / self.prefill_tokens_per_s

    def transfer_time(self, tokens: int, link: str = "nvlink") -> float:
        rates = dict(self.link_bytes_per_s)
        if link not in rates:
            raise ValueError(f"unknown link {link!r}; valid: {sorted(rates)}")
        return tokens * self.kv_bytes_per_token / rates[link]


@dataclass(slots=True)
class WorkerLoad:
    """The scheduler's view of one worker."""

    worker_id: str
    queued: int = 0  # waiting in the scheduler's queue for this worker
    inflight: int = 0  # sent to the engine, not finished
    stats: EngineStats | None = None
    mean_call_s: float = 0.0  # moving average of its calls' execution times

    @property
    def load(self) -> int:
        return self.queued + self.inflight

    @property
    def running(self) -> int:
        return self.stats.running if self.stats is not None else 0

    @property
    def engine_waiting(self) -> int:
        """Calls sent but not yet running, as far as the last stats tell."""
        return max(0, self.inflight - self.running)

    @property
    def waiting(self) -> int:
        """Calls waiting for this worker, here or in its engine."""
        return self.queued + self.engine_waiting

    def expected_wait(self, ahead: int | None = None) -> float:
        """Seconds until a call with `ahead` calls before it (default: all that wait)
        starts: by Little's law, a seat frees every mean_call_s / running seconds.
        0 until the worker has finished a call."""
        ahead = self.waiting if ahead is None else ahead
        return ahead * self.mean_call_s / max(1, self.running)


@dataclass(slots=True)
class ClusterView:
    """Workers in the order they joined, and where each session's cache lives."""

    workers: dict[str, WorkerLoad] = field(default_factory=dict)
    session_home: dict[str, str] = field(default_factory=dict)
    session_tokens: dict[str, int] = field(default_factory=dict)
    program_home: dict[str, str] = field(default_factory=dict)
    cost: CostModel = field(default_factory=FlatCost)

    def least_loaded(self) -> str:
        """The worker with the fewest queued + in-flight calls (first joined on ties)."""
        if not self.workers:
            raise RuntimeError("no workers: add a worker before routing requests")
        return min(self.workers.values(), key=_load).worker_id

    def cached_tokens(self, request: LLMRequest, worker_id: str) -> int:
        """Tokens of the request's prompt `worker_id` likely holds: what its session
        left there, if that is its home."""
        if self.session_home.get(request.session_id) != worker_id:
            return 0
        return min(request.prompt_tokens, self.session_tokens.get(request.session_id, 0))

    def predicted_ttft(self, request: LLMRequest, worker_id: str) -> float:
        """Queueing delay on the worker plus prefill of what it does not hold."""
        cached = self.cached_tokens(request, worker_id)
        prefill = self.cost.prefill_time(request.prompt_tokens - cached, cached)
        return self.workers[worker_id].expected_wait() + prefill


def _load(w: WorkerLoad) -> int:
    return w.queued + w.inflight


class Router(ABC):
    """Picks a worker for a request. `route` must return an id in `view.workers`
    (which is never empty when it is called) and must not mutate the view. The
    membership hooks let routers with their own structures (hash rings) follow the
    cluster; the scheduler calls them before routing anything to or away from it."""

    name = "base"

    @abstractmethod
    def route(self, request: LLMRequest, view: ClusterView) -> str:
        """The worker id the request should run on."""

    def add_worker(self, worker_id: str) -> None:
        """A worker joined."""

    def remove_worker(self, worker_id: str) -> None:
        """A worker left."""

    def forget_session(self, session_id: str) -> None:
        """The session will not call again."""
