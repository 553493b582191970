"""The embedded journal: one SQLite file in the run's folder (`runs/<run id>/journal.sqlite`).

Why these settings (https://sqlite.org/wal.html, https://sqlite.org/pragma.html):

- `journal_mode=WAL`: readers never block the writer and the writer never blocks
  readers, so runner actors and the driver share the file; a transaction is in the
  file once its commit record is in the WAL, and a crash mid-write leaves the last
  committed state (the torn tail of the WAL is ignored on the next open).
- `synchronous=FULL` (default): the WAL is fsynced at every commit, so a committed write
  survives a power loss or an OS crash, not only the death of the process. `NORMAL`
  (`?synchronous=normal` in the URL) syncs only at checkpoints: still safe against a
  killed process, but the last commits may roll back after a power loss.
- `busy_timeout` (the connection's `timeout`): several processes write one file; a
  writer waits for the lock instead of failing with SQLITE_BUSY. Writes start with
  `BEGIN IMMEDIATE`, which takes the write lock first, so two writers never deadlock
  upgrading a read lock.

WAL needs every process on the same machine (its index is shared memory; it does not
work over a network file system), which is why a multi-node Ray cluster journals to
PostgreSQL instead.
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from agentrt.runtime.journal.errors import JournalUnavailableError
from agentrt.runtime.journal.sql_store import SqlJournalStore

Synchronous = Literal["full", "normal"]


class SqliteJournalStore(SqlJournalStore):
    def __init__(self, path: str | Path, synchronous: Synchronous = "full",
                 busy_timeout_s: float = 60.0) -> None:
        path = Path(path)
        self.url = f"sqlite://{path}"
        if not path.parent.is_dir():
            raise JournalUnavailableError(
                f"journal folder {str(path.parent)!r} does not exist on this machine; a "
                "SQLite journal must be on a disk every process of the run reaches (on a "
                "multi-node Ray cluster, set journal_url to a PostgreSQL URL)")
        try:
            # isolation_level=None: no implicit transactions; each write is one explicit
            # BEGIN IMMEDIATE ... COMMIT. check_same_thread=False: the store is confined
            # to one thread by its owner (AsyncJournal), which need not be its creator.
            self._conn = sqlite3.connect(str(path), timeout=busy_timeout_s,
                                         isolation_level=None, check_same_thread=False)
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise JournalUnavailableError(
                    f"SQLite refused WAL mode for {path} (got {mode!r}); put the journal on "
                    "a local file system")
            self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            with self._transaction() as cur:
                self._create_schema(cur)
        except sqlite3.Error as exc:
            raise JournalUnavailableError(f"cannot open the journal {self.url}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            yield cur
            cur.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(cur)
            raise JournalUnavailableError(f"journal {self.url}: write failed: {exc}") from exc
        except BaseException:
            self._rollback(cur)
            raise
        finally:
            cur.close()

    @staticmethod
    def _rollback(cur: sqlite3.Cursor) -> None:
        with contextlib.suppress(sqlite3.Error):
            cur.execute("ROLLBACK")

    def _read(self, statement: str, params: tuple = ()) -> list[tuple]:
        try:
            return self._conn.execute(statement, params).fetchall()
        except sqlite3.Error as exc:
            raise JournalUnavailableError(f"journal {self.url}: read failed: {exc}") from exc

    def close(self) -> None:
        self._conn.close()
