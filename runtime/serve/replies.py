"""An engine's `RequestDone` as an OpenAI chat completion, whole or as SSE chunks.

Shapes: platform.openai.com/docs/api-reference/chat/object and .../chat/streaming.

    {"id": "chatcmpl-...", "object": "chat.completion", "created", "model",
     "choices": [{"index": 0, "message": {"role": "assistant", "content", "tool_calls"?},
                  "finish_reason": "stop" | "length" | "tool_calls"}],
     "usage": {"prompt_tokens", "completion_tokens", "total_tokens",
               "prompt_tokens_details": {"cached_tokens"}}}

Streaming, honestly: agentrt's engines finish a call as a whole (a worker reports a
call when it is done; the scheduler returns one `RequestDone`), so a streamed reply is
the finished reply cut into chunks, sent at once: the role, the text a few tokens at a
time, each tool call's name and then its arguments in pieces, the finish reason, and
the usage chunk when `stream_options.include_usage` asks for it. Clients see the
stream protocol exactly; the time to the first token is the time to the last. True
token streaming needs a streaming engine path (workers forwarding deltas as they
decode) that agentrt does not have yet.
"""
from __future__ import annotations

from typing import Any, Iterator

from agentrt.runtime.core.messages import RequestDone
from agentrt.runtime.engines.tokenizer import SimpleTokenizer

TEXT_PIECES_PER_CHUNK = 4
ARGUMENT_CHARS_PER_CHUNK = 24
FINGERPRINT = "agentrt"


def finish_reason(done: RequestDone) -> str:
    if done.tool_calls:
        return "tool_calls"
    return "length" if done.finish_reason == "length" else "stop"


def usage(done: RequestDone) -> dict[str, Any]:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.output_tokens,
            "total_tokens": done.prompt_tokens + done.output_tokens,
            "prompt_tokens_details": {"cached_tokens": done.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": 0}}


def completion(done: RequestDone, *, completion_id: str, model: str,
               created: int) -> dict[str, Any]:
    """The whole reply (`stream` false)."""
    message: dict[str, Any] = {"role": "assistant",
                               "content": done.text if done.text or not done.tool_calls
                               else None,
                               "refusal": None}
    if done.tool_calls:
        message["tool_calls"] = [c.to_openai() for c in done.tool_calls]
    return {"id": completion_id, "object": "chat.completion", "created": created,
            "model": model, "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish_reason(done)}],
            "usage": usage(done)}


def chunks(done: RequestDone, *, completion_id: str, model: str, created: int,
           include_usage: bool, tokenizer: SimpleTokenizer) -> Iterator[dict[str, Any]]:
    """The reply as chat.completion.chunk objects, in order (see the module doc)."""
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": FINGERPRINT}
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": reason}]}

    yield chunk({"role": "assistant", "content": ""})
    pieces = tokenizer.pieces(done.text)
    for i in range(0, len(pieces), TEXT_PIECES_PER_CHUNK):
        yield chunk({"content": "".join(pieces[i:i + TEXT_PIECES_PER_CHUNK])})
    for index, call in enumerate(done.tool_calls):
        yield chunk({"tool_calls": [{"index": index, "id": call.call_id, "type": "function",
                                     "function": {"name": call.name, "arguments": ""}}]})
        args = call.arguments
        for i in range(0, len(args), ARGUMENT_CHARS_PER_CHUNK):
            yield chunk({"tool_calls": [{"index": index, "function": {
                "arguments": args[i:i + ARGUMENT_CHARS_PER_CHUNK]}}]})
    yield chunk({}, finish_reason(done))
    if include_usage:
        yield {**base, "choices": [], "usage": usage(done)}
