"""The live side of resource pools: slots, each program's leases, cleanup at its end.

    open(program, tools)   start preparing one lease per pool the tools name: each
                           waits for a free slot of its pool (the pool's cap), then
                           runs the pool's prepare, while the program goes on (its
                           first LLM call queues and runs meanwhile)
    leases(tool)           a call waits for the leases its tool needs (resource wait)
    close(program)         cancel what is still preparing, clean up what is ready,
                           give the slots back: at the program's end, failure or abort

One ``ResourceManager`` per process and event loop. Pools are known by name: the first
declaration of a name seen by the process is used for every later one (a program's
pools arrive pickled, each program with its own copy); a different declaration under a
taken name raises ``ValueError``. A pool's leaked resources are swept the first time
the process sees the pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agentrt.toolmgr.registry import RegisteredTool
from agentrt.toolmgr.resource_pools import PrepareContext, ResourceError, ResourcePool

log = logging.getLogger("agentrt.toolmgr")


@dataclass(slots=True)
class Lease:
    """One prepared resource of one program, with the times (manager clock) at which
    it was asked for, got its pool slot, and was ready."""

    pool: ResourcePool
    value: Any
    requested_at: float
    granted_at: float
    ready_at: float

    @property
    def prepare_s(self) -> float:
        return self.ready_at - self.granted_at

    @property
    def slot_wait_s(self) -> float:
        return self.granted_at - self.requested_at


class LivePool:
    """A pool's state in this process: its free slots and the values leased out."""

    def __init__(self, pool: ResourcePool) -> None:
        self.pool = pool
        self.slots = asyncio.Semaphore(pool.cap)
        self.in_use: set[Any] = set()
        self.prepared = 0

    @property
    def leased(self) -> int:
        return len(self.in_use)


@dataclass(slots=True)
class CloseReport:
    """What closing a program did: leases cleaned up, preparations cancelled, and the
    cleanups that failed (pool name and error)."""

    cleaned: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


class ProgramResources:
    """One program's leases; made by ``ResourceManager.open``."""

    def __init__(self, program_id: str, manager: ResourceManager) -> None:
        self.program_id = program_id
        self._manager = manager
        self._tasks: dict[str, asyncio.Task[Lease]] = {}
        self.closed = False

    def start(self, pools: Iterable[ResourcePool]) -> None:
        """Start preparing a lease of each pool not yet started for this program."""
        for pool in pools:
            live = self._manager.live(pool)  # raises for a name clash
            if pool.name not in self._tasks and not self.closed:
                self._tasks[pool.name] = asyncio.ensure_future(self._prepare(live))

    async def _prepare(self, live: LivePool) -> Lease:
        clock = self._manager.clock
        requested = clock()
        async with _Slot(live.slots) as slot:
            granted = clock()
            context = PrepareContext(self.program_id, frozenset(live.in_use))
            value = await live.pool.prepare(context)
            live.in_use.add(value)
            live.prepared += 1
            slot.keep()  # held until the lease is cleaned up
        lease = Lease(live.pool, value, requested, granted, clock())
        self._manager.prepared(lease)
        return lease

    async def ready(self) -> None:
        """Wait until every started preparation has ended (failures are kept for the
        calls that need them, not raised here)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    async def leases(self, tool: RegisteredTool) -> dict[str, Lease]:
        """The leases ``tool`` needs, by its parameter names; starts any not started.
        Raises ``ResourceError`` when a preparation failed or the program is over."""
        if self.closed:
            raise ResourceError(f"program {self.program_id!r} is over; its resources "
                                "are gone")
        self.start(tool.resources.values())
        found = {}
        for param, pool in tool.resources.items():
            task = self._tasks[pool.name]
            try:
                found[param] = await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.cancelled():
                    raise ResourceError(f"the preparation of {pool.name!r} was cancelled "
                                        "(the program is ending)") from None
                raise
            except Exception as exc:  # noqa: BLE001 - reported to the call
                raise ResourceError(f"resource {pool.name!r} for parameter {param!r} "
                                    f"could not be prepared: {type(exc).__name__}: "
                                    f"{exc}") from exc
        return found

    async def close(self) -> CloseReport:
        """Cancel preparations still running and clean up every prepared lease, each
        exactly once; returns what was done. Idempotent."""
        report = CloseReport()
        if self.closed:
            return report
        self.closed = True
        for task in self._tasks.values():
            if not task.done():
                task.cancel()
                report.cancelled += 1
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for task in self._tasks.values():
            if task.cancelled() or task.exception() is not None:
                continue
            await self._cleanup(task.result(), report)
        return report

    async def _cleanup(self, lease: Lease, report: CloseReport) -> None:
        live = self._manager.live(lease.pool)
        try:
            await lease.pool.cleanup(lease.value)
            report.cleaned += 1
        except Exception as exc:  # noqa: BLE001 - one failed cleanup must not stop others
            report.errors.append(f"{lease.pool.name}: {type(exc).__name__}: {exc}")
            log.warning("cleanup of %r for program %r failed: %s", lease.pool.name,
                        self.program_id, exc)
        finally:
            live.in_use.discard(lease.value)
            live.slots.release()


class _Slot:
    """A pool slot held for the block, released on the way out unless ``keep()``."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._kept = False

    async def __aenter__(self) -> _Slot:
        await self._slots.acquire()
        return self

    def keep(self) -> None:
        self._kept = True

    async def __aexit__(self, *exc: Any) -> None:
        if not self._kept:
            self._slots.release()


class ResourceManager:
    """Live pools and open programs of this process; see the module docstring."""

    def __init__(self, clock: Callable[[], float] | None = None,
                 on_prepared: Callable[[Lease], None] | None = None) -> None:
        self._clock = clock
        self._pools: dict[str, LivePool] = {}
        self._programs: dict[str, ProgramResources] = {}
        self._on_prepared = on_prepared

    def clock(self) -> float:
        """Lease times: the given clock, else the running event loop's (monotonic on a
        real loop, the simulated time on the simulator's)."""
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def live(self, pool: ResourcePool) -> LivePool:
        live = self._pools.get(pool.name)
        if live is None:
            report = pool.sweep()
            if report is not None and report.removed:
                log.warning("pool %r: removed %d resource(s) leaked by processes that are "
                            "gone", pool.name, len(report.removed))
            live = self._pools[pool.name] = LivePool(pool)
        elif live.pool is not pool and live.pool.config() != pool.config():
            raise ValueError(f"two different resource pools are named {pool.name!r}: "
                             f"{live.pool!r} and {pool!r}; give them different names")
        return live

    def pool_stats(self, name: str) -> LivePool | None:
        """The live state of pool ``name`` in this process, if it was used."""
        return self._pools.get(name)

    def open(self, program_id: str, tools: Iterable[RegisteredTool]) -> ProgramResources:
        """The program's resources, preparation started for every pool its tools name.
        Opening an open program adds the pools of ``tools`` to it."""
        scope = self._programs.get(program_id)
        if scope is None:
            scope = self._programs[program_id] = ProgramResources(program_id, self)
        scope.start(pool for tool in tools for pool in tool.resources.values())
        return scope

    def get(self, program_id: str) -> ProgramResources | None:
        return self._programs.get(program_id)

    async def close(self, program_id: str) -> CloseReport:
        """Close the program's resources (see ``ProgramResources.close``); a program
        that was never opened has nothing to close."""
        scope = self._programs.pop(program_id, None)
        return await scope.close() if scope is not None else CloseReport()

    def prepared(self, lease: Lease) -> None:
        if self._on_prepared is not None:
            self._on_prepared(lease)
