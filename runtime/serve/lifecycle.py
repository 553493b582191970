"""When the gateway's programs start and end, and what each end does.

    start    the table gets the program, its trace opens, the scheduler hears of it
    end      by the call's header (X-Agentrt-Program-End), by POST /v1/programs/{id}/end
             (at once, or when its calls in flight finish), after the idle timeout, at
             its deadline, when a one-call program's call is done, or when the gateway
             stops: its trace is written and the scheduler's `program_ended` releases
             whatever its sessions still hold on the workers
    overdue  a program ended at its deadline keeps its id refused (504) until
             `idle_timeout_s` passes without a call naming it, so that neither the
             reaper's timing nor a client's retry turns it into a new program
    session  ends with its program, or by X-Agentrt-Session-End on its last call

A reaper task, started with the first call, ends idle and overdue programs.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agentrt.runtime.core.budget import BudgetLedger, Price
from agentrt.runtime.serve import errors, spans
from agentrt.runtime.serve.identity import Identity, ProgramLimits
from agentrt.runtime.serve.metrics import GatewayMetrics
from agentrt.runtime.serve.programs import ProgramState, ProgramTable, SessionState

log = logging.getLogger("agentrt.gateway")


class ProgramLifecycle:
    def __init__(self, backend: Any, traces: spans.ProgramTraces, metrics: GatewayMetrics,
                 prices: dict[str, Price], idle_timeout_s: float) -> None:
        self.backend = backend
        self.table = ProgramTable()
        self.traces = traces
        self.metrics = metrics
        self.prices = prices
        self.idle_timeout_s = idle_timeout_s
        self._reaper: asyncio.Task | None = None

    def find(self, tenant: str, who: Identity) -> ProgramState | None:
        """The running program a call names (None: start one). A program that ended at
        its deadline stays ended: a call naming it within `idle_timeout_s` of its last
        refused call is a 504, not the first call of a new program with a new deadline."""
        if who.anonymous:
            return None
        program = self.table.get(tenant, who.program)
        if program is None:
            now = time.time()
            deadline_s = self.table.overdue(tenant, who.program, now)
            if deadline_s is not None:
                self.table.mark_overdue(tenant, who.program, deadline_s,
                                        now + self.idle_timeout_s)
                raise errors.deadline_exceeded(who.program, deadline_s)
        return program

    async def start(self, tenant: str, who: Identity, limits: ProgramLimits,
                    now: float) -> ProgramState:
        ledger = BudgetLedger(limits.budget_tokens, limits.budget_usd, dict(self.prices))
        program = self.table.add(tenant, who.program, limits, ledger, now)
        spans.open_program(program, (who.program_source, who.session_source))
        self.metrics.programs.inc()
        await self.backend.program_started(program.internal_id)
        return program

    async def after(self, program: ProgramState, session: SessionState,
                    who: Identity) -> None:
        """A call is done: end its session or program if it said so (or was asked)."""
        if who.end_program or program.end_requested:
            await self.end(program, program.end_requested or
                           ("anonymous" if who.anonymous else "header"))
        elif who.end_session:
            program.sessions.pop(session.client_id, None)
            spans.end_session(session, time.time())
            await self.backend.release_session(session.internal_id)

    async def end(self, program: ProgramState, reason: str) -> None:
        if program.span is None:  # already ended
            return
        if self.table.remove(program) and reason == "deadline":
            self.table.mark_overdue(program.tenant, program.client_id,
                                    program.limits.deadline_s or 0.0,
                                    time.time() + self.idle_timeout_s)
        self.traces.end(program, reason, time.time())
        self.metrics.programs.dec()
        self.metrics.ended.labels(reason=reason).inc()
        await self.backend.program_finished(program.internal_id)

    async def end_by_request(self, client_id: str, tenant: str) -> dict[str, Any]:
        """POST /v1/programs/{id}/end: ended now, or once its calls in flight finish."""
        program = self.table.get(tenant, client_id)
        if program is None:
            raise errors.not_found(f"no program {errors.show(client_id)} is running for "
                                   "this API key; it may have ended already (idle timeout, "
                                   "deadline or an end header)")
        if program.inflight:
            program.end_requested = "endpoint"
            return {"id": client_id, "object": "agentrt.program", "status": "ending",
                    "calls_in_flight": program.inflight}
        await self.end(program, "endpoint")
        return {"id": client_id, "object": "agentrt.program", "status": "ended",
                "calls": program.calls, "spent_usd": program.ledger.spent_usd}

    def ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """End idle programs and programs past their deadline, every so often."""
        period = min(5.0, self.idle_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            self.table.forget_overdue(time.time())
            for program, reason in self.table.due(time.time(), self.idle_timeout_s):
                try:
                    await self.end(program, reason)
                except Exception:  # the next round tries the others again
                    log.exception("could not end program %s", program.internal_id)

    async def close(self) -> int:
        """End every program (reason "stopped") and write their traces; returns how
        many were ended."""
        if self._reaper is not None:
            self._reaper.cancel()
        programs = self.table.programs()
        for program in programs:
            await self.end(program, "stopped")
        self.traces.close()
        return len(programs)
