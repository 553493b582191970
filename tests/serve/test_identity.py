"""Program and session identity from what clients send, budgets and deadlines within
the key's, and which tool a gap between calls belongs to."""
from __future__ import annotations

import json

import pytest

from agentrt.runtime.serve.config import ApiKey
from agentrt.runtime.serve.errors import GatewayError
from agentrt.runtime.serve.identity import identify, last_tool, limits
from agentrt.runtime.serve.schema import parse_chat


def chat(**fields):
    return parse_chat(json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                  **fields}).encode())


def test_headers_win_over_fields():
    who = identify({"x-agentrt-program": "p", "x-session-id": "s"},
                   chat(user="u", prompt_cache_key="k", metadata={"agentrt_program": "m"}))
    assert (who.program, who.session) == ("p", "s")
    assert (who.program_source, who.session_source) == ("header x-agentrt-program",
                                                        "header x-session-id")


def test_fields_clients_already_send():
    who = identify({}, chat(user="alice", prompt_cache_key="conv-1"))
    assert (who.program, who.session) == ("alice", "conv-1")
    who = identify({}, chat(metadata={"program_id": "p", "session_id": "s"}, user="u"))
    assert (who.program, who.session, who.program_source) == ("p", "s", "metadata.program_id")


def test_one_name_serves_for_both():
    assert identify({}, chat(prompt_cache_key="k")).program == "k"
    assert identify({"x-agentrt-program": "p"}, chat()).session == "p"


def test_a_call_naming_nothing_is_a_program_of_its_own():
    who = identify({}, chat())
    assert who.anonymous and who.end_program and who.end_session


def test_end_flags():
    who = identify({"x-agentrt-program": "p", "x-agentrt-program-end": "true"}, chat())
    assert who.end_program and who.end_session
    who = identify({"x-agentrt-program": "p", "x-agentrt-session-end": "1"}, chat())
    assert who.end_session and not who.end_program
    with pytest.raises(GatewayError, match="must be true or false"):
        identify({"x-agentrt-program": "p", "x-agentrt-program-end": "soon"}, chat())


def test_ids_must_be_printable_and_short():
    with pytest.raises(GatewayError, match="printable"):
        identify({"x-agentrt-program": "a\nb"}, chat())
    with pytest.raises(GatewayError, match="at most 256"):
        identify({}, chat(user="u" * 300))


def test_limits_from_headers_never_exceed_the_keys():
    key = ApiKey.from_secret("t", "k" * 20, budget_usd=1.0, deadline_s=60)
    got = limits({"x-agentrt-budget-usd": "5", "x-agentrt-deadline-s": "10",
                  "x-agentrt-budget-tokens": "100"}, key)
    assert (got.budget_usd, got.deadline_s, got.budget_tokens) == (1.0, 10.0, 100)
    assert limits({}, key).budget_usd == 1.0
    assert limits({}, None).budget_usd is None
    for bad in ("-1", "nan", "inf", "ten"):
        with pytest.raises(GatewayError, match="x-agentrt-budget-usd"):
            limits({"x-agentrt-budget-usd": bad}, None)


def call(name, call_id="c1"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def test_the_gap_belongs_to_the_last_tool_call_when_results_follow():
    messages = [{"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [call("search"), call("fetch", "c2")]},
                {"role": "tool", "tool_call_id": "c1", "content": "a"},
                {"role": "tool", "tool_call_id": "c2", "content": "b"}]
    assert last_tool(messages) == "fetch"
    # a user turn after the results: the gap was the user's, not a tool's
    assert last_tool(messages + [{"role": "user", "content": "more"}]) is None
    assert last_tool([{"role": "user", "content": "x"}]) is None
    assert last_tool([{"role": "assistant", "content": "hi"},
                      {"role": "tool", "tool_call_id": "c", "content": "?"}]) is None
