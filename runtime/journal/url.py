"""`journal_url`: which journal a run writes, and opening it.

    None (default)                       SQLite in the run's folder: runs/<id>/journal.sqlite
    sqlite:///abs/path/journal.sqlite    that SQLite file (?synchronous=normal: see sqlite_store)
    postgresql://user@host:5432/db       a PostgreSQL database (also postgres://)
    off                                  no journal: nothing can be resumed
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from agentrt.runtime.journal.errors import JournalConfigError
from agentrt.runtime.journal.store import JournalStore

OFF = "off"
_FIX = ("use sqlite:///absolute/path/journal.sqlite, postgresql://user@host:5432/db, "
        "or off (default: SQLite in the run's folder)")


@dataclass(frozen=True, slots=True)
class JournalTarget:
    """A parsed journal URL: `kind` "sqlite" (`path`, `synchronous`) or "postgres" (`url`)."""

    kind: str
    url: str
    path: Path | None = None
    synchronous: str = "full"


def parse_journal_url(url: str) -> JournalTarget:
    """Check a journal URL. Raises JournalConfigError naming the value and the fix."""
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        if not parts.hostname and "host=" not in parts.query:
            raise JournalConfigError(f"journal_url={url!r} names no host; {_FIX}")
        return JournalTarget("postgres", url)
    if parts.scheme == "sqlite":
        path = Path(parts.path)
        if parts.netloc or not path.is_absolute() or parts.path.endswith("/"):
            raise JournalConfigError(f"journal_url={url!r} is not an absolute SQLite file "
                                     f"path (sqlite:// then the path, e.g. "
                                     f"sqlite:///data/journal.sqlite); {_FIX}")
        query = parse_qs(parts.query)
        unknown = sorted(set(query) - {"synchronous"})
        sync = query.get("synchronous", ["full"])[-1].lower()
        if unknown or sync not in ("full", "normal"):
            raise JournalConfigError(f"journal_url={url!r}: the only SQLite option is "
                                     "synchronous=full (default) or synchronous=normal")
        return JournalTarget("sqlite", url, path, sync)
    raise JournalConfigError(f"journal_url={url!r} is not a journal URL; {_FIX}")


def sqlite_url(path: Path) -> str:
    """The journal URL of a SQLite file (made absolute)."""
    return f"sqlite://{Path(path).absolute()}"


def open_store(url: str) -> JournalStore:
    """Open (creating if need be) the journal at `url`. Raises JournalConfigError for a
    bad URL or a missing client library, JournalUnavailableError when it cannot be
    reached."""
    target = parse_journal_url(url)
    if target.kind == "postgres":
        from agentrt.runtime.journal.postgres_store import PostgresJournalStore

        return PostgresJournalStore(target.url)
    from agentrt.runtime.journal.sqlite_store import SqliteJournalStore

    return SqliteJournalStore(target.path, synchronous=target.synchronous)
