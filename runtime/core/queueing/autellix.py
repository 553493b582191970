"""Autellix's program-level least-attained-service policies: PLAS and ATLAS.

Both order calls by what their program has already received, discretised into K FIFO
levels (a multi-level feedback queue); programs that have received little go first,
so short programs are not stuck behind long ones.

    attained:   0 ──── first ──── first*r ──── first*r^2 ── ... ── first*r^(K-2) ────▶
    level:        0         1             2                            K-1
    key(call) = (level, call arrival)            FIFO within a level

- PLAS (single-threaded programs): attained = the program's service, the summed
  execution time of its finished calls; a finished call re-keys its program's queued
  calls.
- ATLAS (DAG programs): attained = the critical-path service seen when the call
  arrived: the call snapshots h = program.max_path; when it finishes,
  program.max_path = max(program.max_path, h + its execution time). After a 2 s call
  and then parallel calls of 3 s and 1 s, ATLAS has 5 s and PLAS 6 s.

Anti-starvation: a queued call whose waiting time (since its arrival, or since its last
recall) reaches beta x attained goes to level 0 (`expires` tells the queue when).
Demotion: an in-flight call whose run pushes
attained + run past its level's upper bound has used its quantum; when the worker
cannot take the head of its queue and that head ranks before the demoted call, the
call is recalled (`choose_preemption`) and queued again at its demoted level.
"""
from __future__ import annotations

import bisect
import math
from abc import abstractmethod
from typing import Sequence

from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.queueing.policy import (
    InFlight, PreemptChoice, QueuePolicy, execution_time,
)


class LevelBins:
    """K levels of attained service: level 0 is [0, first), level i (1 <= i <= K-2) is
    [first*ratio^(i-1), first*ratio^i), level K-1 everything beyond."""

    __slots__ = ("bounds",)

    def __init__(self, first: float = 1.0, ratio: float = 2.0, levels: int = 8) -> None:
        if first <= 0 or ratio <= 1 or levels < 2:
            raise ValueError(f"need first > 0, ratio > 1, levels >= 2; got first={first}, "
                             f"ratio={ratio}, levels={levels}")
        self.bounds = [first * ratio**i for i in range(levels - 1)]

    def level(self, attained: float) -> int:
        return bisect.bisect_right(self.bounds, attained)


class _Autellix(QueuePolicy):
    timed = True

    def __init__(self, first_s: float = 1.0, ratio: float = 2.0, levels: int = 8,
                 beta: float = 8.0) -> None:
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.bins = LevelBins(first_s, ratio, levels)
        self.beta = beta
        self._programs: dict[str, float] = {}  # program id -> service (PLAS) / max path
        self._bonus: dict[str, float] = {}  # request id -> run time before a demotion
        self._since: dict[str, float] = {}  # request id -> when it was recalled

    def attained_service(self, program_id: str) -> float:
        """The program's attained service under this policy (0 for an unknown one)."""
        return self._programs.get(program_id, 0.0)

    @abstractmethod
    def _attained(self, request: LLMRequest) -> float:
        """The attained service a call is ranked by (before any demotion)."""

    def _charged(self, request: LLMRequest) -> float:
        return self._attained(request) + self._bonus.get(request.request_id, 0.0)

    def key(self, request: LLMRequest, now: float) -> tuple:
        attained = self._charged(request)
        level = self.bins.level(attained)
        if level and now >= self._promotion_at(request, attained):
            level = 0  # starved long enough: promoted to the top
        return (level, request.arrival)

    def expires(self, request: LLMRequest, now: float) -> float:
        attained = self._charged(request)
        due = self._promotion_at(request, attained)
        return due if self.bins.level(attained) and due > now else math.inf

    def _promotion_at(self, request: LLMRequest, attained: float) -> float:
        # Waiting counts from the call's arrival, or from its recall: a recalled call
        # is not promoted straight back over the call it was recalled for.
        since = self._since.get(request.request_id, request.arrival)
        return since + self.beta * attained

    def on_submit(self, request: LLMRequest, now: float) -> None:
        self._programs.setdefault(request.program_id, 0.0)

    def on_requeue(self, request: LLMRequest, now: float, ran_s: float) -> None:
        if ran_s > 0:
            rid = request.request_id
            self._bonus[rid] = self._bonus.get(rid, 0.0) + ran_s
            self._since[rid] = now

    def on_forget(self, request: LLMRequest) -> None:
        self._forget(request.request_id)

    def _forget(self, request_id: str) -> None:
        self._bonus.pop(request_id, None)
        self._since.pop(request_id, None)

    def on_program_end(self, program_id: str, now: float) -> None:
        self._programs.pop(program_id, None)

    def choose_preemption(self, head: LLMRequest, inflight: Sequence[InFlight],
                          now: float) -> PreemptChoice | None:
        best: tuple | None = None
        for f in inflight:
            request = f.request
            demoted = (self.bins.level(self._charged(request) + now - f.dispatched_at),
                       request.arrival)
            if demoted[0] > request.priority[0] and head.priority < demoted:
                rank = (demoted, f.dispatched_at)
                if best is None or rank > best[0]:
                    best = (rank, request.request_id)
        return None if best is None else PreemptChoice(best[1], "quantum_exhausted")


class PLAS(_Autellix):
    """Program-level attained service (single-threaded programs)."""

    name = "plas"

    def _attained(self, request: LLMRequest) -> float:
        return self._programs.get(request.program_id, 0.0)

    def on_done(self, done: RequestDone, now: float, dispatched_at: float) -> Sequence[str]:
        self._forget(done.request_id)
        if done.program_id not in self._programs:
            return ()
        self._programs[done.program_id] += execution_time(done, dispatched_at)
        return (done.program_id,)


class ATLAS(_Autellix):
    """Attained service along the critical path (DAG programs)."""

    name = "atlas"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._snapshot: dict[str, float] = {}  # request id -> h at its arrival

    def _attained(self, request: LLMRequest) -> float:
        return self._snapshot.get(request.request_id, 0.0)

    def on_submit(self, request: LLMRequest, now: float) -> None:
        self._snapshot[request.request_id] = self._programs.setdefault(
            request.program_id, 0.0)

    def on_done(self, done: RequestDone, now: float, dispatched_at: float) -> Sequence[str]:
        self._forget(done.request_id)
        h = self._snapshot.pop(done.request_id, 0.0)
        if done.program_id in self._programs:
            path = h + execution_time(done, dispatched_at)
            self._programs[done.program_id] = max(self._programs[done.program_id], path)
        return ()  # queued calls keep the snapshot they arrived with

    def on_forget(self, request: LLMRequest) -> None:
        super().on_forget(request)
        self._snapshot.pop(request.request_id, None)
