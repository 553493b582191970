"""What a TTL policy sees when a turn ends in a tool call, and what it decides.

    PinRequest ──▶ TTLPolicy.decide(request, durations) ──▶ PinDecision
                                                              │ apply_decision (apply.py)
                                                              ▼
                       "pin" / "soft": PinSet.pin   "offload": KVCacheManager.offload
                       "drop": nothing held (blocks stay cached, evictable)

Facts are plain frozen values the driver fills from its engine and program state, so a
policy never reaches into an engine or a scheduler.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from agentrt.kvcache.pins import Weight

Action = Literal["pin", "soft", "offload", "drop"]


@dataclass(frozen=True, slots=True)
class ProgramFacts:
    """The program behind the session, as far as retention cares."""

    program_id: str
    arrival: float = 0.0
    turns_done: int = 0  # LLM calls of the program finished so far, this one included
    # True when no LLM call of this session follows the tool call (the program's last
    # step ends with it): nobody comes back for the cache.
    last_step: bool = False
    agent: str = ""  # agent type, for learned step transitions


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """The worker holding the session's KV, at decision time. Times are for the
    session's whole context (`PinRequest.context_tokens`)."""

    capacity_blocks: int = 1
    used_blocks: int = 0
    pinned_blocks: int = 0
    recompute_s: float = 0.0  # PerfModel.recompute_time(context)
    reload_s: float | None = None  # PerfModel.reload_time(context); None without a host tier
    step_s: float = 0.0  # duration of one forward pass now (a swap can hide behind it)
    batch_tokens: int = 0  # context tokens of the running batch (InferCept's C_other)
    kv_bytes_per_token: float = 1.0  # InferCept's M (cancels out of comparisons)

    @property
    def kv_pressure(self) -> float:
        return self.used_blocks / self.capacity_blocks

    @property
    def pinned_fraction(self) -> float:
        return self.pinned_blocks / self.capacity_blocks

    @property
    def reload_beats_recompute(self) -> bool:
        return self.reload_s is not None and self.reload_s < self.recompute_s

    @property
    def rebuild_s(self) -> float:
        """Time to rebuild the context as the engine would: reload if cheaper."""
        return self.reload_s if self.reload_beats_recompute else self.recompute_s


@dataclass(frozen=True, slots=True)
class PinRequest:
    """A session's turn ended in a call to `tool` at `now`."""

    session_id: str
    tool: str
    context_tokens: int
    now: float
    program: ProgramFacts
    engine: EngineFacts = EngineFacts()


@dataclass(frozen=True, slots=True)
class PinDecision:
    """What to do with the session's KV while the tool runs.

    action "pin": hold until `until` (absolute; inf = until the next turn or program
    end); "soft": the same, with `weight(now)` and `value` (seconds of rebuild saved
    per token kept) to rank it under pressure; "offload": move the chain's free blocks
    to host memory now; "drop": hold nothing. `exclusive`: at most one pin per program
    (the new one replaces the others). `until` is the decision time for offload/drop.
    `prefetch_at`: when to start copying whatever of the context is then in host
    memory back to the GPU, so that it lands before the next turn (None: never; the
    next turn reloads it on admission).
    """

    action: Action
    until: float
    reason: str
    weight: Weight | None = None
    value: float = 1.0
    exclusive: bool = False
    prefetch_at: float | None = None

    @classmethod
    def drop(cls, now: float, reason: str) -> PinDecision:
        return cls("drop", now, reason)

    @classmethod
    def offload(cls, now: float, reason: str) -> PinDecision:
        return cls("offload", now, reason)

    @classmethod
    def pin(cls, until: float, reason: str, exclusive: bool = False) -> PinDecision:
        return cls("pin", until, reason, exclusive=exclusive)

    @classmethod
    def soft(cls, until: float, weight: Weight, value: float, reason: str) -> PinDecision:
        return cls("soft", until, reason, weight, value)

    @property
    def holds(self) -> bool:
        return self.action in ("pin", "soft")

    def with_prefetch(self, at: float) -> PinDecision:
        """This decision, prefetching the context back at `at`."""
        return PinDecision(self.action, self.until, self.reason, self.weight, self.value,
                           self.exclusive, at)


@dataclass(frozen=True, slots=True)
class SurvivalWeight:
    """A soft pin's weight: 1 until `full_until`, then the probability that the tool is
    still running after `now - start` seconds, read off `curve`, and 0 from `until` on.

    `curve` is the tool's survival function sampled when the decision was made:
    (seconds since `start`, survival) points in increasing order, interpolated linearly
    between them (the last value holds after the last point). A snapshot rather than a
    live view of the duration model, so a decision means the same wherever it is
    carried out (the Ray runtime sends it to the worker that holds the blocks)."""

    start: float
    full_until: float
    until: float
    curve: tuple[tuple[float, float], ...]

    POINTS: ClassVar[int] = 16

    def __post_init__(self) -> None:  # a decoded curve arrives as lists
        object.__setattr__(self, "curve", tuple((float(x), float(y)) for x, y in self.curve))

    @classmethod
    def sampled(cls, start: float, full_until: float, until: float,
                survival: Callable[[float], float], points: int | None = None
                ) -> SurvivalWeight:
        """Sample `survival` (seconds since start -> probability) at `points` evenly
        spaced times over the fading part, [full_until, until]."""
        n = cls.POINTS if points is None else points
        lo, hi = full_until - start, until - start
        xs = [lo + (hi - lo) * i / (n - 1) for i in range(n)] if hi > lo else [lo]
        curve = []
        for x in xs:
            s = survival(x)
            curve.append((x, s if math.isfinite(s) else 0.0))
        return cls(start, full_until, until, tuple(curve))

    def __call__(self, now: float) -> float:
        if now < self.full_until:
            return 1.0
        if now >= self.until or not self.curve:
            return 0.0
        x, curve = now - self.start, self.curve
        i = bisect.bisect_right(curve, (x, math.inf))
        if i == 0:
            return curve[0][1]
        if i == len(curve):
            return curve[-1][1]
        (x0, s0), (x1, s1) = curve[i - 1], curve[i]
        return s0 + (s1 - s0) * (x - x0) / (x1 - x0) if x1 > x0 else s1


@dataclass(frozen=True, slots=True)
class PauseHint:
    """What an eviction policy should know of a session paused on `tool`: the
    probability that it calls again (`p_reuse`, from the agent's step transitions), the
    expected seconds until then (`gap_s`, the tool's mean duration), what rebuilding
    its whole context would cost (`rebuild_s`), and, for the offline Belady oracle
    only, when it really comes back (`resume_at`: known to trace replays, else None)."""

    tool: str
    agent: str
    p_reuse: float
    gap_s: float
    rebuild_s: float | None = None
    resume_at: float | None = None
