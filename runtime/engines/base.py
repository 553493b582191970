"""The Engine contract: what a worker's inference backend offers the core.

An engine owns one worker's batch and KV cache. It is driven from outside: the driver
(simulator or Ray worker actor) calls `step(now)` whenever `has_work()` is true, waits
`StepResult.duration` (virtual or real seconds), and hands the events back to the core.
An engine never sleeps, spawns or reads a clock: `now` is always passed in.

    submit(req) ─▶ waiting ─▶ running (chunked prefill ─▶ decode) ─▶ RequestDone
                                  ▲          │ out of KV
                                  └──────────┘ Preempted (recompute later)

Pins hold a session's cached blocks so that its next turn finds them (see kvcache);
`release` drops whatever the engine keeps for a session.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import EngineEvent, EngineStats, LLMRequest


@dataclass(slots=True)
class StepResult:
    """What one engine step did. `duration` is the modeled (or measured) time of the
    step; events carry timestamps at `now + duration` (PinExpired: at `now`). An idle
    step has duration 0, no events but expired pins, and 0 iterations. A fused step (see
    `Engine.step`) covers `iterations` batch iterations; `duration` and the token counts
    are their sums."""

    duration: float
    events: list[EngineEvent] = field(default_factory=list)
    prefill_tokens: int = 0
    decode_tokens: int = 0
    num_running: int = 0
    iterations: int = 1


@runtime_checkable
class Engine(Protocol):
    worker_id: str
    model: str

    def submit(self, request: LLMRequest, now: float) -> None:
        """Queue a request. Raises ValueError if the request can never fit this engine
        (prompt + max_tokens beyond its KV capacity or context limit)."""

    def abort(self, request_id: str, now: float) -> bool:
        """Drop a queued or running request, freeing its blocks. True if it was here."""

    def has_work(self) -> bool:
        """True while any request is waiting or running."""

    def step(self, now: float, horizon: float | None = None) -> StepResult:
        """Run one batch iteration starting at `now`.

        With `horizon` (the driver's next event: nothing reaches this engine before
        it), an engine may run several consecutive pure-decode iterations in one call,
        each starting before `horizon` and none but the last finishing a request. The
        result then equals that of calling `step` once per iteration at the successive
        start times: the same events at the same times, the same state afterwards.
        Engines that cannot fuse ignore `horizon`."""

    def pin(self, session_id: str, prefix: TokenChain, until: float, now: float) -> int:
        """Hold the cached blocks of `prefix` for `session_id` until `until` (or unpin).
        Returns the number of blocks held (0 when nothing of it is cached)."""

    def unpin(self, session_id: str, now: float) -> None:
        """Drop the session's pin, leaving its blocks cached but evictable."""

    def release(self, session_id: str, now: float) -> None:
        """Forget the session: unpin; the blocks stay cached-evictable."""

    def movable_blocks(self, prefix: TokenChain) -> int:
        """Leading full blocks of `prefix` held here (any tier): what a session moving
        to another worker can take along."""

    def receive(self, session_id: str, prefix: TokenChain, blocks: int, now: float,
                link: str = "nvlink") -> int:
        """A session moves here: copy in the first `blocks` full blocks of `prefix` from
        a peer over `link`; its next admission waits for the copy. Returns the tokens
        received (fewer when free blocks run short)."""

    def cached_prefix_tokens(self, prefix: TokenChain) -> int:
        """How many leading tokens of `prefix` this engine holds now (read-only)."""

    def stats(self) -> EngineStats:
        """A snapshot of load and KV use."""

    def check_integrity(self) -> None:
        """Raise AssertionError if internal accounting is inconsistent."""
