"""ThunderAgent-style admission: orchestration-level retention for engines we cannot
modify (ALGORITHMS.md section 1). It never pins; it decides which PROGRAMS may use each
worker, so that what they keep cached fits.

Per program: context tokens, phase (reasoning: an LLM call is on the GPU or queued for
it; acting: in a tool), worker, paused or not. Every interval, per worker:

    load = reasoning tokens + sum(acting tokens x f(t)) + 100 x programs,  f(t) = 2^-t
           (t: seconds acting; without the decay it thrashes)
    load > capacity:  pause acting programs, smallest first, until it fits; then mark
                      reasoning ones, smallest first, to pause when their turn ends

A paused program's next request waits in a global queue (`may_submit` is False). Resume
in priority order (paused with a pending request, then new programs, then paused acting
ones), each group smallest first, admitting while the total fits the cluster's room;
place the admitted ones largest first, on their origin worker when it has room (a
resume elsewhere re-prefills everything), else on the worker with most room.

The driver reports events (`arrived`, `reasoning`, `acting`, `request_pending`,
`finished`), calls `tick(now)` every interval, and applies the `AdmissionPlan`. The
`thunderagent` TTL policy carries one of these as `.admission` and drops every pin.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from agentrt.runtime.core.retention.decision import PinDecision, PinRequest
from agentrt.runtime.core.retention.ttl import TTLPolicy, register_ttl_policy
from agentrt.toolmgr.durations import DurationModel

Phase = Literal["new", "reasoning", "acting"]


@dataclass(slots=True)
class _Program:
    program_id: str
    tokens: int
    phase: Phase = "new"
    worker: str | None = None
    since: float = 0.0  # when the current phase began
    paused: bool = False
    pause_after_turn: bool = False
    pending: bool = False  # its next request is ready and waits
    tool: str = ""  # the tool it waits on while acting


@dataclass(frozen=True, slots=True)
class AdmissionPlan:
    """What `tick` decided: programs paused now (their KV may go), reasoning programs
    to pause when their turn ends, and (program, worker) admissions in placement order."""

    pause: tuple[str, ...] = ()
    pause_after_turn: tuple[str, ...] = ()
    resume: tuple[tuple[str, str], ...] = ()


class ThunderAgentAdmission:
    """See the module doc. O(programs log programs) per tick."""

    def __init__(self, per_program_tokens: int = 100, decay_base: float = 2.0) -> None:
        self.per_program_tokens = per_program_tokens
        self.decay_base = decay_base
        self._capacity: dict[str, int] = {}
        self._programs: dict[str, _Program] = {}

    def add_worker(self, worker_id: str, capacity_tokens: int) -> None:
        self._capacity[worker_id] = capacity_tokens

    def remove_worker(self, worker_id: str) -> None:
        """The worker is gone: its programs are placed anew at the next tick."""
        self._capacity.pop(worker_id, None)
        for p in self._programs.values():
            if p.worker == worker_id:
                p.worker = None

    # -- events --------------------------------------------------------------------

    def arrived(self, program_id: str, context_tokens: int, now: float) -> None:
        """A new program waits for admission (`tick` places it)."""
        self._programs[program_id] = _Program(program_id, context_tokens, since=now,
                                              paused=True, pending=True)

    def reasoning(self, program_id: str, context_tokens: int, now: float) -> None:
        """An LLM call of the (admitted) program runs or is queued on its worker."""
        p = self._programs[program_id]
        p.tokens, p.phase, p.since, p.pending = context_tokens, "reasoning", now, False

    def acting(self, program_id: str, context_tokens: int, now: float,
               tool: str = "") -> None:
        """Its turn ended in a call to `tool`; a program marked to pause pauses now."""
        p = self._programs[program_id]
        p.tokens, p.phase, p.since, p.tool = context_tokens, "acting", now, tool
        if p.pause_after_turn:
            p.paused, p.pause_after_turn = True, False

    def request_pending(self, program_id: str, now: float) -> bool:
        """Its next request is ready; True if it may be submitted now (not paused)."""
        p = self._programs[program_id]
        p.pending = True
        return not p.paused

    def placed(self, program_id: str, worker_id: str) -> None:
        """The program's calls run on `worker_id` (the router's choice may differ from
        the plan's): its load counts there from now on."""
        p = self._programs.get(program_id)
        if p is not None:
            p.worker = worker_id

    def finished(self, program_id: str) -> None:
        self._programs.pop(program_id, None)

    def may_submit(self, program_id: str) -> bool:
        p = self._programs.get(program_id)
        return p is not None and not p.paused

    def worker_of(self, program_id: str) -> str | None:
        p = self._programs.get(program_id)
        return p.worker if p is not None else None

    # -- the interval ----------------------------------------------------------------

    def load(self, worker_id: str, now: float) -> float:
        return sum(self._weight(p, now) for p in self._active(worker_id))

    def tick(self, now: float) -> AdmissionPlan:
        pause: list[str] = []
        later: list[str] = []
        for worker in sorted(self._capacity):
            over = self.load(worker, now) - self._capacity[worker]
            active = self._active(worker)
            for p in _smallest_first(q for q in active if q.phase == "acting"):
                if over <= 0:
                    break
                over -= self._weight(p, now)
                p.paused = True
                pause.append(p.program_id)
            for p in _smallest_first(q for q in active if q.phase == "reasoning"):
                if over <= 0:
                    break
                if not p.pause_after_turn:
                    p.pause_after_turn = True
                    later.append(p.program_id)
                over -= self._weight(p, now)
        return AdmissionPlan(tuple(pause), tuple(later), self._resume(now))

    def _resume(self, now: float) -> tuple[tuple[str, str], ...]:
        room = {w: self._capacity[w] - self.load(w, now) for w in sorted(self._capacity)}
        waiting = [p for p in self._programs.values() if p.paused]
        groups = (
            [p for p in waiting if p.pending and p.phase != "new"],
            [p for p in waiting if p.phase == "new"],
            [p for p in waiting if not p.pending and p.phase != "new"],
        )
        total, chosen = sum(max(0.0, r) for r in room.values()), []
        for group in groups:
            for p in _smallest_first(group):
                need = p.tokens + self.per_program_tokens
                if need > total:
                    break
                total -= need
                chosen.append(p)
        placed: list[tuple[str, str]] = []
        for p in sorted(chosen, key=lambda q: (-q.tokens, q.program_id)):
            need = p.tokens + self.per_program_tokens
            worker = self._place(p, room, need, now)
            if worker is None or room[worker] < need:
                continue
            room[worker] -= need
            p.worker, p.paused = worker, False
            placed.append((p.program_id, worker))
        return tuple(placed)

    def _place(self, p: _Program, room: dict[str, float], need: float,
               now: float) -> str | None:
        """Where a resumed program goes: its origin worker when it has room (resuming
        elsewhere prefills everything again), else the worker with most room."""
        if p.worker in room and room[p.worker] >= need:
            return p.worker
        return _most_room(room)

    def _active(self, worker_id: str) -> list[_Program]:
        return [p for p in self._programs.values() if p.worker == worker_id and not p.paused]

    def _weight(self, p: _Program, now: float) -> float:
        tokens = p.tokens
        if p.phase == "acting":
            tokens *= self.decay_base ** -max(0.0, now - p.since)
        return tokens + self.per_program_tokens


def _smallest_first(programs: Iterable[_Program]) -> list[_Program]:
    return sorted(programs, key=lambda p: (p.tokens, p.program_id))


def _most_room(room: dict[str, float]) -> str | None:
    """The worker with most room; the first in `room`'s (sorted) order on ties."""
    best = None
    for worker, r in room.items():
        if best is None or r > room[best]:
            best = worker
    return best


@register_ttl_policy("thunderagent")
class ThunderAgentTTL(TTLPolicy):
    """No engine pins: retention is `admission`'s job (see the module doc), which the
    driver feeds and ticks. Every decision drops."""

    def __init__(self, per_program_tokens: int = 100, decay_base: float = 2.0) -> None:
        self.admission = ThunderAgentAdmission(per_program_tokens, decay_base)

    def decide(self, request: PinRequest, durations: DurationModel) -> PinDecision:
        return PinDecision.drop(request.now, "orchestration-level: admission, no pins")
