"""The request schema at the edge: strict OpenAI types, errors naming the field, the bad
value and the fix, and a parser that raises nothing but a 400 whatever the bytes."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.runtime.serve.errors import GatewayError
from agentrt.runtime.serve.schema import parse_chat

USER = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {
    "type": "object", "properties": {"q": {"type": "string"}}}}}]


def body(**fields) -> bytes:
    return json.dumps({"model": "m", "messages": USER, **fields}).encode()


def refused(data: bytes) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        parse_chat(data)
    assert info.value.status == 400
    return info.value


def test_a_valid_request_keeps_its_conversation_and_sampling_options():
    request = parse_chat(body(tools=TOOLS, tool_choice="auto", temperature=0.5, stream=True,
                              stream_options={"include_usage": True}, seed=3,
                              some_future_field={"x": 1}))
    assert request.messages_plain() == USER
    assert request.tools_plain() == TOOLS
    assert request.wants_stream and request.include_usage
    assert request.sampling_options() == {"temperature": 0.5, "seed": 3,
                                          "tool_choice": "auto"}


def test_max_completion_tokens_wins_over_the_deprecated_max_tokens():
    assert parse_chat(body(max_tokens=5, max_completion_tokens=7)).requested_max_tokens == 7
    assert parse_chat(body(max_tokens=5)).requested_max_tokens == 5


@pytest.mark.parametrize("data, param, words", [
    (b"{", None, "not valid JSON"),
    (b"[1]", None, "must be a JSON object"),
    (json.dumps({"messages": USER}).encode(), "model", "is required"),
    (body(messages=[]), "messages", "at least 1 item"),
    (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "'robot'"),
    (body(messages=[{"role": "user", "content": 5}]), "messages[0].content", "5"),
    (body(max_tokens="5"), "max_tokens", "valid integer"),
    (body(max_tokens=0), "max_tokens", "greater than or equal to 1"),
    (body(temperature=3), "temperature", "less than or equal to 2"),
    (body(stream="yes"), "stream", "valid boolean"),
    (body(messages=[{"role": "tool", "content": "x"}]), "messages[0]", "tool_call_id"),
    (body(tool_choice="required"), "tool_choice", "no tools are"),
    (body(tools=TOOLS, tool_choice="maybe"), "tool_choice", "'maybe'"),
    (body(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "other"}}),
     "tool_choice", "not among the tools sent"),
    (body(n=2), "n", "one choice per call"),
    (body(tools=[{"type": "function", "function": {"name": "bad name"}}]),
     "tools[0].function", "1-64 letters"),
])
def test_bad_requests_name_the_field_the_value_and_the_fix(data, param, words):
    error = refused(data)
    assert error.param == param
    assert words in error.message
    assert error.body()["error"]["type"] == "invalid_request_error"


def test_nesting_too_deep_is_a_400_not_a_crash():
    assert refused(b"[" * 100_000 + b"]" * 100_000).code == "invalid_json"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
request_like = st.fixed_dictionaries({}, optional={
    "model": json_values | st.just("m"), "messages": json_values | st.just(USER),
    "tools": json_values | st.just(TOOLS), "tool_choice": json_values,
    "max_tokens": json_values, "stream": json_values, "metadata": json_values,
    "stream_options": json_values, "n": json_values, "user": json_values})


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=64), json_values.map(lambda v: json.dumps(v).encode()),
                 request_like.map(lambda v: json.dumps(v).encode())))
def test_any_body_parses_or_is_a_400(data):
    try:
        parse_chat(data)
    except GatewayError as error:
        assert error.status == 400 and error.message
