"""Queue policies: the order in which waiting calls go to their worker.

A policy is one strategy object per scheduler, shared by every worker's queue: it
keeps whatever program- or tenant-level state its order needs, learns it from the
feedback hooks below, and makes each worker's queue (`new_queue`).

The scheduler calls the hooks in this order for every call:

    on_submit ──▶ (queued) ──▶ on_dispatch ──▶ (in flight) ──▶ on_done
                     ▲                              │
                     └────────── on_requeue ◀───────┘  preempted, or its worker left
    on_forget: the call was aborted, wherever it was
    on_program_end: the program will submit nothing more (forget its state)

Hooks mutate only the policy; they never touch a queue. `on_done` returns the ids of
programs whose queued calls must be re-keyed (the scheduler re-keys them).
`choose_preemption` is asked only when a worker cannot take the head of its queue
(its dispatch window is full); it returns which in-flight call to recall, or None.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.queueing.wait_queue import RequestQueue, WaitQueue


@dataclass(slots=True)
class InFlight:
    """A call sent to a worker and not finished, as a policy sees it."""

    request: LLMRequest
    dispatched_at: float


@dataclass(slots=True)
class PreemptChoice:
    """The in-flight call a policy wants recalled, and why (for logs and tests)."""

    request_id: str
    reason: str


def execution_time(done: RequestDone, dispatched_at: float = 0.0) -> float:
    """Seconds a finished call ran: from its first scheduling (or, when the engine did
    not say, its dispatch) to its end."""
    return max(0.0, done.finished_at - max(done.first_scheduled_at, dispatched_at))


class QueuePolicy(ABC):
    """Base: no state, no preemption; subclasses define `key`."""

    name = "base"
    #: True when `key` changes with time alone (the queue then asks `expires`).
    timed = False

    def new_queue(self) -> RequestQueue:
        """A fresh, empty queue for one worker, ordered by this policy."""
        return WaitQueue(self.key, self.expires if self.timed else None)

    @abstractmethod
    def key(self, request: LLMRequest, now: float) -> tuple:
        """The sort key of a queued request at time `now`; lower runs first."""

    def expires(self, request: LLMRequest, now: float) -> float:
        """When `key(request, now)` stops being valid by the passing of time (inf:
        never). Only asked when `timed` is true."""
        return float("inf")

    # -- feedback hooks (no-ops unless a policy needs them) ----------------------------
    def on_submit(self, request: LLMRequest, now: float) -> None:
        """A call arrived (before it is queued)."""

    def on_dispatch(self, request: LLMRequest, now: float) -> None:
        """A call left its queue for its worker."""

    def on_requeue(self, request: LLMRequest, now: float, ran_s: float) -> None:
        """An in-flight call goes back to a queue after `ran_s` seconds on a worker
        (0 when its worker left: it restarts from scratch)."""

    def on_done(self, done: RequestDone, now: float, dispatched_at: float) -> Sequence[str]:
        """A call finished; returns the programs whose queued calls need new keys."""
        return ()

    def on_forget(self, request: LLMRequest) -> None:
        """A call was aborted (queued or in flight)."""

    def on_program_end(self, program_id: str, now: float) -> None:
        """The program is over; drop what is kept for it. Idempotent."""

    def choose_preemption(self, head: LLMRequest, inflight: Sequence[InFlight],
                          now: float) -> PreemptChoice | None:
        """Which of a worker's in-flight calls to recall so that `head` (the first of
        its queue, which the worker cannot take now) can go; None to wait."""
        return None


class RequestFCFS(QueuePolicy):
    """Baseline (what a plain serving engine does): by the request's own arrival."""

    name = "request_fcfs"

    def key(self, request: LLMRequest, now: float) -> tuple:
        return (request.arrival,)


class ProgramFCFS(QueuePolicy):
    """Continuum's program-level FCFS: a later turn of an older program goes before the
    first turn of a newer one, so programs that started first finish first."""

    name = "program_fcfs"

    def key(self, request: LLMRequest, now: float) -> tuple:
        return (request.program_arrival, request.arrival)
