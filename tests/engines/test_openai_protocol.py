"""The OpenAI engine's pure parts, no server: SSE framing, completion parsing and
streamed tool-call assembly, retry decisions, Retry-After, /metrics parsing, request
bodies and configuration errors. (Everything that talks HTTP is tested against a
real server in tests/realserver.)"""
from __future__ import annotations

import asyncio
import random
from email.utils import formatdate

import pytest
from pydantic import ValidationError

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.engines.base import EngineRefused
from agentrt.runtime.engines.openai import OpenAIEndpoint
from agentrt.runtime.engines.openai.body import chat_body, priority_value
from agentrt.runtime.engines.openai.completion import StreamAssembler, parse_completion
from agentrt.runtime.engines.openai.errors import (
    EndpointProtocolError, EndpointStatusError, EndpointTimeout, server_message,
)
from agentrt.runtime.engines.openai.metrics import (
    CapacityError, parse_prometheus, sglang_capacity, vllm_capacity,
)
from agentrt.runtime.engines.openai.prefix_memory import PrefixMemory
from agentrt.runtime.engines.openai.retry import RetryPolicy, parse_retry_after
from agentrt.runtime.engines.openai.sse import sse_data

URL = "http://127.0.0.1:9/v1/chat/completions"


async def _lines(items):
    for item in items:
        yield item


def events(lines: list[str]) -> list[str]:
    async def go():
        return [d async for d in sse_data(_lines(lines))]
    return asyncio.run(go())


def test_sse_joins_data_lines_and_skips_comments_and_other_fields():
    assert events([": keep-alive", "", "event: x", "data: {\"a\":", "data:1}", "",
                   "id: 7", "data: [DONE]", ""]) == ['{"a":\n1}', "[DONE]"]


def test_sse_yields_an_event_left_open_at_the_end():
    assert events(["data: last"]) == ["last"]


def chunks(*deltas, finish="tool_calls", usage=(10, 3, 4)):
    out = [{"id": "c1", "model": "m", "choices": [{"index": 0, "delta": d}]} for d in deltas]
    out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    out.append({"choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                         "prompt_tokens_details": {"cached_tokens": usage[2]}}})
    return out


def assemble(items) -> StreamAssembler:
    a = StreamAssembler(URL, clock=iter(range(100)).__next__)
    for item in items:
        a.add(item)
    return a


def test_streamed_tool_calls_assemble_by_index():
    result = assemble(chunks(
        {"role": "assistant", "content": ""},
        {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "get_weather"}},
                        {"index": 0, "function": {"arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "get_", "arguments": ""}}]},
        {"tool_calls": [{"index": 1, "function": {"name": "time", "arguments": "{}"}},
                        {"index": 0, "function": {"arguments": '"Paris"}'}}]})).result()
    assert [(c.call_id, c.name, c.arguments) for c in result.tool_calls] == \
        [("a", "get_weather", '{"city": "Paris"}'), ("b", "get_time", "{}")]
    assert (result.finish_reason, result.text, result.first_token_at) == ("tool_calls", "", 0)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens,
            result.usage.cached_tokens, result.usage.cached_reported) == (10, 3, 4, True)


def test_streamed_text_concatenates():
    result = assemble(chunks({"content": "Hel"}, {"content": "lo"}, finish="stop")).result()
    assert (result.text, result.finish_reason, result.response_id) == ("Hello", "stop", "c1")


def test_a_stream_without_finish_reason_or_usage_is_a_protocol_error():
    with pytest.raises(EndpointProtocolError, match="without a finish_reason"):
        assemble(chunks({"content": "x"})[:1]).result()
    with pytest.raises(EndpointProtocolError, match="no usage"):
        assemble(chunks({"content": "x"})[:-1]).result()


def test_an_error_inside_a_stream_is_a_status_error():
    with pytest.raises(EndpointStatusError) as caught:
        assemble([{"error": {"message": "engine died", "code": 500}}])
    assert caught.value.status == 500 and caught.value.retryable
    assert "engine died" in str(caught.value)


def test_a_plain_completion_parses():
    body = {"id": "x", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"content": None, "tool_calls": [
                {"id": "t", "type": "function",
                 "function": {"name": "f", "arguments": {"k": 1}}}]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    result = parse_completion(body, URL)
    assert [(c.call_id, c.name, c.arguments) for c in result.tool_calls] == [("t", "f", '{"k": 1}')]
    assert (result.text, result.usage.cached_tokens, result.usage.cached_reported) == ("", 0, False)


@pytest.mark.parametrize("body, missing", [
    ({}, "no choices"), ({"choices": []}, "no choices"),
    ({"choices": [{"finish_reason": "stop"}]}, "no message"),
    ({"choices": [{"message": {"content": "x"}}]}, "no finish_reason"),
    ({"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]}, "no usage"),
    ({"choices": [{"message": {"tool_calls": [{"function": {}}]}, "finish_reason": "stop"}]},
     "no function name"),
])
def test_a_completion_missing_fields_names_what_is_missing(body, missing):
    with pytest.raises(EndpointProtocolError, match=missing) as caught:
        parse_completion(body, URL)
    assert URL in str(caught.value) and "OpenAI-compatible" in str(caught.value)


def test_server_messages_are_found_and_redacted():
    assert server_message(b'{"error": {"message": "bad key sk-1"}}', ("sk-1",)) == \
        "bad key [redacted]"
    assert server_message(b'{"object": "error", "message": "m"}') == "m"
    assert server_message(b'{"detail": [{"loc": 1}]}') == '[{"loc": 1}]'
    assert server_message(b"plain text") == "plain text"
    assert server_message(b"") is None


def test_backoff_is_full_jitter_under_a_doubling_ceiling():
    policy, rng = RetryPolicy(max_attempts=10, base_delay_s=0.5, max_delay_s=3.0), random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (8, 3.0)]:
        draws = [policy.backoff(attempt, rng) for _ in range(200)]
        assert 0.0 <= min(draws) and max(draws) <= ceiling
        assert max(draws) > 0.8 * ceiling  # jitter spans the range
    assert [RetryPolicy().backoff(2, random.Random(7)) for _ in range(2)] == \
        [RetryPolicy().backoff(2, random.Random(7))] * 2  # seeded: reproducible


def status(code: int, retry_after: float | None = None) -> EndpointStatusError:
    return EndpointStatusError(URL, "failed", fix="-", status=code, retry_after_s=retry_after)


@pytest.mark.parametrize("code, retryable", [(400, False), (401, False), (404, False),
                                             (408, True), (409, True), (429, True),
                                             (500, True), (503, True)])
def test_which_statuses_are_retried(code, retryable):
    decision = RetryPolicy().decide(status(code), 1, 0.0, random.Random(0))
    assert decision.retry is retryable


def test_retries_stop_at_max_attempts_and_at_max_elapsed():
    policy, rng = RetryPolicy(max_attempts=3, max_elapsed_s=5.0), random.Random(0)
    timeout = EndpointTimeout(URL, "slow", fix="-")
    assert policy.decide(timeout, 2, 0.0, rng).retry
    assert policy.decide(timeout, 3, 0.0, rng).reason == "retry.max_attempts=3 reached"
    hinted = policy.decide(status(429, retry_after=2.0), 1, 0.0, rng)
    assert (hinted.retry, hinted.delay_s, hinted.reason) == (True, 2.0, "Retry-After")
    late = policy.decide(status(429, retry_after=2.0), 1, 3.5, rng)
    assert not late.retry and "max_elapsed_s=5" in late.reason


def test_retry_after_reads_seconds_dates_and_milliseconds():
    now = 1_700_000_000.0
    assert parse_retry_after({"retry-after": "3"}, now) == 3.0
    assert parse_retry_after({"retry-after": formatdate(now + 7, usegmt=True)}, now) == 7.0
    assert parse_retry_after({"retry-after": formatdate(now - 7, usegmt=True)}, now) == 0.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}, now) == 0.25
    assert parse_retry_after({"retry-after": "soon"}, now) is None
    assert parse_retry_after({}, now) is None


METRICS = """# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="32",engine="0",num_gpu_blocks="128",note="a \\"q\\""} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 640.0
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 320.0
vllm:num_requests_running{engine="0",model_name="m"} 2.0
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0 1700000000000
"""


def test_vllm_metrics_give_capacity_and_use():
    reading = vllm_capacity(METRICS, "http://h/metrics")
    assert (reading.block_size, reading.kv_capacity_blocks, reading.kv_capacity_tokens) == \
        (32, 128, 4096)
    assert (reading.kv_usage, reading.prefix_queries_tokens, reading.prefix_hits_tokens,
            reading.running, reading.waiting) == (0.25, 640.0, 320.0, 2, 1)
    labels = parse_prometheus(METRICS, "h")["vllm:cache_config_info"][0].labels
    assert labels["note"] == 'a "q"'


@pytest.mark.parametrize("text, message", [
    ("vllm:kv_cache_usage_perc 0.1\n", "no vllm:cache_config_info"),
    ('vllm:cache_config_info{block_size="32"} 1\n', "lacks a numeric num_gpu_blocks"),
    ("# HELP x\nthis is not a sample line\n", "line 2 is not a Prometheus sample"),
    ("vllm:x 1.0.0\n", "line 1 has value"),
])
def test_unreadable_metrics_say_what_and_how_to_fix(text, message):
    with pytest.raises(CapacityError, match=message) as caught:
        vllm_capacity(text, "http://h/metrics")
    assert "http://h/metrics" in str(caught.value) and "Fix:" in str(caught.value)


def test_sglang_server_info_gives_capacity():
    reading = sglang_capacity(b'{"max_total_num_tokens": 1000, "page_size": 1}', "u", 16)
    assert (reading.block_size, reading.kv_capacity_blocks) == (1, 1000)
    assert sglang_capacity(b'{"max_total_num_tokens": 1000}', "u", 16).kv_capacity_blocks == 62
    with pytest.raises(CapacityError, match="max_total_num_tokens"):
        sglang_capacity(b'{"version": "0.4"}', "u", 16)


def endpoint(**options) -> OpenAIEndpoint:
    return OpenAIEndpoint(base_url="http://127.0.0.1:8000/v1/", model="m", **options)


def llm(messages=(), **fields) -> LLMRequest:
    return LLMRequest("r1", "p", "p/s", "m", TokenChain.from_tokens([1, 2, 3]), 16,
                      messages=list(messages) if messages is not None else None, **fields)


def test_the_body_is_openais_shape_with_sampling_passed_through():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    body = chat_body(llm([{"role": "user", "content": "hi"}], tools=tools,
                         sampling={"temperature": 0.0, "tool_choice": "required"}), endpoint())
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 16, "stream": True, "stream_options": {"include_usage": True},
                    "tools": tools, "temperature": 0.0, "tool_choice": "required"}
    plain = chat_body(llm([]), endpoint(stream=False, max_tokens_field="max_completion_tokens"))
    assert "stream_options" not in plain and plain["max_completion_tokens"] == 16


def test_hints_follow_each_servers_dialect():
    req = llm([], priority=(1.5, 3))
    vllm = chat_body(req, endpoint(hints={"priority": "lower_first", "session_key": "session_id"}))
    assert (vllm["priority"], vllm["session_id"]) == (1500, "p/s")
    sglang = chat_body(req, endpoint(hints={"priority": "higher_first",
                                            "session_key": "prompt_cache_key"}))
    assert (sglang["priority"], sglang["prompt_cache_key"]) == (-1500, "p/s")
    assert "priority" not in chat_body(req, endpoint())
    assert priority_value((), 1000) == 0 and priority_value(("x",), 1000) == 0
    assert priority_value((float("inf"),), 1000) == (1 << 63) - 1


@pytest.mark.parametrize("request_, message", [
    (llm(None), "needs a conversation"),
    (llm([], sampling={"stream": False, "model": "x"}), r"\['model', 'stream'\]"),
])
def test_requests_the_engine_cannot_send_are_refused(request_, message):
    with pytest.raises(EngineRefused, match=message):
        chat_body(request_, endpoint())


@pytest.mark.parametrize("options, message", [
    ({"base_url": "127.0.0.1:8000"}, "must be an http:// or https:// URL"),
    ({"api_key_env": "sk-live-abc"}, "names an environment variable"),
    ({"capacity": "configured"}, "needs kv_capacity_tokens"),
    ({"capacity": "metrics"}, "'auto', 'vllm', 'sglang', 'configured' or 'none'"),
    ({"retry": {"max_attempts": 0}}, "greater than or equal to 1"),
    ({"hints": {"priority": "high"}}, "'off', 'lower_first' or 'higher_first'"),
])
def test_configuration_errors_name_the_option_and_the_valid_values(options, message):
    fields = {"base_url": "http://h:1/v1", "model": "m", **options}
    with pytest.raises(ValidationError, match=message):
        OpenAIEndpoint(**fields)


def test_server_root_drops_the_api_suffix():
    assert endpoint().base_url == "http://127.0.0.1:8000/v1"
    assert endpoint().server_root == "http://127.0.0.1:8000"


def test_prefix_memory_forgets_least_recently_used_blocks():
    memory = PrefixMemory(capacity_blocks=4)
    a = TokenChain.from_tokens(list(range(48)), block_size=16)  # 3 blocks
    b = TokenChain.from_tokens([7] * 32, block_size=16)  # 2 other blocks
    memory.remember(a)
    assert memory.cached_tokens(a) == 48
    memory.remember(b)  # 5 blocks > 4: a's first block goes
    assert memory.cached_tokens(a) == 0 and memory.cached_tokens(b) == 32
