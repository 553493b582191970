"""A RequestDone as a chat completion, and its SSE chunks: reassembled as an OpenAI
client does, they give the same message, finish reason and usage."""
from __future__ import annotations

from agentrt.runtime.core.messages import RequestDone, ToolCallSpec
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.serve.replies import chunks, completion


def done(text="", calls=(), reason="stop"):
    return RequestDone("r", "s", "p", "w0", 1.0, prompt_tokens=40, cached_tokens=32,
                       prefilled_tokens=8, output_tokens=12, text=text,
                       tool_calls=list(calls), finish_reason=reason)


def reassemble(parts):
    text, calls, reason, usage = "", {}, None, None
    for part in parts:
        if part.get("usage"):
            usage = part["usage"]
        for choice in part["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for tc in delta.get("tool_calls") or ():
                entry = calls.setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
                entry["id"] = tc.get("id") or entry["id"]
                fn = tc.get("function") or {}
                entry["name"] += fn.get("name") or ""
                entry["arguments"] += fn.get("arguments") or ""
            reason = choice["finish_reason"] or reason
    return text, [calls[i] for i in sorted(calls)], reason, usage


def test_text_reply():
    body = completion(done("hello there, general kenobi"), completion_id="c", model="m",
                      created=1)
    choice = body["choices"][0]
    assert choice["message"]["content"] == "hello there, general kenobi"
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    assert body["usage"] == {"prompt_tokens": 40, "completion_tokens": 12,
                             "total_tokens": 52, "prompt_tokens_details": {"cached_tokens": 32},
                             "completion_tokens_details": {"reasoning_tokens": 0}}
    parts = list(chunks(done("hello there, general kenobi"), completion_id="c", model="m",
                        created=1, include_usage=True, tokenizer=SimpleTokenizer()))
    assert len(parts) > 3  # cut into pieces, not one blob
    assert reassemble(parts) == ("hello there, general kenobi", [], "stop", body["usage"])
    assert all(p["object"] == "chat.completion.chunk" for p in parts)


def test_tool_call_reply():
    calls = [ToolCallSpec("call_1", "search", '{"q":"a rather long query to cut up"}'),
             ToolCallSpec("call_2", "fetch", '{"url":"x"}')]
    body = completion(done("", calls, "stop"), completion_id="c", model="m", created=1)
    message = body["choices"][0]["message"]
    assert message["content"] is None and body["choices"][0]["finish_reason"] == "tool_calls"
    assert message["tool_calls"] == [c.to_openai() for c in calls]
    text, got, reason, usage = reassemble(chunks(done("", calls), completion_id="c", model="m",
                                                 created=1, include_usage=False,
                                                 tokenizer=SimpleTokenizer()))
    assert (text, reason, usage) == ("", "tool_calls", None)
    assert got == [{"id": c.call_id, "name": c.name, "arguments": c.arguments} for c in calls]


def test_length_cut():
    assert completion(done("abc", reason="length"), completion_id="c", model="m",
                      created=1)["choices"][0]["finish_reason"] == "length"
