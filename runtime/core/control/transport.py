"""What a driver must carry out for the cluster control: its decisions, on its workers.

The control calls these as it decides, in decision order; a driver turns them into
engine calls (the simulator, at once, on the virtual clock) or into messages to worker
actors (the Ray runtime, one ordered batch per worker and control call). Every method
names a worker the control was told about; none returns anything the control reads
back, so a decision never depends on how fast a transport is.
"""
from __future__ import annotations

from typing import Protocol

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.core.retention.decision import PauseHint, PinDecision
from agentrt.runtime.core.stealing import SessionMove


class Transport(Protocol):
    def send(self, worker_id: str, requests: list[LLMRequest]) -> None:
        """Submit these calls to the worker's engine, in this order (fork groups
        arrive together)."""

    def abort(self, worker_id: str, request_id: str) -> None:
        """Abort the call on the worker (sent there earlier, in order)."""

    def release(self, worker_id: str, session_id: str) -> None:
        """The worker forgets the session (pins, pending holds, prefetches)."""

    def retain(self, worker_id: str, session_id: str, prefix: TokenChain,
               decision: PinDecision, program_id: str) -> None:
        """Carry out a TTL decision on the worker (engines with `retain`)."""

    def prefetch(self, worker_id: str, session_id: str, prefix: TokenChain) -> None:
        """Copy the session's host-memory blocks back now (engines with `host_tier`)."""

    def pause_hint(self, worker_id: str, session_id: str, prefix: TokenChain,
                   hint: PauseHint) -> None:
        """Tell the worker's eviction policy the session waits on a tool (`hints`)."""

    def resume_hint(self, worker_id: str, session_id: str, prefix: TokenChain) -> None:
        """Tell the worker's eviction policy the session's next call comes (`hints`)."""

    def move(self, move: SessionMove) -> None:
        """A session left `move.src` for `move.dst` by stealing: with `move.prefix`,
        copy what `src` really holds of it to `dst` (`movable_blocks` / `receive`)
        before `dst` runs any of its calls; then release it at `src`."""

    def wake_at(self, time: float) -> None:
        """Call `ClusterControl.on_timer` at `time` (or soon after); extra calls are
        harmless."""
