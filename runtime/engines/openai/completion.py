"""A chat completion as the engine needs it, read from a response body or assembled
from a stream's chunks (OpenAI's chat-completions object and chunk object:
platform.openai.com/docs/api-reference/chat/object and .../chat-streaming).

A streamed tool call arrives in pieces keyed by `index`: the first piece carries the
call's `id` and function `name`, later ones append to `function.arguments`; one chunk
may carry several pieces of one call (vLLM 0.32 sends the name and the whole arguments
in one chunk)::

    {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get_weather"}},
                    {"index": 0, "function": {"arguments": "{\"city\": "}}]}
    {"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}

Usage comes in the last chunk when the request asks for it
(`stream_options: {"include_usage": true}`), with an empty `choices`. Only choice 0 is
read (the engine asks for one). A response without choices, message, finish reason or
usage is an `EndpointProtocolError`; an `error` object inside a stream (vLLM sends one
when generation fails after the stream began) is an `EndpointStatusError`.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentrt.runtime.core.messages import ToolCallSpec
from agentrt.runtime.engines.openai.errors import (
    PROTOCOL_FIX, EndpointProtocolError, EndpointStatusError, status_fix,
)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    """`prompt_tokens_details.cached_tokens`; 0 when the server does not say."""
    cached_reported: bool
    """Whether the server reported cached tokens at all."""


@dataclass(slots=True)
class ChatResult:
    response_id: str
    model: str
    text: str
    tool_calls: list[ToolCallSpec]
    finish_reason: str
    usage: Usage
    first_token_at: float | None = None
    """Client clock when the first content or tool-call piece arrived (streaming)."""


def parse_completion(body: Any, endpoint: str) -> ChatResult:
    """A non-streamed response body (parsed JSON) as a ChatResult."""
    if not isinstance(body, dict):
        raise _bad(endpoint, "the response is not a JSON object")
    choice = _first_choice(body, endpoint)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _bad(endpoint, "the response's choices[0] has no message")
    calls = [_tool_call(c, i, endpoint) for i, c in enumerate(message.get("tool_calls") or [])]
    return ChatResult(
        response_id=str(body.get("id", "")), model=str(body.get("model", "")),
        text=message.get("content") or "", tool_calls=calls,
        finish_reason=_finish(choice, endpoint), usage=parse_usage(body.get("usage"), endpoint))


def parse_usage(usage: Any, endpoint: str) -> Usage:
    if not isinstance(usage, dict):
        raise _bad(endpoint, "the response reports no usage (agentrt settles budgets on "
                   "it; a streaming server must honour stream_options.include_usage, "
                   "else set stream=False)")
    try:
        prompt, completion = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    except (KeyError, TypeError, ValueError):
        raise _bad(endpoint, f"the response's usage lacks prompt_tokens/completion_tokens: "
                   f"{json.dumps(usage)[:200]}") from None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(prompt, completion, int(cached or 0), cached is not None)


@dataclass(slots=True)
class _PartialCall:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamAssembler:
    """Folds a stream's chunks (parsed JSON) into one ChatResult."""

    def __init__(self, endpoint: str, clock: Callable[[], float]) -> None:
        self.endpoint = endpoint
        self._clock = clock
        self._text: list[str] = []
        self._calls: dict[int, _PartialCall] = {}
        self._finish: str | None = None
        self._usage: Any = None
        self._id = ""
        self._model = ""
        self.first_token_at: float | None = None

    def add(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            raise _bad(self.endpoint, f"a stream chunk is not a JSON object: {str(chunk)[:200]}")
        if chunk.get("error") is not None:
            raise _stream_error(chunk["error"], self.endpoint)
        self._id = self._id or str(chunk.get("id", ""))
        self._model = self._model or str(chunk.get("model", ""))
        if chunk.get("usage") is not None:
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._add_choice(choice)

    def _add_choice(self, choice: dict) -> None:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            self._text.append(content)
            self._first_token()
        for piece in delta.get("tool_calls") or ():
            self._add_call_piece(piece)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]

    def _add_call_piece(self, piece: Any) -> None:
        if not isinstance(piece, dict):
            raise _bad(self.endpoint, f"a streamed tool call is not an object: {piece!r:.200}")
        index = piece.get("index", len(self._calls))
        call = self._calls.setdefault(index, _PartialCall())
        call.call_id = call.call_id or piece.get("id") or ""
        function = piece.get("function") or {}
        call.name += function.get("name") or ""
        if function.get("arguments"):
            call.arguments.append(function["arguments"])
        self._first_token()

    def _first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = self._clock()

    def result(self) -> ChatResult:
        """The assembled reply; raises EndpointProtocolError when the stream ended
        without a finish reason or usage."""
        if self._finish is None:
            raise _bad(self.endpoint, "the stream ended without a finish_reason")
        calls = []
        for i, index in enumerate(sorted(self._calls)):
            c = self._calls[index]
            if not c.name:
                raise _bad(self.endpoint, f"streamed tool call {index} has no function name")
            calls.append(ToolCallSpec(c.call_id or f"call_{i}", c.name, "".join(c.arguments)))
        return ChatResult(self._id, self._model, "".join(self._text), calls, self._finish,
                          parse_usage(self._usage, self.endpoint), self.first_token_at)


def _first_choice(body: dict, endpoint: str) -> dict:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _bad(endpoint, "the response has no choices")
    return choices[0]


def _finish(choice: dict, endpoint: str) -> str:
    reason = choice.get("finish_reason")
    if not reason:
        raise _bad(endpoint, "the response's choices[0] has no finish_reason")
    return str(reason)


def _tool_call(call: Any, i: int, endpoint: str) -> ToolCallSpec:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise _bad(endpoint, f"tool call {i} has no function name: {json.dumps(call)[:200]}")
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):  # some servers send an object
        arguments = json.dumps(arguments)
    return ToolCallSpec(str(call.get("id") or f"call_{i}"), str(function["name"]), arguments)


def _stream_error(error: Any, endpoint: str) -> EndpointStatusError:
    info = error if isinstance(error, dict) else {"message": str(error)}
    code = info.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    return EndpointStatusError(endpoint, "the server reported an error inside the stream",
                               status=status, server_message=str(info.get("message", ""))[:500],
                               fix=status_fix(status, model="", base_url=endpoint,
                                              api_key_env=None))


def _bad(endpoint: str, what: str) -> EndpointProtocolError:
    return EndpointProtocolError(endpoint, what, fix=PROTOCOL_FIX)
