"""Workspace directories: one per program, removed at its end, swept after a crash.

Each workspace is a directory under the pool's ``root`` whose name carries its owner:

    ws-<pid>-<start ticks>-<random>-<program id>

(pid and start time of the process that made it; start ticks are ``/proc/<pid>/stat``
field 22 on Linux, 0 elsewhere). The name is set by one ``mkdir``, so there is no
moment at which a workspace exists without its owner. A process that dies without
cleaning up (SIGKILL, a crash, a lost node) leaves its workspaces behind; ``sweep``
removes every workspace whose owner is no longer running (the same pid with the same
start time), and leaves the rest alone, whichever process runs it. The runtime sweeps
a root the first time a process uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from agentrt.toolmgr.process_tree import pid_alive, read_stat
from agentrt.toolmgr.resource_pools import PrepareContext, ResourcePool, SweepReport

PREFIX = "ws"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / "agentrt-workspaces"


@dataclass(frozen=True, slots=True)
class Owner:
    """The process a workspace belongs to."""

    pid: int
    start_ticks: int  # 0: unknown (no /proc); only the pid is checked

    @classmethod
    def current(cls) -> Owner:
        return _owner_of_pid(os.getpid())  # keyed by pid: a forked child is another owner

    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_ticks or None)


@functools.lru_cache(maxsize=4)
def _owner_of_pid(pid: int) -> Owner:
    stat = read_stat(pid)
    return Owner(pid, stat.start_ticks if stat is not None else 0)


def remove_tree(path: str | Path) -> None:
    """Remove ``path`` and everything under it, also what a tool made read-only or
    unlistable (permissions are restored, then removal is retried once); a missing
    path is not an error."""
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
        return
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    for top, dirs, _ in os.walk(path):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(top, name), 0o700)
    shutil.rmtree(path, ignore_errors=True)


def workspace_name(owner: Owner, program_id: str) -> str:
    safe = _UNSAFE.sub("_", program_id)[:48] or "program"
    return f"{PREFIX}-{owner.pid}-{owner.start_ticks}-{secrets.token_hex(4)}-{safe}"


def owner_of(name: str) -> Owner | None:
    """The owner encoded in a workspace's name; ``None`` for names this module did not
    make (those are never swept)."""
    parts = name.split("-", 4)
    if len(parts) != 5 or parts[0] != PREFIX or not (parts[1] + parts[2]).isdigit():
        return None
    return Owner(int(parts[1]), int(parts[2]))


def sweep(root: Path) -> SweepReport:
    """Remove the workspaces under ``root`` whose owner process is gone; see the module
    docstring. Entries that are not workspaces are neither removed nor reported."""
    report = SweepReport(removed=[], kept=[])
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return report
    for entry in entries:
        owner = owner_of(entry.name)
        if owner is None:
            continue
        if owner.alive():
            report.kept.append(str(entry))
        else:
            remove_tree(entry)
            report.removed.append(str(entry))
    return report


class WorkspacePool(ResourcePool):
    """A fresh directory per program under ``root`` (default: ``$TMPDIR/agentrt-
    workspaces``), the tool's argument being its path as a ``str``. A ``subprocess``
    tool that has one runs there. ``populate(path)``, if given, fills it when it is
    made (copy a repository, write fixtures); it runs in a thread, and a workspace
    whose populate fails or is cancelled is removed again."""

    kind: ClassVar[str] = "workspace"

    def __init__(self, name: str = "workspace", cap: int = 64, root: str | Path | None = None,
                 populate: Callable[[Path], Any] | None = None) -> None:
        super().__init__(name, cap)
        self.root = Path(root) if root is not None else default_root()
        if populate is not None and not callable(populate):
            raise ValueError(f"workspace pool {name!r}: populate must be a callable taking "
                             f"the workspace's Path, got {populate!r}")
        self.populate = populate

    async def prepare(self, context: PrepareContext) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / workspace_name(Owner.current(), context.program_id)
        path.mkdir()
        if self.populate is None:
            return str(path)
        fill = asyncio.ensure_future(asyncio.to_thread(self.populate, path))
        try:
            await asyncio.shield(fill)
        except BaseException:
            try:  # a thread cannot be stopped: let it finish, then remove what it wrote
                await asyncio.gather(fill, return_exceptions=True)
            finally:
                remove_tree(path)
            raise
        return str(path)

    async def cleanup(self, value: Any) -> None:
        await asyncio.to_thread(remove_tree, value)

    def workdir(self, value: Any) -> Path | None:
        return Path(value)

    def sweep(self) -> SweepReport:
        return sweep(self.root)

    def config(self) -> tuple[Any, ...]:
        return (*super().config(), str(self.root))
