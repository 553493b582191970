"""Responders: what a simulated model "says" in reply to a request.

The simulated engine asks its responder once per request, at first admission, with a
`random.Random` seeded from (engine seed, request id), so a reply never depends on
batching order. Two kinds:

- `FillerResponder` (default): a sampled length; counted requests get no text, requests
  with messages get filler words whose token ids follow the chat rendering.
- `ScriptedResponder`: a callable decides text and tool calls (examples use it to make
  simulated agents call tools).
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentrt.runtime.core.messages import LLMRequest, ToolCallSpec
from agentrt.runtime.engines.tokenizer import SimpleTokenizer, canonical_json


@dataclass(slots=True)
class Response:
    """One reply. `output_tokens` is the reply's length in tokens; when `token_ids` is
    set it has exactly that many ids (the chat rendering of text and tool calls)."""

    text: str
    tool_calls: list[ToolCallSpec]
    output_tokens: int
    token_ids: list[int] | None = None
    finish_reason: str = "stop"  # "stop" | "length" | "tool_calls"


@runtime_checkable
class Responder(Protocol):
    def respond(self, request: LLMRequest, rng: random.Random) -> Response:
        """The reply to `request`. Must be a function of (request, rng state) only, and
        return 1 <= output_tokens <= request.max_tokens. Does not mutate `request`."""


_FILLER = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud"
).split()


class FillerResponder:
    """Replies of a lognormal length (mean `mean_output_tokens`), or the request's
    `output_tokens_hint`, capped at `max_tokens`."""

    def __init__(
        self,
        mean_output_tokens: float = 256,
        sigma: float = 0.6,
        tokenizer: SimpleTokenizer | None = None,
    ) -> None:
        if mean_output_tokens < 1 or sigma < 0:
            raise ValueError(
                f"need mean_output_tokens >= 1 and sigma >= 0, got {mean_output_tokens}, {sigma}"
            )
        self.mu = math.log(mean_output_tokens) - sigma * sigma / 2  # so the mean is as asked
        self.sigma = sigma
        self.tokenizer = tokenizer or SimpleTokenizer()

    def respond(self, request: LLMRequest, rng: random.Random) -> Response:
        wanted = request.output_tokens_hint
        if wanted is None:
            wanted = round(rng.lognormvariate(self.mu, self.sigma))
        n = max(1, min(int(wanted), request.max_tokens))
        reason = "length" if wanted > request.max_tokens else "stop"
        if not request.messages:
            return Response("", [], n, None, reason)
        text = _filler_text(n - 1, rng)  # n - 1 words + [END] = n tokens
        ids = self.tokenizer.encode_reply(text)
        return Response(text, [], len(ids), ids, reason)


def _filler_text(words: int, rng: random.Random) -> str:
    """`words` filler words; each is one token (a word keeps its leading space)."""
    return " ".join(rng.choice(_FILLER) for _ in range(words))


@dataclass(slots=True)
class ScriptedReply:
    """What a script decides: reply text and tool calls (ToolCallSpec, or dicts with
    "name" and "arguments" (dict or JSON text) and an optional "id", or OpenAI-shaped
    dicts)."""

    text: str = ""
    tool_calls: list[ToolCallSpec | Mapping[str, Any]] = field(default_factory=list)


Script = Callable[[LLMRequest, random.Random], "ScriptedReply | Mapping[str, Any]"]


class ScriptedResponder:
    """Replies decided by `script(request, rng)`; token ids are the chat rendering of
    the reply, truncated to `max_tokens` (finish reason "length", tool calls dropped)."""

    def __init__(self, script: Script, tokenizer: SimpleTokenizer | None = None) -> None:
        self.script = script
        self.tokenizer = tokenizer or SimpleTokenizer()

    def respond(self, request: LLMRequest, rng: random.Random) -> Response:
        reply = self.script(request, rng)
        if isinstance(reply, Mapping):
            reply = ScriptedReply(str(reply.get("text", "")), list(reply.get("tool_calls", ())))
        calls = [_tool_call(tc, rng) for tc in reply.tool_calls]
        ids = self.tokenizer.encode_reply(reply.text, calls)
        if len(ids) <= request.max_tokens:
            reason = "tool_calls" if calls else "stop"
            return Response(reply.text, calls, len(ids), ids, reason)
        return self._truncated(reply.text, ids, request.max_tokens)

    def _truncated(self, text: str, ids: list[int], limit: int) -> Response:
        """Cut at `limit` tokens: a reply cut inside its text keeps that much text; a
        cut inside the tool calls keeps the text and no calls."""
        pieces = self.tokenizer.pieces(text)
        if limit < len(pieces):
            text = "".join(pieces[:limit])
        limit = max(1, limit)
        return Response(text, [], limit, ids[:limit], "length")


def _tool_call(tc: ToolCallSpec | Mapping[str, Any], rng: random.Random) -> ToolCallSpec:
    if isinstance(tc, ToolCallSpec):
        return tc
    fn = tc.get("function", tc)
    args = fn.get("arguments", {})
    if not isinstance(args, str):
        args = canonical_json(args)
    call_id = tc.get("id") or tc.get("call_id") or f"call_{rng.getrandbits(48):012x}"
    return ToolCallSpec(call_id=str(call_id), name=str(fn["name"]), arguments=args)


RESPONDERS: dict[str, Callable[..., Responder]] = {"filler": FillerResponder}


def make_responder(name: str, **kwargs: Any) -> Responder:
    """A default responder by name ("filler"); ScriptedResponder needs a script and is
    built directly."""
    if name not in RESPONDERS:
        raise ValueError(f"unknown responder {name!r}; valid: {sorted(RESPONDERS)}")
    return RESPONDERS[name](**kwargs)
