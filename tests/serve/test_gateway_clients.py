"""Real clients, unmodified, against a running gateway: the OpenAI Python SDK (chat,
streaming, tools, tool_choice) and an OpenAI Agents SDK agent with two function tools.
Each program shows up as one agentrt program whose trace has its session's route and
the TTL decisions taken while its tools ran."""
from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.serve.conftest import MODEL

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

SEARCH = {"type": "function", "function": {"name": "search", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
FETCH = {"type": "function", "function": {"name": "fetch", "parameters": {
    "type": "object", "properties": {"url": {"type": "string"}}}}}


def client(gateway, **headers) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0,
                         default_headers=headers)


def end(gateway, program: str) -> dict:
    response = httpx.post(f"{gateway.base_url}/programs/{program}/end", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def spans(gateway, program: str) -> list[dict]:
    rows = gateway.program_trace(program)
    assert rows, f"no trace for {program}"
    return rows


def test_chat_whole_and_streamed(gateway):
    sdk = client(gateway, **{"X-Agentrt-Program": "chat-1"})
    messages = [{"role": "user", "content": "the quick brown fox"}]
    reply = sdk.chat.completions.create(model=MODEL, messages=messages, max_tokens=32)
    assert reply.choices[0].message.content == "echo: the quick brown fox"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.prompt_tokens_details.cached_tokens == 0  # first sight of it

    messages += [{"role": "assistant", "content": reply.choices[0].message.content},
                 {"role": "user", "content": "jumps over"}]
    stream = sdk.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                         stream_options={"include_usage": True})
    parts = list(stream)
    text = "".join(p.choices[0].delta.content or "" for p in parts if p.choices)
    assert text == "echo: jumps over"
    assert len([p for p in parts if p.choices]) > 2
    assert [p.choices[0].finish_reason for p in parts if p.choices][-1] == "stop"
    usage = parts[-1].usage
    # the second turn extends the first: its prompt is served from the cache
    assert usage.prompt_tokens_details.cached_tokens >= reply.usage.prompt_tokens // 16 * 16
    assert end(gateway, "chat-1")["status"] == "ended"
    chats = [s for s in spans(gateway, "chat-1") if s["name"] == f"chat {MODEL}"]
    assert len(chats) == 2
    assert len({s["attributes"]["agentrt.worker.id"] for s in chats}) == 1  # affinity


def test_tools_and_tool_choice(gateway):
    sdk = client(gateway, **{"X-Agentrt-Program": "tools-1"})
    messages = [{"role": "user", "content": "find the weather"}]
    first = sdk.chat.completions.create(model=MODEL, messages=messages, tools=[SEARCH, FETCH])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == ("search",
                                                            '{"query":"find the weather"}')
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    stream = sdk.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                         tools=[SEARCH, FETCH])
    deltas = [p.choices[0].delta for p in stream if p.choices]
    calls = [tc for d in deltas for tc in d.tool_calls or ()]
    assert calls[0].function.name == "fetch"
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"url":"find the weather"}'
    named = sdk.chat.completions.create(
        model=MODEL, messages=messages[:1], tools=[SEARCH, FETCH],
        tool_choice={"type": "function", "function": {"name": "fetch"}})
    assert named.choices[0].message.tool_calls[0].function.name == "fetch"
    none = sdk.chat.completions.create(model=MODEL, messages=messages[:1],
                                       tools=[SEARCH, FETCH], tool_choice="none")
    assert none.choices[0].message.content == "echo: find the weather"
    assert none.choices[0].message.tool_calls is None


def test_an_agents_sdk_agent_is_one_program_with_affinity_and_retention(gateway):
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)  # the SDK's own traces would go to OpenAI
    ran: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        ran.append("get_weather")
        time.sleep(0.2)
        return f"sunny in {city}"

    @agents.function_tool
    def convert_temperature(celsius: float) -> str:
        """Celsius to Fahrenheit."""
        ran.append("convert_temperature")
        time.sleep(0.1)
        return f"{celsius * 9 / 5 + 32} F"

    sdk = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="unused",
                             default_headers={"X-Agentrt-Program": "agent-1"})
    agent = agents.Agent(name="forecaster", instructions="Answer with the tools.",
                         tools=[get_weather, convert_temperature],
                         model=agents.OpenAIChatCompletionsModel(model=MODEL,
                                                                 openai_client=sdk))
    first = agents.Runner.run_sync(agent, "weather in Paris?")
    assert first.final_output.startswith("done: sunny in weather in Paris?")
    follow_up = first.to_input_list() + [{"role": "user", "content": "and in Rome?"}]
    second = agents.Runner.run_sync(agent, follow_up)
    assert second.final_output.startswith("done: sunny in and in Rome?")
    assert ran == ["get_weather", "convert_temperature"] * 2
    end(gateway, "agent-1")

    rows = spans(gateway, "agent-1")
    roots = [r for r in rows if r["parent_span_id"] is None]
    assert len(roots) == 1  # one program
    assert roots[0]["attributes"]["agentrt.program.end_reason"] == "endpoint"
    assert roots[0]["attributes"]["agentrt.program.calls"] == 6
    chats = sorted((r for r in rows if r["name"] == f"chat {MODEL}"), key=lambda r: r["start_ns"])
    assert len(chats) == 6
    routes = [next(e for e in c["events"] if e["name"] == "session_route")["attributes"]
              for c in chats]
    assert routes[0]["first_call"] and all(r["same_worker"] for r in routes[1:])
    pins = [e["attributes"] for c in chats for e in c["events"] if e["name"] == "kv_pin"]
    assert [p["tool"] for p in pins] == ["get_weather", "convert_temperature"] * 2
    assert all(p["worker_id"] == routes[0]["worker_id"] for p in pins)
    gaps = [r for r in rows if r["name"].startswith("execute_tool ")]
    assert [g["attributes"]["gen_ai.tool.name"] for g in sorted(gaps, key=lambda g: g["start_ns"])
            ] == ["get_weather", "convert_temperature"] * 2
    assert all(g["attributes"]["agentrt.tool.duration_s"] >= 0.1 for g in gaps)
    # the duration model learned from the gaps: later decisions cite observations
    assert pins[-1]["duration_samples"] >= 1


def test_programs_end_by_header_and_by_idle_timeout(gateway):
    sdk = client(gateway, **{"X-Agentrt-Program": "short-1"})
    sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "a"}],
                                extra_headers={"X-Agentrt-Program-End": "true"})
    root = [r for r in spans(gateway, "short-1") if r["parent_span_id"] is None]
    assert root[0]["attributes"]["agentrt.program.end_reason"] == "header"

    client(gateway, **{"X-Agentrt-Program": "idle-1"}).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "a"}])
    deadline = time.monotonic() + 20
    while not gateway.program_trace("idle-1") and time.monotonic() < deadline:
        time.sleep(0.25)
    root = [r for r in spans(gateway, "idle-1") if r["parent_span_id"] is None]
    assert root[0]["attributes"]["agentrt.program.end_reason"] == "idle"
    missing = httpx.post(f"{gateway.base_url}/programs/nobody/end", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_budgets_and_deadlines_from_headers(gateway):
    sdk = client(gateway, **{"X-Agentrt-Program": "budget-1", "X-Agentrt-Budget-Tokens": "20"})
    messages = [{"role": "user", "content": "one two three"}]
    reply = sdk.chat.completions.create(model=MODEL, messages=messages)
    assert reply.usage.total_tokens <= 20
    with pytest.raises(openai.RateLimitError) as info:
        sdk.chat.completions.create(model=MODEL, messages=messages * 4)
    assert info.value.code == "insufficient_quota"
    assert info.value.response.headers["x-should-retry"] == "false"

    # Past its deadline a program stays ended for calls naming it, before the reaper
    # ends it (the call's own check) and after (the gateway remembers the id).
    late = client(gateway, **{"X-Agentrt-Program": "late-1", "X-Agentrt-Deadline-S": "0.3"})
    late.chat.completions.create(model=MODEL, messages=messages)
    deadline = time.monotonic() + 20
    while not gateway.program_trace("late-1") and time.monotonic() < deadline:
        time.sleep(0.1)
    root = [r for r in spans(gateway, "late-1") if r["parent_span_id"] is None]
    assert root[0]["attributes"]["agentrt.program.end_reason"] == "deadline"
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as info:
            late.chat.completions.create(model=MODEL, messages=messages)
        assert info.value.status_code == 504 and info.value.code == "deadline_exceeded"


def test_models_health_and_metrics(gateway):
    models = client(gateway).models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert httpx.get(gateway.url + "/health", timeout=30).json()["status"] == "ok"
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(gateway.url + "/metrics", timeout=30).text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"agentrt_gateway_call_seconds", "agentrt_worker_kv_used_blocks",
            "agentrt_worker_kv_pinned_blocks", "agentrt_scheduler_queued_calls",
            "agentrt_gateway_programs_in_flight", "agentrt_worker_prefix_hit_ratio",
            "agentrt_gateway_spend_usd", "agentrt_gateway_queue_wait_seconds"} <= names
