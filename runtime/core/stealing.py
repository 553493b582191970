"""Work stealing between workers (SAGA), with Llumnix-style rules for hot sessions.

When the scheduler is about to hand work to a worker whose waiting calls (its queue
here plus its engine's waiting list) are fewer than `low_mark`, that worker steals
queued calls from the worker with the most calls queued here, if that is more than
`high_mark`. It takes half the difference (at most `max_steal`), choosing

    1. calls of sessions with no KV on the victim (new sessions, or KV gone)
    2. calls of sessions holding at most `small_kv_tokens` of KV there
    3. calls of hot sessions, only when moving their KV (`kv_move`: recompute it by
       prefill, or transfer it over `link`) costs less than the queueing it saves:
       the call's expected wait on the victim minus that on the thief

ties going to the fewest KV tokens, then to the call furthest back in the victim's
queue (it would wait longest). Calls of fork groups stay with their group.

Stealing only moves calls that are still queued here, inside `Scheduler.take`, so
work still reaches a worker only through `take`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.core.routing.base import ClusterView, WorkerLoad


class StealConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    low_mark: int = Field(1, ge=1)
    """A worker with fewer calls waiting for it than this steals."""
    high_mark: int = Field(4, ge=0)
    """Only from a worker with more calls queued in the scheduler than this."""
    max_steal: int | None = Field(None, ge=1)
    """Calls taken per steal at most; None: the scheduler's dispatch window."""
    small_kv_tokens: int = Field(4096, ge=0)
    """A session holding at most this much KV on the victim moves without a cost check."""
    kv_move: Literal["recompute", "transfer"] = "recompute"
    """How a moved session's KV reaches the thief, priced against the queueing saved:
    recomputed by prefill at the thief, or copied there by the driver over `link`
    (see `SessionMove`)."""
    link: Literal["nvlink", "network", "host"] = "nvlink"
    """The link a transfer uses."""


@dataclass(frozen=True, slots=True)
class SessionMove:
    """A stolen call's session left `src`, where it held about `kv_tokens` of KV. The
    driver releases it there; with kv_move="transfer" (`prefix` set) it first copies
    the blocks of `prefix` that `src` holds to `dst` over `link`
    (`SimulatedEngine.movable_blocks` / `receive`), before `dst` is sent any call."""

    session_id: str
    src: str
    dst: str
    kv_tokens: int
    prefix: TokenChain | None = None
    link: str = "nvlink"


@dataclass(frozen=True, slots=True)
class Steal:
    """One call chosen for stealing and the KV its session leaves behind."""

    request: LLMRequest
    kv_tokens: int


class WorkStealing:
    def __init__(self, config: StealConfig) -> None:
        self.config = config

    def wants(self, worker: WorkerLoad) -> bool:
        """True when the worker is short of work."""
        return worker.waiting < self.config.low_mark

    def victim(self, view: ClusterView, thief_id: str) -> str | None:
        """The worker with the most calls queued above the high mark (first joined on
        ties), or None."""
        best: WorkerLoad | None = None
        for w in view.workers.values():
            if w.worker_id != thief_id and w.queued > self.config.high_mark and (
                    best is None or w.queued > best.queued):
                best = w
        return None if best is None else best.worker_id

    def thieves(self, view: ClusterView) -> list[str]:
        """Workers that would steal if given work now (join order)."""
        victims = [w.worker_id for w in view.workers.values()
                   if w.queued > self.config.high_mark]
        if not victims:
            return []
        return [w.worker_id for w in view.workers.values()
                if self.wants(w) and (len(victims) > 1 or victims[0] != w.worker_id)]

    def choose(self, view: ClusterView, victim_id: str, thief_id: str,
               queued: Iterable[LLMRequest], limit: int,
               movable: Callable[[LLMRequest], bool]) -> list[Steal]:
        """The calls to move from the victim's queue (`queued`, in its priority
        order) to the thief, best first (see the module docstring)."""
        victim, thief = view.workers[victim_id], view.workers[thief_id]
        count = min(limit, max(1, (victim.queued - thief.queued) // 2))
        thief_wait = thief.expected_wait()
        ranked = []
        for position, request in enumerate(queued):
            if not movable(request):
                continue
            kv = view.cached_tokens(request, victim_id)
            if kv == 0:
                rank = 0
            elif kv <= self.config.small_kv_tokens:
                rank = 1
            else:
                saved = victim.expected_wait(position + victim.engine_waiting) - thief_wait
                if self.move_cost(view, kv) >= saved:
                    continue
                rank = 2
            ranked.append(((rank, kv, -position), Steal(request, kv)))
        ranked.sort(key=lambda item: item[0])
        return [steal for _, steal in ranked[:count]]

    def move_cost(self, view: ClusterView, kv_tokens: int) -> float:
        """Seconds to give the thief a session's KV."""
        if self.config.kv_move == "transfer":
            return view.cost.transfer_time(kv_tokens, self.config.link)
        return view.cost.prefill_time(kv_tokens)
