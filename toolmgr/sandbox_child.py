"""The child side of the ``subprocess`` executor: ``python -P sandbox_child.py``.

It imports nothing from agentrt (only the standard library), so a sandbox starts in
tens of milliseconds; the parent runs this file by path (``CHILD_PATH``). Protocol:

    stdin   one JSON object: sys_path, target, arguments, limits, network
    stdout  one JSON object: {"ok": true, "value": ...} or
            {"ok": false, "error_type", "error", "traceback"}; both with "network"
    stderr  whatever the tool prints (its stdout is redirected here too)

Order matters: the request is read first, then the network namespace is entered (while
the process is still single-threaded, as ``unshare(CLONE_NEWUSER)`` requires; Linux
man page ``unshare(2)``), then the resource limits are set (``setrlimit(2)``), and only
then is the tool's module imported, so its import runs confined too. The working
directory is set by the parent (the program's workspace).

Targets: ``{"kind": "module", "module", "qualname"}`` imports the module by name;
``{"kind": "main_file", "path", "qualname"}`` runs a script as ``__mp_main__`` (as
``multiprocessing``'s spawn start method does, so the script's ``if __name__ ==
"__main__":`` block does not run again). ``unwrap`` takes ``__wrapped__`` of what it
finds (a ``@tool`` object wraps its function).
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import json
import os
import resource
import runpy
import sys
import traceback
from collections.abc import Callable
from typing import Any

CHILD_PATH = os.path.abspath(__file__)
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000


def libc_unshare(flags: int) -> int:
    """``unshare(2)`` through libc: 0 on success, else the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "unshare"):
        return errno.ENOSYS
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def _map_ids_to_self() -> None:
    """In a new user namespace, map our own uid and gid so files keep their owner
    (``user_namespaces(7)``: setgroups must be denied before gid_map is written)."""
    uid, gid = os.getuid(), os.getgid()
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def isolate_network(unshare: Callable[[int], int] = libc_unshare) -> dict[str, Any]:
    """Enter a new network namespace; ``{"isolated": bool, "detail": str}``.

    ``CLONE_NEWNET`` needs CAP_SYS_ADMIN; without it, an unprivileged user namespace
    (``CLONE_NEWUSER | CLONE_NEWNET``) gives the same isolation where the kernel allows
    those. When neither is permitted, the child runs with the parent's network and
    says why.
    """
    if not sys.platform.startswith("linux"):
        return {"isolated": False, "detail": f"network namespaces are Linux-only; this "
                f"is {sys.platform}, so the tool has the parent's network"}
    first = unshare(CLONE_NEWNET)
    if first == 0:
        return {"isolated": True, "detail": "unshare(CLONE_NEWNET)"}
    second = unshare(CLONE_NEWUSER | CLONE_NEWNET)
    if second == 0:
        try:
            _map_ids_to_self()
        except OSError as exc:
            return {"isolated": True, "detail": "unshare(CLONE_NEWUSER|CLONE_NEWNET); "
                    f"uid/gid map not written ({exc}), so files appear owned by nobody"}
        return {"isolated": True, "detail": "unshare(CLONE_NEWUSER|CLONE_NEWNET)"}
    return {"isolated": False, "detail": (
        f"not permitted: unshare(CLONE_NEWNET): {os.strerror(first)}; "
        f"unshare(CLONE_NEWUSER|CLONE_NEWNET): {os.strerror(second)}; the tool has the "
        "parent's network (grant CAP_SYS_ADMIN or enable unprivileged user namespaces)")}


def apply_limits(limits: dict[str, Any]) -> None:
    """Set soft and hard limits; CPU time gets one extra second of hard limit, so the
    kernel sends SIGXCPU first and SIGKILL a second later (``getrlimit(2)``)."""
    if limits.get("cpu_s") is not None:
        cpu = int(limits["cpu_s"])
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if limits.get("memory_bytes") is not None:
        size = int(limits["memory_bytes"])
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if limits.get("open_files") is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        n = int(limits["open_files"])
        n = n if hard == resource.RLIM_INFINITY else min(n, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def load_target(target: dict[str, Any]) -> Callable[..., Any]:
    if target["kind"] == "module":
        obj: Any = importlib.import_module(target["module"])
        parts = target["qualname"].split(".")
    else:
        namespace = runpy.run_path(target["path"], run_name="__mp_main__")
        first, *parts = target["qualname"].split(".")
        obj = namespace[first]
    for part in parts:
        obj = getattr(obj, part)
    return obj.__wrapped__ if target.get("unwrap") else obj


def run(request: dict[str, Any]) -> Any:
    fn = load_target(request["target"])
    value = fn(**request["arguments"])
    if hasattr(value, "__await__"):
        import asyncio

        async def wait() -> Any:
            return await value

        value = asyncio.run(wait())
    return value


def _failure(exc: BaseException) -> dict[str, Any]:
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    tb = "".join(traceback.format_exception(exc))
    return {"ok": False, "error_type": name, "error": f"{cls.__name__}: {exc}",
            "traceback": tb[-4000:]}


NOT_JSON = "agentrt.toolmgr.NotJSONError"
"""``error_type`` of a value that cannot travel back as JSON."""


def reply_text(request: dict[str, Any], network: dict[str, Any]) -> str:
    """The reply for ``request``: the tool's JSON value or its failure, and ``network``."""
    head = f'{{"network": {json.dumps(network)}, '
    try:
        apply_limits(request["limits"])
        value = run(request)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back as data
        return head + json.dumps(_failure(exc))[1:]
    try:
        value_text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        failure = {"ok": False, "error_type": NOT_JSON, "traceback": "", "error": (
            f"the tool returned a {type(value).__name__}, which cannot travel back from "
            f"its sandbox as JSON ({exc}); return dicts, lists, strings, numbers, "
            "booleans or None")}
        return head + json.dumps(failure)[1:]
    return head + f'"ok": true, "value": {value_text}}}'


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    result_fd = os.dup(1)  # the reply's channel; the tool's prints go to stderr
    os.dup2(2, 1)
    network = ({"isolated": False, "detail": "network allowed by the tool's limits"}
               if request.get("network") else isolate_network())
    sys.path[:0] = [p for p in request["sys_path"] if p not in sys.path]
    text = reply_text(request, network)
    with os.fdopen(result_fd, "w") as out:
        out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
