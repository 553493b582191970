"""A journal store for asyncio code: every call runs on one thread of the store's own.

A runner actor runs many programs on one event loop; a journal write waits for an
fsync (SQLite) or a round trip (PostgreSQL), which must not stall every other program.
So the store lives on a single worker thread: its connection is used by that thread
only, writes from one process reach the database in the order they were made, and
the loop only awaits them.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentrt.runtime.journal.store import JournalStore
from agentrt.runtime.journal.url import open_store


class AsyncJournal:
    """`await journal.call("record_step", run_id, ...)` runs `JournalStore.record_step`
    on the journal's thread. The store is opened there on the first call (errors of
    `open_store` surface from that call). A call whose awaiting task is cancelled still
    completes on the thread: a write, once asked for, is never half done."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentrt-journal")
        self._store: JournalStore | None = None

    async def call(self, method: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._invoke, method, args)

    def _invoke(self, method: str, args: tuple) -> Any:
        if self._store is None:
            self._store = open_store(self.url)
        return getattr(self._store, method)(*args)

    def close(self) -> None:
        """Finish the calls already asked for, then close the store."""
        def close_store() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        self._pool.submit(close_store)
        self._pool.shutdown(wait=True)


class JournalConnections:
    """One process's journals, opened once per URL and kept for the process's life (a
    runner actor runs every program of a run against the same journal)."""

    def __init__(self) -> None:
        self._open: dict[str, AsyncJournal] = {}

    def get(self, url: str) -> AsyncJournal:
        journal = self._open.get(url)
        if journal is None:
            journal = self._open[url] = AsyncJournal(url)
        return journal

    def close(self) -> None:
        for journal in self._open.values():
            journal.close()
        self._open.clear()
