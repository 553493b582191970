"""Finding a run's processes: a driver and the local Ray instance it started."""
from __future__ import annotations

from pathlib import Path


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of the processes whose environment sets `name` to `value`: a driver and the
    local Ray it started (Ray's processes inherit the driver's environment)."""
    mark = f"{name}={value}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return found
