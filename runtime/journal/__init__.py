"""The durable journal: what a run did, so that a resumed run re-runs only the rest.

Program inputs and outcomes, each step's result, and each tool call's result under its
idempotency key (program, step, turn, call id), in SQLite (the run's folder, default)
or PostgreSQL (`journal_url`). See docs/journal.md.
"""
from agentrt.runtime.journal.async_journal import AsyncJournal, JournalConnections
from agentrt.runtime.journal.errors import (
    JournalConfigError, JournalDivergenceError, JournalError, JournalUnavailableError,
    ResumeError, ToolInDoubtError,
)
from agentrt.runtime.journal.program_journal import ProgramJournal
from agentrt.runtime.journal.records import ProgramRecord, ToolKey, ToolRecord
from agentrt.runtime.journal.store import JournalStore
from agentrt.runtime.journal.url import OFF, open_store, parse_journal_url, sqlite_url

__all__ = [
    "AsyncJournal", "JournalConfigError", "JournalConnections", "JournalDivergenceError",
    "JournalError", "JournalStore", "JournalUnavailableError", "OFF", "ProgramJournal",
    "ProgramRecord", "ResumeError", "ToolInDoubtError", "ToolKey", "ToolRecord",
    "open_store", "parse_journal_url", "sqlite_url",
]
