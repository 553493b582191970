"""A throwaway PostgreSQL server on this machine, for the journal's tests and its
benchmark: `initdb` into a fresh folder, `pg_ctl start` on a free local port, a URL,
and `stop` removes it all.

The server binaries come from the distribution's package (Debian: `apt-get install
postgresql`, which `make postgres` runs when they are missing); they are looked up on
PATH, then in /usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as root, so
as root the commands run as the `postgres` user the package creates (runuser).
Durability settings stay the server's defaults (fsync on, synchronous_commit on): the
figures measured against it are those of a real deployment on this disk.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = "install PostgreSQL's server with `make postgres` (apt-get install postgresql)"


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit()
                        else 0)
    return Path(candidates[-1]).parent if candidates else None


class LocalPostgres:
    """`with LocalPostgres() as url: ...` or `start()` / `stop()`. Raises RuntimeError
    (with the server's log) when it cannot start, FileNotFoundError when PostgreSQL is
    not installed."""

    def __init__(self) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise FileNotFoundError(f"PostgreSQL server binaries not found; {INSTALL_HINT}")
        self.bin_dir = bin_dir
        self.root: Path | None = None
        self.url = ""

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def start(self) -> str:
        self.root = Path(tempfile.mkdtemp(prefix="agentrt-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data, log = self.root / "data", self.root / "server.log"
        port = _free_port()
        # --no-sync only skips syncing initdb's own files (a throwaway cluster); the
        # running server keeps fsync on.
        init = self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust",
                         "-E", "UTF8", "--no-sync")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        start = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(data), "-l", str(log),
                          "-o", f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1")
        if start.returncode != 0:
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {start.stderr.strip()}\n{text}")
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        return self.url

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.root / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.root / "data"))
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
