"""The journal on a PostgreSQL server, for a Ray cluster whose nodes share no disk:
every runner actor, wherever it runs, reaches the server by URL.

Through psycopg 3 (https://www.psycopg.org/psycopg3/docs/), installed with
`pip install agentrt[postgres]`. A write returns once PostgreSQL has committed it, and
with `synchronous_commit=on` (the server default,
https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-SYNCHRONOUS-COMMIT)
a committed transaction is on the server's disk (its WAL is flushed at commit), so it
survives a crash of the server as well as of the writer. The store checks that
setting when it connects and refuses a server where it is off.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from agentrt.runtime.journal.errors import JournalConfigError, JournalUnavailableError
from agentrt.runtime.journal.sql_store import SqlJournalStore

# Any fixed number: the advisory lock that serialises schema creation, since
# CREATE TABLE IF NOT EXISTS from several processes at once can fail on catalog rows.
_SCHEMA_LOCK = 0x61677274


def redact(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresJournalStore(SqlJournalStore):
    blob_type = "BYTEA"
    placeholder = "%s"

    def __init__(self, url: str, connect_timeout_s: float = 10.0) -> None:
        self.url = redact(url)
        try:
            import psycopg
        except ImportError:
            raise JournalConfigError(
                f"journal_url {self.url!r} needs the PostgreSQL client; install it with "
                "`pip install agentrt[postgres]` (psycopg 3)") from None
        self._errors = psycopg.Error
        try:
            # autocommit: no transaction is left open between calls; writes use
            # explicit `conn.transaction()` blocks.
            self._conn = psycopg.connect(url, autocommit=True,
                                         connect_timeout=max(1, int(connect_timeout_s)))
            sync = self._conn.execute("SHOW synchronous_commit").fetchone()[0]
            if sync == "off":
                raise JournalUnavailableError(
                    f"the PostgreSQL server at {self.url} runs with synchronous_commit=off, "
                    "so a committed journal write may be lost in a crash; turn it on for "
                    "the journal's database (ALTER DATABASE ... SET synchronous_commit = on)")
            with self._transaction() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                self._create_schema(cur)
        except psycopg.Error as exc:
            raise JournalUnavailableError(
                f"cannot open the journal at {self.url}: {str(exc).strip()}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                yield cur
        except self._errors as exc:
            raise JournalUnavailableError(
                f"journal {self.url}: write failed: {str(exc).strip()}") from exc

    def _read(self, statement: str, params: tuple = ()) -> list[tuple]:
        try:
            return self._conn.execute(self._sql(statement), params).fetchall()
        except self._errors as exc:
            raise JournalUnavailableError(
                f"journal {self.url}: read failed: {str(exc).strip()}") from exc

    def close(self) -> None:
        self._conn.close()
