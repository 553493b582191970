"""Holds on an engine's KV blocks: which session keeps which blocks, until when, under
which cap, and which hold to give up first under memory pressure.

Pure bookkeeping: a block here is any object with a `block_id` (vLLM's `KVCacheBlock`
in the engine); taking and freeing the blocks is the scheduler's job
(`runtime.engines.vllm.scheduler`). The rules are those of `kvcache.pins.PinSet`, so
that a TTL decision means the same on this backend as in the simulator:

    cap        distinct held blocks <= `cap_fraction` x capacity; a hold that would
               exceed it keeps a shorter prefix ("trimmed") or nothing ("refused").
               Pins without such a cap let held memory starve admissions until the
               engine can neither admit nor finish anything (SGLang issue #27024).
    deadline   `until` (inf: until the session's next turn, release or pressure);
               `due(now)` lists those whose deadline has passed
    pending    a hold taken when a tool-calling reply finished, before the core's
               decision for it arrived (deadline inf); a decision replaces it
    pressure   `latest()` and `weakest(now)` are `PinSet`'s picks, so the pressure
               rules of `kvcache.pressure` read this table as they read a PinSet
"""
from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentrt.kvcache.pins import Weight


@dataclass(slots=True)
class Hold:
    """One session's held blocks (leading blocks of its last context, in order)."""

    session_id: str
    program_id: str | None
    blocks: list[Any]
    until: float
    held_at: float
    pending: bool = False
    weight: Weight | None = None  # None: a hard hold (weight 1)
    value: float = 1.0


@dataclass(frozen=True, slots=True)
class Allowance:
    """How many leading blocks of a wanted hold fit under the cap, and its status."""

    keep: int
    status: str  # "held", "trimmed", "refused", "nothing_cached"


@dataclass
class HoldTable:
    capacity_blocks: int
    cap_fraction: float = 1.0
    _holds: dict[str, Hold] = field(default_factory=dict)
    _refs: Counter = field(default_factory=Counter)  # block_id -> holds holding it
    _heap: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 < self.cap_fraction <= 1.0:
            raise ValueError(f"cap_fraction must be in (0, 1], got {self.cap_fraction}")

    @property
    def cap_blocks(self) -> int:
        return int(self.cap_fraction * self.capacity_blocks)

    @property
    def held_blocks(self) -> int:
        """Distinct blocks held (a block two sessions share counts once)."""
        return len(self._refs)

    def allowance(self, block_ids: Sequence[int]) -> Allowance:
        """The longest prefix of `block_ids` that fits under the cap (blocks already
        held by another session cost nothing). Remove the session's own hold first."""
        if not block_ids:
            return Allowance(0, "nothing_cached")
        room, keep = self.cap_blocks - self.held_blocks, 0
        for block_id in block_ids:
            if block_id not in self._refs:
                if room <= 0:
                    break
                room -= 1
            keep += 1
        if keep == len(block_ids):
            return Allowance(keep, "held")
        return Allowance(keep, "trimmed" if keep else "refused")

    # -- changes -------------------------------------------------------------------
    def add(self, hold: Hold) -> None:
        """Record a hold (the caller referenced its blocks). Replaces none: `remove`
        the session's old hold first."""
        if hold.session_id in self._holds:
            raise ValueError(f"session {hold.session_id!r} already holds blocks")
        self._holds[hold.session_id] = hold
        self._refs.update(b.block_id for b in hold.blocks)
        if math.isfinite(hold.until):
            heapq.heappush(self._heap, (hold.until, hold.session_id))

    def remove(self, session_id: str) -> Hold | None:
        """Forget the session's hold; the caller frees its blocks."""
        hold = self._holds.pop(session_id, None)
        if hold is not None:
            self._refs.subtract(b.block_id for b in hold.blocks)
            for block_id in [b.block_id for b in hold.blocks if self._refs[b.block_id] <= 0]:
                del self._refs[block_id]
        return hold

    # -- reading -------------------------------------------------------------------
    def due(self, now: float, waiting: Container[str] = ()) -> list[str]:
        """Sessions whose deadline is <= now, earliest first, except those whose next
        request waits in the engine (they stay until it is admitted)."""
        out, kept = [], []
        while self._heap and self._heap[0][0] <= now:
            until, session = heapq.heappop(self._heap)
            hold = self._holds.get(session)
            if hold is None or hold.until != until:
                continue  # released or re-decided since
            (kept if session in waiting else out).append((until, session))
        for entry in kept:
            heapq.heappush(self._heap, entry)
        return [session for _, session in out]

    def next_deadline(self) -> float:
        while self._heap:
            until, session = self._heap[0]
            hold = self._holds.get(session)
            if hold is not None and hold.until == until:
                return until
            heapq.heappop(self._heap)
        return math.inf

    def latest(self) -> str | None:
        """The hold lasting longest (ties: greatest session id): Continuum's pick."""
        if not self._holds:
            return None
        return max(self._holds.values(), key=lambda h: (h.until, h.session_id)).session_id

    def weakest(self, now: float) -> str | None:
        """The hold worth least at `now`: lowest weight x value (ties: latest deadline,
        then greatest session id), as `PinSet.weakest`."""
        if not self._holds:
            return None
        order = sorted(self._holds, reverse=True)
        return min(order, key=lambda s: (self.weight(s, now) * self._holds[s].value,
                                         -self._holds[s].until))

    def weight(self, session_id: str, now: float) -> float:
        hold = self._holds[session_id]
        return 1.0 if hold.weight is None else float(hold.weight(now))

    def get(self, session_id: str) -> Hold | None:
        return self._holds.get(session_id)

    def sessions(self) -> list[str]:
        return list(self._holds)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._holds

    def __len__(self) -> int:
        return len(self._holds)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._holds))

    def violations(self) -> list[str]:
        """Broken invariants (empty when consistent): reference counts match the holds,
        and the cap holds."""
        expect = Counter(b.block_id for h in self._holds.values() for b in h.blocks)
        problems = []
        if expect != +self._refs:
            problems.append(f"held block counts {dict(+self._refs)} != {dict(expect)}")
        if self.held_blocks > self.cap_blocks:
            problems.append(f"{self.held_blocks} blocks held over the cap {self.cap_blocks}")
        return problems
