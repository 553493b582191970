"""A simulated hosted API: every call takes a fixed time to its first token plus a
per-prompt-token and a per-output-token time, whatever else is running.

Hosted model APIs serve one client's calls on capacity the client neither sees nor
shares in any way it can measure; from the client's side a call's latency is a
function of its own sizes. This engine models exactly that and nothing more: no
batching, no KV cache (nothing is ever cached, so nothing is pinned), no limit on
concurrent calls. Its figures are modeled, not measured, like every simulated engine.

A step runs the clock to the next call that finishes, but never past `ttft_s` (or
`tick_s`, if longer) ahead: a call submitted during the step cannot finish sooner than
that, so every call's RequestDone comes at the step end that is its finish time.
"""
from __future__ import annotations

import heapq
import math

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import EngineStats, LLMRequest, RequestDone
from agentrt.runtime.engines.base import Capabilities, EngineInfo, EngineRefused, StepResult
from agentrt.runtime.engines.simulated.responder import FillerResponder, Responder
from agentrt.runtime.engines.simulated.sequence import output_key, respond_once


class LatencyEngine:
    """See the module doc. `ttft_s + prompt_tokens x prompt_token_s` to the first token,
    then `tpot_s` per further output token."""

    def __init__(self, worker_id: str, model: str, *, ttft_s: float, prompt_token_s: float,
                 tpot_s: float, responder: Responder | None = None, block_size: int = 16,
                 max_context: int = 200_000, seed: int = 0, tick_s: float = 0.05) -> None:
        if min(ttft_s, prompt_token_s, tpot_s) < 0 or tick_s <= 0:
            raise ValueError("latencies must be >= 0 and tick_s > 0")
        self.worker_id, self.model = worker_id, model
        self.ttft_s, self.prompt_token_s, self.tpot_s = ttft_s, prompt_token_s, tpot_s
        self.responder = responder if responder is not None else FillerResponder()
        self.block_size, self.seed, self.tick_s = block_size, seed, tick_s
        self._info = EngineInfo(worker_id, model, block_size, None, max_context,
                                Capabilities(clock="stepped", kv_state="exact"))
        self._due: list[tuple[float, int, str]] = []  # (finish time, order, request id)
        self._calls: dict[str, tuple[LLMRequest, float, RequestDone]] = {}
        self._order = 0
        self.busy_time = 0.0
        self.steps = 0
        self.min_iteration_time = 1e-6

    @property
    def info(self) -> EngineInfo:
        return self._info

    def submit(self, request: LLMRequest, now: float) -> None:
        rid, limit = request.request_id, self._info.max_context
        if rid in self._calls:
            raise ValueError(f"request {rid!r} is already queued or running")
        if request.max_tokens < 1 or request.prompt_tokens + request.max_tokens > limit:
            raise EngineRefused(
                rid, f"request {rid!r} can never fit worker {self.worker_id!r}: prompt "
                f"{request.prompt_tokens} + max_tokens {request.max_tokens} must be <= "
                f"{limit}, max_tokens >= 1; shorten the conversation or lower max_tokens",
                limit)
        response = respond_once(self.responder, self.seed, request)
        first = now + self.ttft_s + request.prompt_tokens * self.prompt_token_s
        end = first + (response.output_tokens - 1) * self.tpot_s
        done = RequestDone(
            request_id=rid, session_id=request.session_id, program_id=request.program_id,
            worker_id=self.worker_id, finished_at=end, prompt_tokens=request.prompt_tokens,
            cached_tokens=0, prefilled_tokens=request.prompt_tokens,
            output_tokens=response.output_tokens, text=response.text,
            tool_calls=list(response.tool_calls), finish_reason=response.finish_reason,
            output_token_ids=response.token_ids,
            output_synthetic_key=None if response.token_ids is not None else output_key(rid),
            dispatched_at=now, first_scheduled_at=now, first_token_at=first)
        self._calls[rid] = (request, now, done)
        heapq.heappush(self._due, (end, self._order, rid))
        self._order += 1

    def abort(self, request_id: str, now: float) -> bool:
        return self._calls.pop(request_id, None) is not None  # its heap entry is skipped

    def release(self, session_id: str, now: float) -> None:
        """Nothing is kept per session."""

    def has_work(self) -> bool:
        return bool(self._calls)

    def step(self, now: float, horizon: float | None = None) -> StepResult:
        self._skip_aborted()
        if not self._due:
            return StepResult(0.0, [], iterations=0)
        end = max(now, min(self._due[0][0], now + max(self.ttft_s, self.tick_s)))
        events = []
        while self._due and self._due[0][0] <= end:
            _, _, rid = heapq.heappop(self._due)
            call = self._calls.pop(rid, None)
            if call is not None:
                events.append(call[2])
            self._skip_aborted()
        self.busy_time += end - now
        self.steps += 1
        return StepResult(end - now, events, num_running=len(self._calls))

    def iterations_to_next_finish(self) -> int | None:
        return 1 if self._calls else None

    def finish_bound(self) -> float:
        """When this engine's next RequestDone comes at the earliest, if nothing is
        submitted meanwhile: the next finish time, exactly (inf when idle)."""
        return self.next_finish

    def cached_prefix_tokens(self, prefix: TokenChain) -> int:
        return 0

    def stats(self) -> EngineStats:
        return EngineStats(self.worker_id, len(self._calls), 0, 0, 0, 0, 0, self.block_size,
                           0, 0, self.busy_time, self.steps)

    def check_integrity(self) -> None:
        live = {rid for _, _, rid in self._due}
        assert set(self._calls) <= live, "a call without a finish time"

    def _skip_aborted(self) -> None:
        while self._due and self._due[0][2] not in self._calls:
            heapq.heappop(self._due)

    @property
    def next_finish(self) -> float:
        self._skip_aborted()
        return self._due[0][0] if self._due else math.inf
