"""An LLMRequest as a /v1/chat/completions request body (OpenAI's shape:
platform.openai.com/docs/api-reference/chat/create).

    {"model", "messages", "tools"?, "max_tokens" | "max_completion_tokens",
     "stream", "stream_options": {"include_usage": true}?,     (when streaming)
     ...sampling (temperature, top_p, seed, stop, tool_choice, ...),
     "priority"?, "prompt_cache_key" | "session_id"?}        (server hints, when on)

The step's sampling options pass through as given (the server validates them and says
which it rejects); options the engine sets itself are refused.
"""
from __future__ import annotations

import math
from typing import Any

from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.engines.base import EngineRefused
from agentrt.runtime.engines.openai.config import OpenAIEndpoint

ENGINE_FIELDS = frozenset({"model", "messages", "tools", "stream", "stream_options",
                           "max_tokens", "max_completion_tokens", "n"})
_INT64 = (1 << 63) - 1


def chat_body(request: LLMRequest, endpoint: OpenAIEndpoint) -> dict[str, Any]:
    """The body for `request`. Raises EngineRefused when the request has no
    conversation, asks for no output, or sets a field the engine owns."""
    if request.messages is None:
        raise EngineRefused(
            request.request_id,
            f"request {request.request_id!r} has no messages: the HTTP engine for "
            f"{endpoint.base_url} needs a conversation (ctx.chat); counted calls "
            f"(ctx.chat_tokens, trace replay) run on the simulated engine")
    if request.max_tokens < 1:
        raise EngineRefused(request.request_id, f"request {request.request_id!r} has "
                            f"max_tokens={request.max_tokens}; it must be >= 1")
    owned = sorted(ENGINE_FIELDS.intersection(request.sampling))
    if owned:
        raise EngineRefused(request.request_id, f"request {request.request_id!r} sets "
                            f"{owned} in its sampling options; the engine sets these "
                            f"(pass max_tokens to ctx.chat, choose streaming with "
                            f"OpenAIEndpoint.stream)")
    body: dict[str, Any] = {"model": endpoint.model, "messages": request.messages,
                            endpoint.max_tokens_field: request.max_tokens,
                            "stream": endpoint.stream}
    if endpoint.stream:
        body["stream_options"] = {"include_usage": True}
    if request.tools:
        body["tools"] = request.tools
    body.update(request.sampling)
    _add_hints(body, request, endpoint)
    return body


def _add_hints(body: dict[str, Any], request: LLMRequest, endpoint: OpenAIEndpoint) -> None:
    hints = endpoint.hints
    if hints.priority != "off":
        value = priority_value(request.priority, hints.priority_scale)
        body["priority"] = value if hints.priority == "lower_first" else -value
    if hints.session_key != "off":
        body[hints.session_key] = request.session_id


def priority_value(key: tuple, scale: float) -> int:
    """round(key[0] x scale) as a 64-bit int: the scheduler's queue key (lower runs
    first) as one number. 0 when the key is empty or does not start with a number."""
    if not key or isinstance(key[0], bool) or not isinstance(key[0], (int, float)):
        return 0
    value = key[0] * scale
    if math.isnan(value):
        return 0
    if math.isinf(value):
        return _INT64 if value > 0 else -_INT64
    return int(max(-_INT64, min(_INT64, round(value))))
