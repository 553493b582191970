"""The programs and sessions the gateway has seen, keyed by (tenant, client's id).

Each program gets an internal id unique for the gateway's life (`gw{n}:{client id}`),
so a client reusing a program id after its end starts a new program, and one tenant's
ids never meet another's. Sessions get `{program id}/s{m}`. The table decides nothing
on its own: the service starts and ends programs and asks it which are idle.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterator

from agentrt.runtime.core.budget import BudgetLedger
from agentrt.runtime.serve.identity import ProgramLimits


@dataclass(slots=True)
class SessionState:
    internal_id: str
    client_id: str
    span: Any = None
    """Its invoke_agent span (open while the session lives)."""
    turns: int = 0
    last_reply_at: float | None = None
    """Wall time its last reply was handed to the client."""
    awaiting_tool: bool = False
    """Its last reply called a tool: the next call's gap is that tool's time."""
    last_worker: str | None = None


@dataclass(slots=True)
class ProgramState:
    internal_id: str
    client_id: str
    tenant: str
    started_at: float
    """Wall time of its first call."""
    limits: ProgramLimits
    ledger: BudgetLedger
    span: Any = None
    """Its invoke_workflow span (the root of its trace)."""
    last_activity: float = 0.0
    inflight: int = 0
    calls: int = 0
    end_requested: str | None = None
    """Why it should end once its calls in flight are done (POST .../end)."""
    sessions: dict[str, SessionState] = field(default_factory=dict)
    _session_ids: Iterator[int] = field(default_factory=itertools.count)

    @property
    def deadline_at(self) -> float | None:
        d = self.limits.deadline_s
        return None if d is None else self.started_at + d

    def past_deadline(self, now: float) -> bool:
        at = self.deadline_at
        return at is not None and now >= at

    def session(self, client_id: str) -> tuple[SessionState, bool]:
        """The session named `client_id` (and whether it is new)."""
        state = self.sessions.get(client_id)
        if state is not None:
            return state, False
        state = SessionState(f"{self.internal_id}/s{next(self._session_ids)}", client_id)
        self.sessions[client_id] = state
        return state, True


class ProgramTable:
    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], ProgramState] = {}
        self._ids = itertools.count()
        self._overdue: dict[tuple[str, str], tuple[float, float]] = {}
        """Programs ended at their deadline: (tenant, client id) -> (deadline_s, kept
        until). A call naming one is refused until then instead of starting a new
        program with a fresh deadline."""

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, tenant: str, client_id: str) -> ProgramState | None:
        return self._by_key.get((tenant, client_id))

    def add(self, tenant: str, client_id: str | None, limits: ProgramLimits,
            ledger: BudgetLedger, now: float) -> ProgramState:
        """A new program (`client_id` None: a one-call program, not kept in the table)."""
        n = next(self._ids)
        name = client_id if client_id is not None else "call"
        program = ProgramState(f"gw{n}:{name}", name, tenant, now, limits, ledger,
                               last_activity=now)
        if client_id is not None:
            self._by_key[(tenant, client_id)] = program
        return program

    def remove(self, program: ProgramState) -> bool:
        """Take `program` out of the table; False if it was not in it (a one-call
        program, or one removed already)."""
        key = (program.tenant, program.client_id)
        if self._by_key.get(key) is program:
            del self._by_key[key]
            return True
        return False

    def mark_overdue(self, tenant: str, client_id: str, deadline_s: float,
                     until: float) -> None:
        """The program `client_id` ended at its deadline: its id is refused until `until`."""
        self._overdue[(tenant, client_id)] = (deadline_s, until)

    def overdue(self, tenant: str, client_id: str, now: float) -> float | None:
        """The deadline (s) of the program `client_id` if it ended at its deadline and
        its id is still refused at `now`; None otherwise."""
        entry = self._overdue.get((tenant, client_id))
        if entry is None:
            return None
        if now >= entry[1]:
            del self._overdue[(tenant, client_id)]
            return None
        return entry[0]

    def forget_overdue(self, now: float) -> None:
        """Drop the refusals that have run out."""
        for key in [k for k, (_, until) in self._overdue.items() if now >= until]:
            del self._overdue[key]

    def programs(self) -> list[ProgramState]:
        return list(self._by_key.values())

    def due(self, now: float, idle_timeout_s: float) -> list[tuple[ProgramState, str]]:
        """Programs to end now, with why: nothing in flight and idle for the timeout
        ("idle"), or past the deadline ("deadline")."""
        out = []
        for program in self._by_key.values():
            if program.inflight:
                continue
            if program.past_deadline(now):
                out.append((program, "deadline"))
            elif now - program.last_activity >= idle_timeout_s:
                out.append((program, "idle"))
        return out
