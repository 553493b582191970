"""ThunderAgent admission in the simulator: a gate in front of the core scheduler.

A program's requests reach the scheduler only while `ThunderAgentAdmission` lets the
program run; the others wait here (the global queue) until a tick resumes it:

    arrive         ─▶ held until a tick admits the program
    next request   ─▶ submitted if the program is not paused, else held
    submitted      ─▶ reasoning (on the worker the router chose)
    turn ends in a tool call ─▶ acting (a program marked to pause pauses now)
    tick (every `interval_s`) ─▶ pause / mark / resume: held requests of resumed
                                  programs are submitted

Ticks are external events for the fused-decode horizon: they can submit work.
"""
from __future__ import annotations

from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.core.retention import ThunderAgentAdmission


class AdmissionGate:
    def __init__(self, admission: ThunderAgentAdmission, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"admission interval must be > 0 s, got {interval_s}")
        self.admission = admission
        self.interval_s = interval_s
        self._held: dict[str, list[LLMRequest]] = {}  # program id -> requests, in order
        self.pauses = 0

    def arrived(self, program_id: str, requests: list[LLMRequest], now: float) -> None:
        tokens = sum(r.prompt_tokens for r in requests)
        self.admission.arrived(program_id, tokens, now)
        self._held[program_id] = list(requests)

    def pending(self, request: LLMRequest, now: float) -> bool:
        """The program's next request is ready: True to submit it now, False if held."""
        pid = request.program_id
        if self.admission.request_pending(pid, now):
            return True
        self._held.setdefault(pid, []).append(request)
        return False

    def submitted(self, request: LLMRequest, worker_id: str, now: float) -> None:
        self.admission.reasoning(request.program_id, request.prompt_tokens, now)
        self.admission.placed(request.program_id, worker_id)

    def acting(self, program_id: str, context_tokens: int, now: float) -> None:
        self.admission.acting(program_id, context_tokens, now)

    def finished(self, program_id: str) -> None:
        self.admission.finished(program_id)
        self._held.pop(program_id, None)

    def tick(self, now: float) -> list[LLMRequest]:
        """Run one admission interval; returns the held requests to submit now."""
        plan = self.admission.tick(now)
        self.pauses += len(plan.pause)
        out: list[LLMRequest] = []
        for program_id, _worker in plan.resume:
            out += self._held.pop(program_id, [])
        return out
