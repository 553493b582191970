"""How a ``subprocess`` tool's function reaches its child: by reference, never by value.

The child is a fresh interpreter (spawned, not forked: the runner has threads, and a
fork of a threaded process may deadlock), so it must find the function by name. Two
forms work, as with ``multiprocessing``'s spawn start method:

* a module-level function of an importable module: ``{"kind": "module"}``, imported
  by name with the parent's ``sys.path``;
* a module-level function of the script this process runs as ``__main__``:
  ``{"kind": "main_file"}``, the script re-run as ``__mp_main__`` (so code under
  ``if __name__ == "__main__":`` does not run again).

Lambdas, nested functions and functions of a ``__main__`` this process does not hold
(an interactive session, or a Ray worker running a driver's script) raise
``SandboxTargetError`` saying what to do. Sending functions by value (cloudpickle)
was rejected: it would load Ray's copy of cloudpickle into every child (seconds of
import per call) and carry closures whose state may not be meant to leave the runner.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class SandboxTargetError(ValueError):
    """A function that a sandboxed child process cannot find by name."""


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """Where the child finds the function: module name or script path, qualified name,
    and whether what it finds is a wrapper (``@tool``) around it."""

    kind: str  # "module" | "main_file"
    location: str
    qualname: str
    unwrap: bool

    def payload(self) -> dict[str, Any]:
        key = "module" if self.kind == "module" else "path"
        return {"kind": self.kind, key: self.location, "qualname": self.qualname,
                "unwrap": self.unwrap}


def check_nameable(fn: Callable[..., Any], tool_name: str) -> None:
    """Raise ``SandboxTargetError`` for a lambda or a nested function: what can be
    judged when the tool is declared (before its module has finished loading)."""
    qualname = getattr(fn, "__qualname__", "")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise SandboxTargetError(
            f"tool {tool_name!r} uses executor='subprocess', but its function "
            f"{qualname!r} is a lambda or a nested function, which a child process "
            "cannot import; define it at the top level of a module")


def _walk(obj: Any, parts: list[str]) -> Any:
    for part in parts:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _matches(found: Any, fn: Callable[..., Any]) -> bool | None:
    """True when ``found`` is a wrapper of ``fn``, False when it is ``fn``; None when
    it is neither."""
    if found is fn:
        return False
    if getattr(found, "__wrapped__", None) is fn:
        return True
    return None


def function_ref(fn: Callable[..., Any], tool_name: str) -> FunctionRef:
    """The reference by which a child finds ``fn``; raises ``SandboxTargetError``."""
    check_nameable(fn, tool_name)
    module_name, qualname = fn.__module__, fn.__qualname__
    module = sys.modules.get(module_name)
    if module_name != "__main__" and module is None:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise SandboxTargetError(
                f"tool {tool_name!r}: module {module_name!r} of its function cannot be "
                f"imported here ({exc}), so a child process could not import it "
                "either") from None
    unwrap = _matches(_walk(module, qualname.split(".")), fn) if module else None
    if unwrap is None:
        where = ("the __main__ of another process (a driver script sent to this worker, "
                 "or an interactive session)" if module_name == "__main__"
                 else f"module {module_name!r}")
        raise SandboxTargetError(
            f"tool {tool_name!r} uses executor='subprocess', but its function "
            f"{qualname!r} is not reachable by that name in {where}; define it at the "
            "top level of a module that the runner can import")
    if module_name != "__main__":
        return FunctionRef("module", module_name, qualname, unwrap)
    path = getattr(module, "__file__", None)
    if path is None:
        raise SandboxTargetError(
            f"tool {tool_name!r}: its function lives in an interactive __main__, which "
            "a child process cannot load; define it in a module file")
    return FunctionRef("main_file", os.path.abspath(path), qualname, unwrap)


def child_sys_path() -> list[str]:
    """This process's ``sys.path`` with relative entries made absolute (the child runs
    in another working directory)."""
    return [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
