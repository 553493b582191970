"""What the journal raises. Every message names the run, the key or the setting at
fault and says what to do about it."""
from __future__ import annotations

import shlex

from agentrt.runtime.journal.records import ToolKey


class JournalError(Exception):
    """Base class of the journal's errors."""


class JournalConfigError(JournalError, ValueError):
    """A journal URL that names no journal this runtime can open (bad scheme, relative
    SQLite path, a PostgreSQL URL without the `psycopg` client installed)."""


class JournalUnavailableError(JournalError):
    """The journal could not be opened or written (database server unreachable, SQLite
    file on a folder this machine cannot reach, disk full)."""


class ResumeError(JournalError, ValueError):
    """A resume that cannot go ahead: no such run in the journal, or inputs that differ
    from those the run journaled."""


class ToolInDoubtError(JournalError):
    """A side-effecting tool call that may have run, but whose result was never
    recorded (the process died between running it and recording it). Running it again
    could repeat its effect, so the step fails instead; the operator decides."""

    def __init__(self, run_id: str, key: ToolKey, tool: str) -> None:
        forget = shlex.join(["agentrt", "journal", "forget", run_id, key.program_id,
                             key.step_id, str(key.turn), key.call_id])
        super().__init__(
            f"tool {tool!r} (side_effects=True) may already have run for call {key} of run "
            f"{run_id!r}: its start was journaled but its result never was (a crash between "
            f"the two). It is not run again, as that could repeat its effect. Check whether "
            f"the effect happened; to let the call run again on the next --resume, clear "
            f"its marker with `{forget}`; a tool that is safe to repeat can be declared "
            f"@tool(side_effects=True, idempotent=True)")
        self.run_id, self.key, self.tool = run_id, key, tool


class JournalDivergenceError(JournalError):
    """A side-effecting call whose key was journaled with another tool or other
    arguments: the step did not do on resume what it did before (it is not
    deterministic), so the journaled result does not answer this call."""

    def __init__(self, run_id: str, key: ToolKey, journaled: str, asked: str) -> None:
        super().__init__(
            f"call {key} of run {run_id!r} was journaled as {journaled}, but the resumed "
            f"step now asks for {asked}: the step is not deterministic, so the journaled "
            f"result cannot stand in and the side-effecting tool is not run a second time "
            f"under the same key. Give such calls ids that name what they do (the call's "
            f"`id`), or make the step's choices depend only on its inputs and replies")
        self.run_id, self.key = run_id, key
