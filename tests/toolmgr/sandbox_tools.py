"""Functions the subprocess-executor tests run in sandboxed children.

Kept free of agentrt imports, so a child starts without importing agentrt (as the
docs advise for sandboxed tools)."""
from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time


def echo(text: str, number: int = 0) -> dict:
    print("this line goes to stderr, not into the reply")
    return {"text": text, "number": number, "cwd": os.getcwd(), "pid": os.getpid(),
            "tmpdir": os.environ.get("TMPDIR")}


async def async_echo(text: str) -> str:
    import asyncio

    await asyncio.sleep(0)
    return text.upper()


def fail(message: str) -> None:
    raise KeyError(message)


def spawn_and_hang(pid_file: str, seconds: float = 3600.0) -> None:
    """Start a grandchild (and a great-grandchild under it), record their pids, hang."""
    script = ("import subprocess, sys, time; "
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)']); "
              "print(p.pid, flush=True); time.sleep(3600)")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    grandchild = child.stdout.readline().strip()
    with open(pid_file, "w") as f:
        f.write(f"{os.getpid()} {child.pid} {grandchild}")
    time.sleep(seconds)


def ignore_sigterm_and_hang(pid_file: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(3600)


def leave_daemon(pid_file: str) -> str:
    """Return at once, leaving a background process behind."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    with open(pid_file, "w") as f:
        f.write(str(p.pid))
    return "returned"


def burn_cpu() -> None:
    while True:
        pass


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))


def open_many(n: int) -> int:
    files = [open(os.devnull) for _ in range(n)]
    return len(files)


def limits() -> dict:
    return {"cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
            "as": resource.getrlimit(resource.RLIMIT_AS)[0],
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


def connect(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return "connected"


def write_file(workspace: str, name: str, text: str) -> dict:
    with open(name, "w") as f:  # relative: lands in the working directory
        f.write(text)
    return {"cwd": os.getcwd(), "files": sorted(os.listdir(workspace))}


def returns_set() -> object:
    return {1, 2}


def crash() -> None:
    sys.stderr.write("about to crash\n")
    sys.stderr.flush()
    os._exit(3)


def assigned_resources() -> dict:
    import ray

    return {"pid": os.getpid(),
            "resources": ray.get_runtime_context().get_assigned_resources()}


def sleep_and_record(pid_file: str, seconds: float) -> None:
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)


def escape_on_sigterm(pid_file: str) -> None:
    """On SIGTERM, start a process in a session of its own (out of the tool's process
    group), record its pid, and keep hanging."""
    def on_term(signum, frame):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"],
                             start_new_session=True)
        with open(pid_file + ".late", "w") as f:
            f.write(str(p.pid))

    signal.signal(signal.SIGTERM, on_term)
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(3600)
    time.sleep(3600)  # the handler interrupts the first sleep
