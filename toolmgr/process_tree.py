"""Finding and ending a child process together with everything it started.

A sandboxed tool's child runs in a session of its own (``setsid(2)``), so its
descendants share its session id and process group unless they leave them on purpose.
``terminate_tree`` signals the group and every process it can attribute to the tree
(same session, same group, or a descendant by parent pid; Linux ``proc(5)``:
``/proc/<pid>/stat`` fields ``ppid``, ``pgrp``, ``session`` and ``starttime``), SIGTERM
first and SIGKILL after a grace period, re-scanning meanwhile for processes started
during the grace. A process is identified by its pid and start time, so a pid reused by
an unrelated process is never signalled.

Without ``/proc`` (macOS, BSD) only the process group is signalled: a descendant that
called ``setsid`` itself escapes there. A zombie (exited, not yet reaped by its parent)
counts as gone: it runs nothing and holds nothing but its pid.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` this module needs."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    start_ticks: int


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat, or ``None`` if it does not exist (or there is no /proc)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
        return None
    # The command name is in parentheses and may itself hold spaces and parentheses.
    fields = text[text.rindex(")") + 2:].split()
    return ProcStat(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]),
                    int(fields[19]))


def has_proc() -> bool:
    return (PROC / "self" / "stat").exists()


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether process ``pid`` exists and is not a zombie; with ``start_ticks``, also
    whether it is still the process that started then (not a reuse of its pid)."""
    if has_proc():
        stat = read_stat(pid)
        if stat is None or stat.state in ("Z", "X"):
            return False
        return start_ticks is None or stat.start_ticks == start_ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def all_stats() -> list[ProcStat]:
    """Every process visible in /proc (empty without /proc)."""
    stats = []
    for entry in PROC.iterdir() if has_proc() else ():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            stats.append(stat)
    return stats


def tree_members(root: int, known: dict[int, int] | None = None) -> dict[int, int]:
    """pid -> start ticks of the live processes of ``root``'s tree: ``root`` itself,
    its session and process group (both ``root`` for a session leader), and the
    descendants of every member, including those of ``known`` members."""
    stats = [s for s in all_stats() if s.state not in ("Z", "X")]
    members = {s.pid: s.start_ticks for s in stats
               if s.pid == root or s.session == root or s.pgrp == root}
    for pid, ticks in (known or {}).items():
        if any(s.pid == pid and s.start_ticks == ticks for s in stats):
            members[pid] = ticks
    children: dict[int, list[ProcStat]] = {}
    for s in stats:
        children.setdefault(s.ppid, []).append(s)
    stack = list(members)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child.pid not in members:
                members[child.pid] = child.start_ticks
                stack.append(child.pid)
    return members


@dataclass(slots=True)
class TreeKill:
    """What ``terminate_tree`` did: every process it signalled, those still alive at
    the end of the grace (they got SIGKILL), and those alive when it gave up."""

    signalled: set[int] = field(default_factory=set)
    killed: set[int] = field(default_factory=set)
    survivors: set[int] = field(default_factory=set)


def _signal(root: int, members: dict[int, int], sig: signal.Signals, report: TreeKill) -> None:
    """Signal the group and each member still alive; all of those count as signalled
    (the group's signal may end a member before its own signal is sent)."""
    alive = [pid for pid, ticks in members.items()
             if pid_alive(pid, ticks if has_proc() else None)]
    report.signalled.update(alive)
    try:
        os.killpg(root, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in alive:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


async def _wait_gone(root: int, members: dict[int, int], seconds: float,
                     poll_s: float) -> dict[int, int]:
    """Wait up to ``seconds`` for the tree to be gone, following new members; returns
    the members still alive."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        members = tree_members(root, members) if has_proc() else members
        alive = {p: t for p, t in members.items() if pid_alive(p, t if has_proc() else None)}
        if not alive or loop.time() >= end:
            return alive
        await asyncio.sleep(poll_s)


async def terminate_tree(root: int, grace_s: float, kill_wait_s: float = 2.0,
                         poll_s: float = 0.02) -> TreeKill:
    """End ``root`` (a session leader) and its tree: SIGTERM, up to ``grace_s`` for it
    to exit, then SIGKILL to what is left and up to ``kill_wait_s`` for that.
    Bounded: returns after at most ``grace_s + kill_wait_s`` (plus one poll), with
    ``survivors`` naming any process that outlived both (e.g. one in uninterruptible
    sleep). Never raises for processes that are already gone."""
    report = TreeKill()
    members = tree_members(root) if has_proc() else {root: 0}
    _signal(root, members, signal.SIGTERM, report)
    alive = await _wait_gone(root, members, grace_s, poll_s)
    if alive:
        report.killed = set(alive)
        _signal(root, alive, signal.SIGKILL, report)
        alive = await _wait_gone(root, alive, kill_wait_s, poll_s)
    report.survivors = set(alive)
    return report
