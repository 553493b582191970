"""Pins: holds with deadlines, soft weights and a global cap, on one engine's KV.

A pin keeps a session's cached prefix resident while the session waits on a tool
(the hold is `KVCacheManager.hold_within`); this set adds what a TTL policy needs:

    deadline    `until`; `expire(now)` drops the pins due, earliest first (each engine
                step), except those whose session's next request already waits
    cap         distinct pinned blocks <= `cap_fraction` x capacity: a pin that would
                exceed it is trimmed to a shorter prefix or refused (`PinResult`)
    weight      a soft pin carries `weight(now)` in [0, 1] and a `value` (seconds of
                rebuild saved per token kept); under memory pressure the pin with the
                lowest weight x value goes first ("weakest"). A hard pin weighs 1.
    program     `release_program` drops every pin of a program (last step or end);
                `exclusive=True` keeps at most one pin per program (Continuum)

Which pin to give up under pressure is read-only (`latest`, `weakest`); dropping it is
`unpin`. Nothing here knows tools or engines; time is passed in. A min-heap finds the
next deadline; re-pinning leaves the old entry behind, skipped when met.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from typing import Literal

from agentrt.kvcache.holds import HoldStatus
from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.prefix import TokenChain

# weight(now) -> [0, 1]: how much a soft pin is still worth keeping at `now`.
Weight = Callable[[float], float]
ReleaseReason = Literal["expired", "pressure", "program_end", "unpinned", "replaced"]
PressurePick = Literal["latest", "weakest"]


@dataclass(slots=True)
class Pin:
    session_id: str
    program_id: str | None
    until: float  # absolute deadline (inf: until unpinned)
    pinned_at: float
    blocks: int
    weight: Weight | None  # None: a hard pin (weight 1)
    value: float  # seconds of rebuild saved per token kept, for ranking soft pins


@dataclass(frozen=True, slots=True)
class PinResult:
    """What `pin` did. `status` is the hold's (see `kvcache.holds.HoldResult`): the
    session is pinned after "held" and "trimmed" only. `replaced`: sessions of the same
    program whose pins an exclusive pin dropped."""

    status: HoldStatus
    blocks: int
    requested: int
    replaced: tuple[str, ...] = ()

    @property
    def pinned(self) -> bool:
        return self.blocks > 0


@dataclass(frozen=True, slots=True)
class Released:
    """A pin that ended: why, its deadline, and the blocks it held."""

    session_id: str
    reason: ReleaseReason
    deadline: float
    blocks: int


class PinSet:
    """Pins of one engine over its `KVCacheManager` (holder id = session id)."""

    def __init__(self, kv: KVCacheManager, cap_fraction: float = 1.0) -> None:
        if not 0.0 < cap_fraction <= 1.0:
            raise ValueError(f"cap_fraction must be in (0, 1], got {cap_fraction}")
        self.kv = kv
        self.cap_fraction = cap_fraction
        self._pins: dict[str, Pin] = {}
        self._heap: list[tuple[float, str]] = []
        self._by_program: dict[str, set[str]] = {}

    @property
    def cap_blocks(self) -> int:
        return int(self.cap_fraction * self.kv.capacity_blocks)

    # -- act -------------------------------------------------------------------------

    def pin(
        self, session_id: str, prefix: TokenChain, until: float, now: float, *,
        program_id: str | None = None, weight: Weight | None = None, value: float = 1.0,
        exclusive: bool = False, trim: bool = True,
    ) -> PinResult:
        """Pin the cached prefix of `prefix` until `until`, replacing the session's pin,
        within the cap (trimmed, or refused if `trim` is False). With `exclusive`, first
        drop the other pins of `program_id`."""
        replaced: list[str] = []
        if exclusive and program_id is not None:
            for other in sorted(self._by_program.get(program_id, ())):
                if other != session_id:
                    self.unpin(other, now, "replaced")
                    replaced.append(other)
        self._forget(session_id)
        held = self.kv.hold_within(session_id, prefix, now, self.cap_blocks, trim)
        if held.blocks:
            self._pins[session_id] = Pin(session_id, program_id, until, now, held.blocks,
                                         weight, value)
            heapq.heappush(self._heap, (until, session_id))
            if program_id is not None:
                self._by_program.setdefault(program_id, set()).add(session_id)
        return PinResult(held.status, held.blocks, held.requested, tuple(replaced))

    def unpin(
        self, session_id: str, now: float, reason: ReleaseReason = "unpinned"
    ) -> Released | None:
        """Drop the session's pin (None if it has none); its blocks become evictable."""
        pin = self._forget(session_id)
        self.kv.unhold(session_id, now)
        if pin is None:
            return None
        return Released(session_id, reason, pin.until, pin.blocks)

    def expire(self, now: float, waiting: Container[str] = ()) -> list[Released]:
        """Drop the pins whose deadline is <= `now`, earliest first (ties: session id),
        except those of sessions in `waiting` (their next request is queued), which
        stay until unpinned."""
        heap, pins = self._heap, self._pins
        out: list[Released] = []
        kept: list[tuple[float, str]] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            pin = pins.get(entry[1])
            if pin is None or pin.until != entry[0]:
                continue  # stale
            if entry[1] in waiting:
                kept.append(entry)
            else:
                out.append(self.unpin(entry[1], now, "expired"))
        for entry in kept:
            heapq.heappush(heap, entry)
        return out

    def release_program(self, program_id: str, now: float) -> list[Released]:
        """Drop every pin of `program_id` (its last step ran, or it ended), by session id."""
        sessions = sorted(self._by_program.get(program_id, ()))
        return [self.unpin(s, now, "program_end") for s in sessions]

    # -- read --------------------------------------------------------------------------

    def next_deadline(self) -> float:
        """The earliest deadline in force (inf when none); drops stale heap entries."""
        heap, pins = self._heap, self._pins
        while heap and (heap[0][1] not in pins or pins[heap[0][1]].until != heap[0][0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def weight(self, session_id: str, now: float) -> float:
        """The pin's weight at `now`: 1 for a hard pin, 0 without a pin."""
        pin = self._pins.get(session_id)
        if pin is None:
            return 0.0
        return 1.0 if pin.weight is None else min(1.0, max(0.0, pin.weight(now)))

    def latest(self) -> str | None:
        """The session whose pin lasts longest (ties: greatest session id): what
        Continuum gives up first under memory pressure."""
        if not self._pins:
            return None
        return max(self._pins.values(), key=lambda p: (p.until, p.session_id)).session_id

    def weakest(self, now: float) -> str | None:
        """The session whose pin is worth least at `now`: lowest weight x value (ties:
        latest deadline, then greatest session id). O(pins)."""
        if not self._pins:
            return None
        # min keeps the first of equal keys: walk sessions greatest id first.
        order = sorted(self._pins, reverse=True)
        return min(order, key=lambda s: (self.weight(s, now) * self._pins[s].value,
                                         -self._pins[s].until))

    def pick(self, rule: PressurePick, now: float) -> str | None:
        return self.latest() if rule == "latest" else self.weakest(now)

    def get(self, session_id: str) -> Pin | None:
        return self._pins.get(session_id)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._pins

    def __len__(self) -> int:
        return len(self._pins)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._pins))

    def violations(self) -> list[str]:
        """Broken invariants against the KV manager's holds and the cap."""
        out = [f"pin of {s} holds {self.kv.held_blocks(s)} blocks, recorded {p.blocks}"
               for s, p in self._pins.items() if self.kv.held_blocks(s) != p.blocks]
        if self.kv.num_held_blocks > self.cap_blocks:
            out.append(f"{self.kv.num_held_blocks} held blocks exceed the cap {self.cap_blocks}")
        indexed = {s for sessions in self._by_program.values() for s in sessions}
        if indexed != {s for s, p in self._pins.items() if p.program_id is not None}:
            out.append("pins by program disagree with the pins")
        return out

    def _forget(self, session_id: str) -> Pin | None:
        pin = self._pins.pop(session_id, None)
        if pin is not None and pin.program_id is not None:
            sessions = self._by_program[pin.program_id]
            sessions.discard(session_id)
            if not sessions:
                del self._by_program[pin.program_id]
        return pin

