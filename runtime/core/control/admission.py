"""ThunderAgent admission as a gate in front of the scheduler (ttl "thunderagent").

A program's calls reach the scheduler only while `ThunderAgentAdmission` lets the
program run; the others wait here (the global queue) until a tick resumes it:

    first call of a program  ─▶ held until a tick admits the program
    later call               ─▶ submitted if the program is not paused, else held
    submitted                ─▶ reasoning (on the worker the router chose)
    reply calls a tool       ─▶ acting (a program marked to pause pauses now)
    tick (every interval)    ─▶ pause / mark / resume: the held calls of resumed
                                programs are submitted, in the order they came

Everything runs inside the cluster control's single-threaded calls, so a pause and a
dispatch can never interleave (the race ThunderAgent's own implementation has between
its pause path and its dispatch path).
"""
from __future__ import annotations

from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.core.retention import AdmissionPlan, ThunderAgentAdmission


class AdmissionGate:
    def __init__(self, admission: ThunderAgentAdmission, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"admission interval must be > 0 s, got {interval_s}")
        self.admission = admission
        self.interval_s = interval_s
        self._held: dict[str, list[LLMRequest]] = {}  # program id -> calls, in order
        self._known: set[str] = set()
        self.pauses = 0

    def add_worker(self, worker_id: str, capacity_tokens: int) -> None:
        self.admission.add_worker(worker_id, capacity_tokens)

    def offer(self, request: LLMRequest, now: float) -> bool:
        """A call of its program is ready: True to submit it now, False if held."""
        pid = request.program_id
        if pid not in self._known:  # a new program: waits for a tick to place it
            self._known.add(pid)
            self.admission.arrived(pid, request.prompt_tokens, now)
            self._held[pid] = [request]
            return False
        held = self._held.get(pid)
        if held is not None and not self.admission.may_submit(pid):
            held.append(request)  # its program waits for admission still
            return False
        if self.admission.request_pending(pid, now):
            return True
        self._held.setdefault(pid, []).append(request)
        return False

    def submitted(self, request: LLMRequest, worker_id: str, now: float) -> None:
        self.admission.reasoning(request.program_id, request.prompt_tokens, now)
        self.admission.placed(request.program_id, worker_id)

    def acting(self, program_id: str, context_tokens: int, now: float,
               tool: str = "") -> None:
        if program_id in self._known:
            self.admission.acting(program_id, context_tokens, now, tool)

    def forget(self, request_id: str) -> bool:
        """Drop a held call (aborted); True if it was held here."""
        for calls in self._held.values():
            for i, r in enumerate(calls):
                if r.request_id == request_id:
                    del calls[i]
                    return True
        return False

    def drop_held(self, doomed) -> list[LLMRequest]:
        """Take out the held calls `doomed(request)` says can never run (their model's
        workers are gone); returns them in the order they came."""
        out = []
        for pid, calls in self._held.items():
            keep = [r for r in calls if not doomed(r)]
            out += [r for r in calls if doomed(r)]
            self._held[pid] = keep
        return out

    def finished(self, program_id: str) -> None:
        self.admission.finished(program_id)
        self._held.pop(program_id, None)
        self._known.discard(program_id)

    @property
    def tracking(self) -> bool:
        """Whether any program is admitted or waiting (ticks are needed)."""
        return bool(self._known)

    def tick(self, now: float) -> tuple[AdmissionPlan, list[LLMRequest]]:
        """Run one admission interval: the plan, and the held calls to submit now."""
        plan = self.admission.tick(now)
        self.pauses += len(plan.pause)
        out: list[LLMRequest] = []
        for program_id, _worker in plan.resume:
            out += self._held.pop(program_id, [])
        return plan, out
