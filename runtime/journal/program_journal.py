"""One attempt of one program, as the journal sees it: what earlier attempts left
(step results, tool calls), loaded once when the attempt starts, and what this attempt
adds (its steps' results, its outcome).

Contract:
- `replayed_step(step_id)` answers from what was loaded: a step journaled by an earlier
  attempt is not executed again; its result feeds its successors.
- `record_step` journals a step's result once the step returned. A result that is not
  plain data (`codec.NotJournalable`) is not journaled: that step runs again on resume.
- `finish` journals the attempt's outcome; `final=False` (the attempt ended on a call in
  doubt) leaves the program to be run again by the next resume.
- Journal errors (`JournalUnavailableError`) from `record_step` fail the step that
  returned the result; from `finish`, they are reported on the result
  (`journal_error`), since the program itself ended.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentrt.runtime import wire
from agentrt.runtime.journal import codec
from agentrt.runtime.journal.async_journal import AsyncJournal
from agentrt.runtime.journal.errors import JournalError
from agentrt.runtime.journal.records import ToolKey, ToolRecord

_MISSING = object()


@dataclass(slots=True)
class ProgramJournal:
    journal: AsyncJournal
    run_id: str
    program_id: str
    attempt: int
    steps: dict[str, bytes] = field(default_factory=dict)
    """Packed step results of earlier attempts."""
    calls: dict[ToolKey, ToolRecord] = field(default_factory=dict)
    """Tool calls of earlier attempts, done or only started."""
    steps_replayed: list[str] = field(default_factory=list)
    tool_calls_replayed: int = 0
    steps_not_journaled: list[str] = field(default_factory=list)

    @classmethod
    async def load(cls, journal: AsyncJournal, run_id: str, program_id: str,
                   attempt: int) -> ProgramJournal:
        """What earlier attempts journaled (nothing is read on a first attempt)."""
        if attempt <= 1:
            return cls(journal, run_id, program_id, attempt)
        steps = await journal.call("steps", run_id, program_id)
        calls = await journal.call("tool_calls", run_id, program_id)
        return cls(journal, run_id, program_id, attempt, steps, calls)

    def replayed_step(self, step_id: str) -> tuple[bool, Any]:
        """(True, result) for a step an earlier attempt journaled, else (False, None)."""
        packed = self.steps.get(step_id, _MISSING)
        if packed is _MISSING:
            return False, None
        self.steps_replayed.append(step_id)
        return True, codec.unpack(packed)

    async def record_step(self, step_id: str, result: Any) -> None:
        try:
            packed = codec.pack(result)
        except codec.NotJournalable:
            self.steps_not_journaled.append(step_id)
            return
        await self.journal.call("record_step", self.run_id, self.program_id, step_id, packed)

    async def finish(self, result: Any, final: bool) -> str | None:
        """Journal the attempt's ProgramResult (without its spans); the error text when
        the journal could not take it, else None."""
        spans, result.spans = result.spans, []
        try:
            await self.journal.call("finish_program", self.run_id, self.program_id,
                                    result.status, wire.encode(result), final)
        except JournalError as exc:
            return f"the journal did not record this program's outcome: {exc}"
        finally:
            result.spans = spans
        return None
