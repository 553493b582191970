"""The journal store's contract, whatever database holds it.

A store is used from one thread at a time (`AsyncJournal` gives each process one
thread for it). Every write method is one transaction that is durable when it returns
(SQLite: WAL with `synchronous=FULL` by default; PostgreSQL: `synchronous_commit=on`,
the server default), so a crash after a write returns never loses it, and a crash
during one loses only that write, never a part of it. Several processes may write one
journal at once (runner actors and the driver): writes of different keys never
conflict, and for the same key the first write wins, except where a method says
otherwise.

Raises: `JournalUnavailableError` when the database cannot be reached or written.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from agentrt.runtime.journal.records import ProgramRecord, ToolKey, ToolRecord


class JournalStore(ABC):
    url: str
    """Where the journal is (no password in it): for messages and summaries."""

    # -- runs ----------------------------------------------------------------------
    @abstractmethod
    def open_run(self, run_id: str, meta: dict[str, Any]) -> dict[str, Any]:
        """Record run `run_id` with `meta` (JSON data) if it is new; return the meta
        its first opening recorded."""

    @abstractmethod
    def run_meta(self, run_id: str) -> dict[str, Any] | None:
        """The meta `open_run` recorded, or None for a run the journal does not know."""

    # -- programs ------------------------------------------------------------------
    @abstractmethod
    def programs(self, run_id: str) -> dict[str, ProgramRecord]:
        """Every program the run journaled, by id."""

    @abstractmethod
    def start_program(self, run_id: str, program_id: str, name: str, inputs: bytes,
                      trace_id: str, span_id: str) -> ProgramRecord:
        """An attempt of the program starts: the first records its inputs and trace
        (the first attempt's trace id and root span id stay); each later one adds one
        to `attempts`. Returns the record after the write."""

    @abstractmethod
    def finish_program(self, run_id: str, program_id: str, status: str, outcome: bytes,
                       final: bool) -> None:
        """The attempt ended with `status`; `outcome` is its ProgramResult (wire
        bytes). The program's start was journaled (`start_program`; the driver does it
        before launching), else nothing is written. With `final`, the program is done and resume never runs it again; a
        later write replaces an earlier one (the last attempt's outcome stands)."""

    # -- steps ---------------------------------------------------------------------
    @abstractmethod
    def steps(self, run_id: str, program_id: str) -> dict[str, bytes]:
        """The packed results of the program's journaled steps, by step id."""

    @abstractmethod
    def record_step(self, run_id: str, program_id: str, step_id: str,
                    result: bytes) -> None:
        """The step's packed result (first write wins)."""

    # -- tool calls ----------------------------------------------------------------
    @abstractmethod
    def tool_calls(self, run_id: str, program_id: str) -> dict[ToolKey, ToolRecord]:
        """Every journaled call of the program, done or only started."""

    @abstractmethod
    def claim_tool(self, run_id: str, key: ToolKey, tool: str,
                   digest: str) -> ToolRecord | None:
        """Write the in-flight marker of a side-effecting call, atomically: None when
        this caller wrote it (the call may run now), else the record already there
        (done, or started by an earlier attempt or a concurrent one)."""

    @abstractmethod
    def record_tool(self, run_id: str, key: ToolKey, tool: str, digest: str,
                    result: bytes) -> None:
        """The call's packed result: marks its marker done, or adds the call done.
        A call already done keeps its first result."""

    @abstractmethod
    def forget_tool(self, run_id: str, key: ToolKey) -> bool:
        """Remove a started-but-not-done marker (the operator checked the effect did
        not happen): the call may run again. False when there was no such marker; a
        done call is never removed."""

    @abstractmethod
    def in_doubt(self, run_id: str) -> list[ToolRecord]:
        """Markers of the run whose calls never recorded a result, in key order."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
