"""Per-program tool resources: what they are, how they are made and unmade.

After ThunderAgent's tool resource manager (Kang et al., "ThunderAgent: A Simple, Fast
and Program-Aware Agentic Inference System", arXiv:2602.13692; github.com/HaoKang-Timmy/
ThunderAgent, "tool-call lifecycle management"): the resources a program's tools need
(a sandbox, a workspace directory, a port) are tracked per program, prepared ahead of
the first call and reclaimed when the program ends, whatever way it ends.

A ``ResourcePool`` is a declaration: a name, a cap (how many may exist at once in one
runner process) and how to ``prepare`` and ``cleanup`` one resource. It holds no live
state, so it pickles with the tools that name it; ``program_resources`` keeps the live
state (slots, leases) per process. A tool names pools per parameter:

    workspaces = WorkspacePool(cap=32)

    @agentrt.tool(executor="subprocess", resources={"workspace": workspaces})
    def run_tests(workspace: str, pattern: str) -> dict: ...

The ``workspace`` parameter is filled by the runtime (it is not in the schema the model
sees), with the same resource for every tool of the program that names the pool.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

POOL_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


class ResourceError(RuntimeError):
    """A resource could not be prepared (or was asked for outside a program)."""


@dataclass(frozen=True, slots=True)
class PrepareContext:
    """What ``prepare`` may know: the program it prepares for, and the values of this
    pool that are in use in this process right now (e.g. ports already handed out)."""

    program_id: str
    in_use: frozenset[Any] = frozenset()


@dataclass(slots=True)
class SweepReport:
    """What a sweep found: resources removed (their owner is gone) and kept (alive)."""

    removed: list[str]
    kept: list[str]


class ResourcePool(ABC):
    """A kind of per-program resource; see the module docstring.

    Contracts: ``prepare`` returns the value handed to the tool; it may be cancelled
    (the program ended first) and must leave nothing behind when it raises or is
    cancelled. ``cleanup`` undoes one prepared value and is called exactly once per
    value, at the end of the program that held it. ``sweep`` removes what crashed
    processes leaked (``None``: nothing to sweep).
    """

    kind: ClassVar[str] = ""

    def __init__(self, name: str, cap: int) -> None:
        if not isinstance(name, str) or not POOL_NAME_PATTERN.match(name):
            raise ValueError(f"resource pool name={name!r} is not valid: use a letter or "
                             "underscore, then up to 63 letters, digits, '_', '.', '-'")
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise ValueError(f"resource pool {name!r}: cap={cap!r} is not valid; cap is "
                             "how many may exist at once, an int >= 1")
        self.name = name
        self.cap = cap

    @abstractmethod
    async def prepare(self, context: PrepareContext) -> Any: ...

    @abstractmethod
    async def cleanup(self, value: Any) -> None: ...

    def workdir(self, value: Any) -> Path | None:
        """The working directory this value gives a sandboxed tool (None: none)."""
        return None

    def sweep(self) -> SweepReport | None:
        return None

    def config(self) -> tuple[Any, ...]:
        """What makes two declarations of one name the same pool."""
        return (type(self).__qualname__, self.name, self.cap)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, cap={self.cap})"


class PortPool(ResourcePool):
    """A TCP port on ``host`` that was free when prepared, distinct from every port the
    pool has handed out in this process. Another process may still take it before the
    tool binds it (the OS cannot reserve a port for later); tools should bind at once."""

    kind: ClassVar[str] = "port"

    def __init__(self, name: str = "port", cap: int = 1024, host: str = "127.0.0.1") -> None:
        super().__init__(name, cap)
        self.host = host

    async def prepare(self, context: PrepareContext) -> int:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((self.host, 0))
                port = sock.getsockname()[1]
            if port not in context.in_use:
                return port
        raise ResourceError(f"pool {self.name!r}: no free port found on {self.host} that "
                            "this process has not handed out already")

    async def cleanup(self, value: Any) -> None:
        return None  # nothing to undo: the port was never held

    def config(self) -> tuple[Any, ...]:
        return (*super().config(), self.host)


class SandboxPool(ResourcePool):
    """A resource made by user functions: ``setup(program_id)`` returns it (a container
    id, a VM handle, a cloned repository) and ``teardown(value)`` disposes of it. Either
    may be sync (run in a thread) or async. A setup cut short by the program's end is
    waited for (at most ``setup_timeout_s``) and its value torn down at once."""

    kind: ClassVar[str] = "sandbox"

    def __init__(self, name: str, setup: Callable[[str], Any],
                 teardown: Callable[[Any], Any] | None = None, cap: int = 16,
                 setup_timeout_s: float = 300.0) -> None:
        super().__init__(name, cap)
        if not callable(setup) or (teardown is not None and not callable(teardown)):
            raise ValueError(f"resource pool {name!r}: setup and teardown must be "
                             f"callables, got setup={setup!r}, teardown={teardown!r}")
        self.setup, self.teardown = setup, teardown
        self.setup_timeout_s = setup_timeout_s

    async def prepare(self, context: PrepareContext) -> Any:
        task = asyncio.ensure_future(_call_either(self.setup, context.program_id))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.setup_timeout_s)
        except TimeoutError:
            task.add_done_callback(self._teardown_late)
            raise ResourceError(f"pool {self.name!r}: setup took longer than "
                                f"setup_timeout_s={self.setup_timeout_s:g}") from None
        except asyncio.CancelledError:
            value = await asyncio.wait_for(task, self.setup_timeout_s)
            await self.cleanup(value)
            raise

    def _teardown_late(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is None:
            asyncio.ensure_future(self.cleanup(task.result()))

    async def cleanup(self, value: Any) -> None:
        if self.teardown is not None:
            await _call_either(self.teardown, value)

    def config(self) -> tuple[Any, ...]:
        names = (getattr(f, "__qualname__", repr(f)) for f in (self.setup, self.teardown))
        return (*super().config(), *names, self.setup_timeout_s)


async def _call_either(fn: Callable[..., Any], *args: Any) -> Any:
    """Await an async function; run a sync one in a thread."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    return await asyncio.to_thread(fn, *args)
