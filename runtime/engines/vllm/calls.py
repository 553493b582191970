"""One call in flight on the vLLM engine: its streamed output gathered into a RequestDone.

vLLM streams each call's new tokens after every step (`RequestOutputKind.DELTA`); the
call keeps the text and token ids, when its first token came and how many prompt tokens
vLLM found in its prefix cache (`RequestOutput.num_cached_tokens`: whole blocks), and
when it finishes becomes a RequestDone with usage, parsed tool calls and the finish
reason. Times are run-clock seconds; vLLM's engine-core timestamps (monotonic) are
moved onto the run clock by their age.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentrt.kvcache.prefix import stable_hash
from agentrt.runtime.core.messages import LLMRequest, RequestDone, ToolCallSpec

_FINISH = {"stop": "stop", "length": "length", "abort": "aborted", "error": "error"}


@dataclass(slots=True)
class Call:
    request: LLMRequest
    prompt_ids: list[int]
    submitted_at: float
    text: list[str] = field(default_factory=list)
    output_ids: list[int] = field(default_factory=list)
    first_token_at: float | None = None
    scheduled_at: float | None = None
    cached_tokens: int = 0
    preemptions: int = 0
    finish: str = "stop"

    def add(self, output: Any, now: float) -> bool:
        """Take one streamed RequestOutput; True when the call finished."""
        if output.num_cached_tokens is not None:
            self.cached_tokens = int(output.num_cached_tokens)
        metrics = getattr(output, "metrics", None)
        scheduled = getattr(metrics, "scheduled_ts", 0.0) if metrics is not None else 0.0
        if self.scheduled_at is None and scheduled:
            self.scheduled_at = now - max(0.0, time.monotonic() - scheduled)
        for completion in output.outputs[:1]:
            if completion.token_ids and self.first_token_at is None:
                self.first_token_at = now
            self.output_ids.extend(completion.token_ids)
            self.text.append(completion.text)
            if completion.finish_reason is not None:
                self.finish = _FINISH.get(str(completion.finish_reason), "stop")
        return bool(output.finished)

    def done(self, worker_id: str, now: float,
             parse: Callable[[LLMRequest, str], tuple[str, list[ToolCallSpec]]]) -> RequestDone:
        request, prompt = self.request, len(self.prompt_ids)
        cached = min(self.cached_tokens, prompt)
        text, calls = parse(request, "".join(self.text))
        finish = "tool_calls" if calls and self.finish in ("stop", "length") else self.finish
        scheduled = self.scheduled_at if self.scheduled_at is not None else self.submitted_at
        return RequestDone(
            request.request_id, request.session_id, request.program_id, worker_id,
            finished_at=now, prompt_tokens=prompt, cached_tokens=cached,
            prefilled_tokens=prompt - cached, output_tokens=len(self.output_ids), text=text,
            tool_calls=calls, finish_reason=finish, output_token_ids=list(self.output_ids),
            output_synthetic_key=stable_hash("vllm-reply", request.request_id),
            dispatched_at=self.submitted_at, first_scheduled_at=max(self.submitted_at, scheduled),
            first_token_at=self.first_token_at if self.first_token_at is not None else now,
            preemptions=self.preemptions)
