"""`JournalStore` in SQL that SQLite (3.24+) and PostgreSQL both run.

Subclasses connect and say how a transaction starts; the statements are shared and
written with `?` placeholders (turned into `%s` for psycopg). Upserts use `INSERT ...
ON CONFLICT`, which both databases implement (SQLite: https://sqlite.org/lang_upsert.html,
PostgreSQL: https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT).
"""
from __future__ import annotations

import abc
import contextlib
import json
import time
from typing import Any

from agentrt.runtime.journal.errors import JournalUnavailableError
from agentrt.runtime.journal.records import ProgramRecord, ToolKey, ToolRecord
from agentrt.runtime.journal.store import JournalStore

SCHEMA_VERSION = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS agentrt_journal_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS agentrt_runs (
    run_id TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agentrt_programs (
    run_id TEXT NOT NULL, program_id TEXT NOT NULL, name TEXT NOT NULL,
    inputs {blob} NOT NULL, first_trace_id TEXT, first_span_id TEXT,
    attempts INTEGER NOT NULL, status TEXT, is_final INTEGER NOT NULL DEFAULT 0,
    outcome {blob}, updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, program_id));
CREATE TABLE IF NOT EXISTS agentrt_steps (
    run_id TEXT NOT NULL, program_id TEXT NOT NULL, step_id TEXT NOT NULL,
    result {blob} NOT NULL, recorded_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, program_id, step_id));
CREATE TABLE IF NOT EXISTS agentrt_tool_calls (
    run_id TEXT NOT NULL, program_id TEXT NOT NULL, step_id TEXT NOT NULL,
    turn INTEGER NOT NULL, call_id TEXT NOT NULL, tool TEXT NOT NULL,
    digest TEXT NOT NULL, done INTEGER NOT NULL, result {blob},
    started_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION,
    PRIMARY KEY (run_id, program_id, step_id, turn, call_id))
"""

_PROGRAM_COLUMNS = ("program_id, name, inputs, first_trace_id, first_span_id, attempts, "
                    "status, is_final, outcome")
_TOOL_COLUMNS = "program_id, step_id, turn, call_id, tool, digest, done, result"
_KEY = "run_id = ? AND program_id = ? AND step_id = ? AND turn = ? AND call_id = ?"


class SqlJournalStore(JournalStore):
    """The shared statements. Subclasses set `blob_type` and `placeholder`, open
    `self._conn`, and implement `_transaction` (a cursor inside one write
    transaction) and `_read` (rows of one query)."""

    blob_type = "BLOB"
    placeholder = "?"

    def _sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A cursor inside one write transaction, committed on exit (a context manager)."""

    @abc.abstractmethod
    def _read(self, statement: str, params: tuple = ()) -> list[tuple]:
        """The rows of one read-only query."""

    def _exec(self, cursor: Any, statement: str, params: tuple = ()) -> Any:
        cursor.execute(self._sql(statement), params)
        return cursor

    def _create_schema(self, cursor: Any) -> None:
        for statement in _TABLES.format(blob=self.blob_type).split(";"):
            if statement.strip():
                cursor.execute(statement)
        rows = self._exec(cursor, "SELECT version FROM agentrt_journal_schema").fetchall()
        if not rows:
            self._exec(cursor, "INSERT INTO agentrt_journal_schema VALUES (?)",
                       (SCHEMA_VERSION,))
        elif rows[0][0] != SCHEMA_VERSION:
            raise JournalUnavailableError(
                f"journal {self.url} has schema version {rows[0][0]}; this agentrt reads "
                f"version {SCHEMA_VERSION}. Resume the run with the agentrt that wrote it")

    # -- runs ----------------------------------------------------------------------
    def open_run(self, run_id: str, meta: dict[str, Any]) -> dict[str, Any]:
        with self._transaction() as cur:
            self._exec(cur, "INSERT INTO agentrt_runs VALUES (?, ?, ?) "
                            "ON CONFLICT (run_id) DO NOTHING",
                       (run_id, time.time(), json.dumps(meta, sort_keys=True)))
            row = self._exec(cur, "SELECT meta FROM agentrt_runs WHERE run_id = ?",
                             (run_id,)).fetchone()
        return json.loads(row[0])

    def run_meta(self, run_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT meta FROM agentrt_runs WHERE run_id = ?", (run_id,))
        return json.loads(rows[0][0]) if rows else None

    # -- programs ------------------------------------------------------------------
    def programs(self, run_id: str) -> dict[str, ProgramRecord]:
        rows = self._read(f"SELECT {_PROGRAM_COLUMNS} FROM agentrt_programs "
                          "WHERE run_id = ? ORDER BY program_id", (run_id,))
        return {row[0]: _program(row) for row in rows}

    def start_program(self, run_id: str, program_id: str, name: str, inputs: bytes,
                      trace_id: str, span_id: str) -> ProgramRecord:
        with self._transaction() as cur:
            self._exec(cur, (
                "INSERT INTO agentrt_programs (run_id, program_id, name, inputs, "
                "first_trace_id, first_span_id, attempts, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT (run_id, program_id) DO UPDATE "
                "SET attempts = agentrt_programs.attempts + 1, "
                "updated_at = excluded.updated_at"),
                (run_id, program_id, name, inputs, trace_id, span_id, time.time()))
            row = self._exec(cur, f"SELECT {_PROGRAM_COLUMNS} FROM agentrt_programs "
                                  "WHERE run_id = ? AND program_id = ?",
                             (run_id, program_id)).fetchone()
        return _program(row)

    def finish_program(self, run_id: str, program_id: str, status: str, outcome: bytes,
                       final: bool) -> None:
        with self._transaction() as cur:
            self._exec(cur, "UPDATE agentrt_programs SET status = ?, is_final = ?, "
                            "outcome = ?, updated_at = ? WHERE run_id = ? AND program_id = ?",
                       (status, int(final), outcome, time.time(), run_id, program_id))

    # -- steps ---------------------------------------------------------------------
    def steps(self, run_id: str, program_id: str) -> dict[str, bytes]:
        rows = self._read("SELECT step_id, result FROM agentrt_steps "
                          "WHERE run_id = ? AND program_id = ?", (run_id, program_id))
        return {step: bytes(result) for step, result in rows}

    def record_step(self, run_id: str, program_id: str, step_id: str,
                    result: bytes) -> None:
        with self._transaction() as cur:
            self._exec(cur, "INSERT INTO agentrt_steps VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                            "(run_id, program_id, step_id) DO NOTHING",
                       (run_id, program_id, step_id, result, time.time()))

    # -- tool calls ----------------------------------------------------------------
    def tool_calls(self, run_id: str, program_id: str) -> dict[ToolKey, ToolRecord]:
        rows = self._read(f"SELECT {_TOOL_COLUMNS} FROM agentrt_tool_calls "
                          "WHERE run_id = ? AND program_id = ?", (run_id, program_id))
        records = [_tool(row) for row in rows]
        return {r.key: r for r in records}

    def claim_tool(self, run_id: str, key: ToolKey, tool: str,
                   digest: str) -> ToolRecord | None:
        with self._transaction() as cur:
            inserted = self._exec(cur, (
                "INSERT INTO agentrt_tool_calls (run_id, program_id, step_id, turn, call_id, "
                "tool, digest, done, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) "
                "ON CONFLICT (run_id, program_id, step_id, turn, call_id) DO NOTHING"),
                (run_id, *_key(key), tool, digest, time.time())).rowcount
            if inserted == 1:
                return None
            row = self._exec(cur, f"SELECT {_TOOL_COLUMNS} FROM agentrt_tool_calls "
                                  f"WHERE {_KEY}", (run_id, *_key(key))).fetchone()
        return _tool(row)

    def record_tool(self, run_id: str, key: ToolKey, tool: str, digest: str,
                    result: bytes) -> None:
        now = time.time()
        with self._transaction() as cur:
            self._exec(cur, (
                "INSERT INTO agentrt_tool_calls (run_id, program_id, step_id, turn, call_id, "
                "tool, digest, done, result, started_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?) "
                "ON CONFLICT (run_id, program_id, step_id, turn, call_id) DO UPDATE "
                "SET done = 1, result = excluded.result, finished_at = excluded.finished_at, "
                "tool = excluded.tool, digest = excluded.digest "
                "WHERE agentrt_tool_calls.done = 0"),
                (run_id, *_key(key), tool, digest, result, now, now))

    def forget_tool(self, run_id: str, key: ToolKey) -> bool:
        with self._transaction() as cur:
            deleted = self._exec(cur, f"DELETE FROM agentrt_tool_calls WHERE {_KEY} "
                                      "AND done = 0", (run_id, *_key(key))).rowcount
        return deleted == 1

    def in_doubt(self, run_id: str) -> list[ToolRecord]:
        rows = self._read(f"SELECT {_TOOL_COLUMNS} FROM agentrt_tool_calls "
                          "WHERE run_id = ? AND done = 0", (run_id,))
        return sorted((_tool(row) for row in rows), key=lambda r: r.key)


def _key(key: ToolKey) -> tuple:
    return key.program_id, key.step_id, key.turn, key.call_id


def _program(row: tuple) -> ProgramRecord:
    (program_id, name, inputs, trace_id, span_id, attempts, status, final, outcome) = row
    return ProgramRecord(program_id, name, bytes(inputs), trace_id, span_id, attempts,
                         status, bool(final), bytes(outcome) if outcome is not None else None)


def _tool(row: tuple) -> ToolRecord:
    program_id, step_id, turn, call_id, tool, digest, done, result = row
    return ToolRecord(ToolKey(program_id, step_id, turn, call_id), tool, digest, bool(done),
                      bytes(result) if result is not None else None)
