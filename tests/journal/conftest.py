"""Journal fixtures: a real database per backend. SQLite is a file in the test's folder;
PostgreSQL is a throwaway server started once per test session (runtime.journal.
pg_server: initdb + pg_ctl, about 3 s). Without PostgreSQL installed the postgres cases
skip locally (`make postgres` installs it) and fail on CI, where `make test` installs
it first, so they never go silently missing there."""
from __future__ import annotations

import os
import uuid

import pytest

from agentrt.runtime.journal import sqlite_url
from agentrt.runtime.journal.pg_server import INSTALL_HINT, LocalPostgres, find_bin_dir


@pytest.fixture(scope="session")
def postgres_server():
    if find_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not installed on CI; {INSTALL_HINT}")
        pytest.skip(f"PostgreSQL not installed; {INSTALL_HINT}")
    pytest.importorskip("psycopg", reason="pip install agentrt[postgres]")
    server = LocalPostgres()
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def journal_url(request, tmp_path):
    """A journal URL of each backend (PostgreSQL: one server, shared; tests use their
    own run ids, so they never see each other's rows)."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "journal.sqlite")
    return request.getfixturevalue("postgres_server")


@pytest.fixture
def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"
