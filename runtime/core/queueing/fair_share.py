"""Agent Fair Share across tenants (SAGA, reconstructed).

Each tenant's slowdown is its programs' observed completion time over their isolated
completion time. While programs run, the scheduler observes both: a program's elapsed
time, and how much of it its calls spent waiting (queued here, then in the engine), so

    isolated ~ elapsed - waiting            slowdown = sum(elapsed) / sum(isolated)

pooled over the tenant's active programs. Every term is linear in `now`, so the
tenant keeps running sums and its slowdown costs O(1) at any time:

    elapsed(now) = n * now - sum(program arrivals)
    waiting(now) = waits of finished calls (until their engine first ran them)
                   + waits of dispatched calls (until their dispatch)
                   + q * now - sum(since of the q calls still queued here)

where a queued call's `since` is its arrival, or, for a call recalled by preemption,
the time that makes its waiting resume where it stopped at its dispatch.

(Parallel calls of one DAG program add their waits, so waiting may exceed elapsed;
isolated is floored at 1% of elapsed, capping a slowdown at 100.)

Each worker's queue keeps one program-FCFS queue per tenant and serves the tenant whose
slowdown is highest, i.e. most above the mean (ties: the earlier head, then the tenant
name). The served call is stamped (-slowdown, program arrival, arrival) for the engine.
Preemption: when the head's tenant is more than `delta` above the mean and its worker
cannot take it, the latest-dispatched call of the least slowed tenant below the mean is
recalled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.queueing.policy import InFlight, PreemptChoice, QueuePolicy
from agentrt.runtime.core.queueing.wait_queue import WaitQueue

MIN_ISOLATED_SHARE = 0.01


@dataclass(slots=True)
class TenantLoad:
    """Running sums over one tenant's active programs (see the module docstring)."""

    programs: int = 0
    sum_arrival: float = 0.0
    wait_done: float = 0.0
    wait_sent: float = 0.0
    queued: int = 0
    sum_queued_arrival: float = 0.0

    def slowdown(self, now: float) -> float:
        elapsed = self.programs * now - self.sum_arrival
        if elapsed <= 1e-9:
            return 1.0
        waiting = (self.wait_done + self.wait_sent + self.queued * now
                   - self.sum_queued_arrival)
        return elapsed / max(elapsed - waiting, MIN_ISOLATED_SHARE * elapsed)


@dataclass(slots=True)
class _Program:
    tenant: str
    arrival: float
    wait_done: float = 0.0


class FairShare(QueuePolicy):
    name = "fair_share"

    def __init__(self, delta: float = 0.5) -> None:
        if delta < 0:
            raise ValueError(f"delta must be >= 0, got {delta}")
        self.delta = delta
        self.tenants: dict[str, TenantLoad] = {}
        self._programs: dict[str, _Program] = {}
        # Per call: queued -> (tenant, since: waiting so far is now - since);
        # in flight -> (tenant, seconds it waited before its dispatch).
        self._queued: dict[str, tuple[str, float]] = {}
        self._sent: dict[str, tuple[str, float]] = {}
        self.clock = 0.0  # the latest time any hook saw

    def new_queue(self) -> "FairShareQueue":
        return FairShareQueue(self)

    def key(self, request: LLMRequest, now: float) -> tuple:
        return (request.program_arrival, request.arrival)

    def slowdowns(self, now: float) -> dict[str, float]:
        """Slowdown of every tenant with an active program."""
        return {t: load.slowdown(now) for t, load in self.tenants.items() if load.programs}

    def deviation(self, tenant: str, now: float) -> float:
        """How far the tenant's slowdown is above the mean over active tenants."""
        s = self.slowdowns(now)
        return s.get(tenant, 1.0) - sum(s.values()) / len(s) if s else 0.0

    # -- hooks -----------------------------------------------------------------------
    def on_submit(self, request: LLMRequest, now: float) -> None:
        self.clock = now
        if request.program_id not in self._programs:
            self._programs[request.program_id] = _Program(request.tenant,
                                                           request.program_arrival)
            load = self.tenant_load(request.tenant)
            load.programs += 1
            load.sum_arrival += request.program_arrival
        self._enqueue(request.request_id, request.tenant, request.arrival)

    def on_dispatch(self, request: LLMRequest, now: float) -> None:
        self.clock = now
        tenant, since = self._dequeue(request.request_id)
        self._sent[request.request_id] = (tenant, now - since)
        self.tenant_load(tenant).wait_sent += now - since

    def on_requeue(self, request: LLMRequest, now: float, ran_s: float) -> None:
        tenant, wait = self._unsend(request.request_id)
        self._enqueue(request.request_id, tenant, now - wait)  # its clock resumes

    def on_done(self, done: RequestDone, now: float, dispatched_at: float) -> Sequence[str]:
        self.clock = now
        if done.request_id not in self._sent:
            return ()
        tenant, wait = self._unsend(done.request_id)
        program = self._programs.get(done.program_id)
        if program is not None:  # the sums cover active programs only
            wait += max(0.0, done.first_scheduled_at - dispatched_at)  # in the engine
            program.wait_done += wait
            self.tenant_load(tenant).wait_done += wait
        return ()

    def on_forget(self, request: LLMRequest) -> None:
        if request.request_id in self._sent:
            self._unsend(request.request_id)
        elif request.request_id in self._queued:
            self._dequeue(request.request_id)

    def on_program_end(self, program_id: str, now: float) -> None:
        program = self._programs.pop(program_id, None)
        if program is not None:
            load = self.tenants[program.tenant]
            load.programs -= 1
            load.sum_arrival -= program.arrival
            load.wait_done -= program.wait_done

    def choose_preemption(self, head: LLMRequest, inflight: Sequence[InFlight],
                          now: float) -> PreemptChoice | None:
        s = self.slowdowns(now)
        if not s:
            return None
        mean = sum(s.values()) / len(s)
        if s.get(head.tenant, 1.0) - mean <= self.delta:
            return None
        best: tuple | None = None
        for f in inflight:
            slow = s.get(f.request.tenant, 1.0)
            if slow < mean and (best is None or (slow, -f.dispatched_at) < best[0]):
                best = ((slow, -f.dispatched_at), f.request.request_id)
        return None if best is None else PreemptChoice(best[1], "fair_share")

    # -- internals ---------------------------------------------------------------------
    def tenant_load(self, tenant: str) -> TenantLoad:
        load = self.tenants.get(tenant)
        if load is None:
            load = self.tenants[tenant] = TenantLoad()
        return load

    def _enqueue(self, request_id: str, tenant: str, since: float) -> None:
        self._queued[request_id] = (tenant, since)
        load = self.tenant_load(tenant)
        load.queued += 1
        load.sum_queued_arrival += since

    def _dequeue(self, request_id: str) -> tuple[str, float]:
        tenant, since = self._queued.pop(request_id)
        load = self.tenant_load(tenant)
        load.queued -= 1
        load.sum_queued_arrival -= since
        return tenant, since

    def _unsend(self, request_id: str) -> tuple[str, float]:
        tenant, wait = self._sent.pop(request_id)
        self.tenant_load(tenant).wait_sent -= wait
        return tenant, wait


class FairShareQueue:
    """One worker's queue: a program-FCFS `WaitQueue` per tenant; `pop` serves the
    tenant with the highest slowdown at `now` (the policy's clock when None)."""

    __slots__ = ("_policy", "_tenants", "_tenant_of")

    def __init__(self, policy: FairShare) -> None:
        self._policy = policy
        self._tenants: dict[str, WaitQueue] = {}
        self._tenant_of: dict[str, str] = {}  # queued request id -> tenant

    def push(self, request: LLMRequest, now: float | None = None) -> None:
        if request.request_id in self._tenant_of:
            raise ValueError(f"request {request.request_id!r} is already queued")
        queue = self._tenants.get(request.tenant)
        if queue is None:
            queue = self._tenants[request.tenant] = WaitQueue(self._policy.key)
        queue.push(request, now)
        self._tenant_of[request.request_id] = request.tenant

    def peek(self, now: float | None = None) -> LLMRequest | None:
        best = self._best(self._policy.clock if now is None else now)
        return None if best is None else best[1].peek()

    def pop(self, now: float | None = None) -> LLMRequest | None:
        best = self._best(self._policy.clock if now is None else now)
        if best is None:
            return None
        request = best[1].pop()
        del self._tenant_of[request.request_id]
        request.priority = (best[0][0],) + request.priority
        return request

    def remove(self, request_id: str) -> LLMRequest | None:
        tenant = self._tenant_of.pop(request_id, None)
        return None if tenant is None else self._tenants[tenant].remove(request_id)

    def rekey(self, request_id: str, now: float) -> bool:
        tenant = self._tenant_of.get(request_id)
        return tenant is not None and self._tenants[tenant].rekey(request_id, now)

    def __len__(self) -> int:
        return len(self._tenant_of)

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._tenant_of

    def __iter__(self) -> Iterator[LLMRequest]:
        """Queued requests tenant by tenant (name order), each in program-FCFS order."""
        return iter([r for t in sorted(self._tenants) for r in self._tenants[t]])

    def _best(self, now: float) -> tuple[tuple, WaitQueue] | None:
        """(rank, queue) of the tenant to serve: highest slowdown, then the earlier
        head, then the smaller tenant name; None when every tenant queue is empty."""
        best = None
        for tenant, queue in self._tenants.items():
            head = queue.peek()
            if head is not None:
                slowdown = self._policy.tenant_load(tenant).slowdown(now)
                rank = (-slowdown, head.priority, tenant)
                if best is None or rank < best[0]:
                    best = (rank, queue)
        return best
