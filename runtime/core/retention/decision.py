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

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

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
    """A soft pin's weight: 1 until `full_until`, then `survival(now - start)` (the
    probability that the tool is still running), and 0 from `until` on."""

    start: float
    full_until: float
    until: float
    survival: Callable[[float], float]

    def __call__(self, now: float) -> float:
        if now < self.full_until:
            return 1.0
        if now >= self.until:
            return 0.0
        s = self.survival(now - self.start)
        return s if math.isfinite(s) else 0.0
