"""Chat completions against a real vLLM server: caching, tool calls, streaming, the
server's own errors, capacity and tokenization."""
from __future__ import annotations

import asyncio
import json

import pytest

from agentrt.runtime.engines.openai.capacity import CapacityMonitor
from agentrt.runtime.engines.openai.errors import EndpointStatusError
from agentrt.runtime.engines.openai.tokenizer import LocalTokenizer, ServerTokenizer
from tests.realserver.helpers import (
    TIME_TOOL, WEATHER_TOOL, body, client, endpoint, user,
)

pytestmark = [pytest.mark.realserver, pytest.mark.timeout(600)]


def chat(ep, payload):
    async def go():
        c = client(ep)
        try:
            return await c.chat(payload)
        finally:
            await c.aclose()
    return asyncio.run(go())


@pytest.mark.parametrize("stream", [False, True])
def test_second_turn_reports_cached_tokens(vllm, api_key_env, stream):
    ep = endpoint(vllm.base_url, api_key_env=api_key_env)
    question = f"Turn one ({'streamed' if stream else 'plain'}): the weather?"
    first = chat(ep, body(user(question), stream=stream, max_tokens=8))
    history = user(question) + [{"role": "assistant", "content": first.text},
                                {"role": "user", "content": "And tomorrow?"}]
    second = chat(ep, body(history, stream=stream, max_tokens=8))
    assert second.usage.cached_reported
    # vLLM caches whole 32-token blocks of the prompt it has seen.
    assert second.usage.cached_tokens >= (first.usage.prompt_tokens // 32 - 1) * 32 > 0
    assert second.usage.cached_tokens % 32 == 0
    assert second.usage.prompt_tokens > first.usage.prompt_tokens


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("tool_choice", [
    "required", "auto", {"type": "function", "function": {"name": "get_weather"}}],
    ids=["required", "auto", "named"])
def test_tool_call_is_parsed(vllm, api_key_env, stream, tool_choice):
    ep = endpoint(vllm.base_url, api_key_env=api_key_env)
    result = chat(ep, body(user(), stream=stream, max_tokens=40,
                           tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=tool_choice))
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == \
        [("get_weather", {"city": "Paris"})]
    assert result.tool_calls[0].call_id
    # OpenAI's API ends a call forced by name with "stop"; vLLM 0.32 does the same.
    assert result.finish_reason == ("stop" if isinstance(tool_choice, dict) else "tool_calls")
    assert result.usage.completion_tokens > 0


def test_streamed_text_equals_the_plain_reply(vllm, api_key_env):
    ep = endpoint(vllm.base_url, api_key_env=api_key_env)
    messages = user("Say something.")
    plain = chat(ep, body(messages, max_tokens=12, ignore_eos=True))
    streamed = chat(ep, body(messages, stream=True, max_tokens=12, ignore_eos=True))
    assert streamed.text == plain.text != ""
    assert streamed.finish_reason == plain.finish_reason == "length"
    assert streamed.usage.completion_tokens == plain.usage.completion_tokens == 12
    assert streamed.first_token_at is not None


def test_unknown_model_is_not_retried_and_names_the_fix(vllm, api_key_env):
    ep = endpoint(vllm.base_url, api_key_env=api_key_env)
    payload = body(user(), model="no-such-model")
    with pytest.raises(EndpointStatusError) as caught:
        chat(ep, payload)
    error = caught.value
    assert error.status == 404 and not error.retryable and error.attempts == 1
    text = str(error)
    assert vllm.base_url in text and "no-such-model" in text and "/models" in text


def test_wrong_api_key_is_a_401_that_names_the_variable(vllm, monkeypatch):
    monkeypatch.setenv("AGENTRT_WRONG_KEY", "sk-wrong-key-77")
    ep = endpoint(vllm.base_url, api_key_env="AGENTRT_WRONG_KEY")
    with pytest.raises(EndpointStatusError) as caught:
        chat(ep, body(user()))
    assert caught.value.status == 401
    assert "AGENTRT_WRONG_KEY" in str(caught.value)
    assert "sk-wrong-key-77" not in str(caught.value)


def test_bad_request_carries_the_servers_message(vllm, api_key_env):
    ep = endpoint(vllm.base_url, api_key_env=api_key_env)
    with pytest.raises(EndpointStatusError) as caught:
        chat(ep, body(user(), max_tokens=100_000))
    assert caught.value.status == 400
    assert "max_model_len" in caught.value.server_message


def test_capacity_comes_from_vllm_metrics(vllm, api_key_env):
    ep = endpoint(vllm.base_url, api_key_env=api_key_env)

    async def go():
        c = client(ep)
        monitor = CapacityMonitor(ep, c)
        try:
            return await monitor.refresh(), await monitor.read_max_model_len()
        finally:
            await c.aclose()

    reading, max_len = asyncio.run(go())
    assert (reading.source, reading.block_size, reading.kv_capacity_blocks) == \
        ("vllm /metrics", 32, 256)
    assert 0.0 <= reading.kv_usage <= 1.0
    assert reading.prefix_queries_tokens >= reading.prefix_hits_tokens >= 0
    assert max_len == 4096


def test_local_tokenizer_matches_the_server(vllm, realservers, api_key_env):
    local = LocalTokenizer.from_model_dir(realservers.model_dir)
    remote = ServerTokenizer(vllm.root_url, "scripted")
    history = user() + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 21 C"}]
    try:
        for tools in (None, [WEATHER_TOOL, TIME_TOOL]):
            ids = local.encode_prompt(history, tools)
            assert ids == remote.encode_prompt(history, tools)
    finally:
        remote.close()
    ep = endpoint(vllm.base_url, api_key_env=api_key_env)
    served = chat(ep, body(history, tools=[WEATHER_TOOL, TIME_TOOL], max_tokens=4))
    assert served.usage.prompt_tokens == len(ids)


@pytest.mark.parametrize("session_key", ["session_id", "prompt_cache_key"])
def test_server_hints_reach_the_server(vllm, api_key_env, session_key):
    """vLLM 0.32 with --scheduling-policy priority takes `priority` and `session_id`
    (and ignores `prompt_cache_key`, which it does not know)."""
    from agentrt.runtime.engines.openai.body import chat_body
    from tests.realserver.helpers import request

    ep = endpoint(vllm.base_url, api_key_env=api_key_env, stream=False,
                  hints={"priority": "lower_first", "session_key": session_key})
    req = request("hint-1", user(), max_tokens=4)
    req.priority = (2.5, 7)
    payload = chat_body(req, ep)
    assert payload["priority"] == 2500 and payload[session_key] == "p0/s0"
    assert chat(ep, payload).usage.completion_tokens == 4
