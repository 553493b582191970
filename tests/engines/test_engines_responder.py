"""Responders: deterministic given the rng, lengths within [1, max_tokens]."""
from __future__ import annotations

import random
import statistics

import pytest

from agentrt.runtime.core.messages import ToolCallSpec
from agentrt.runtime.engines import (
    FillerResponder, Responder, ScriptedReply, ScriptedResponder, SimpleTokenizer, make_responder,
)
from tests.engines.builders import make_request, synthetic_chain

CHAT = [{"role": "user", "content": "Summarise the logs."}]


def _request(max_tokens=4096, hint=None, messages=None):
    return make_request("r1", synthetic_chain("p", 100), max_tokens, hint=hint, messages=messages)


def test_filler_counted_lengths_are_lognormal_with_the_asked_mean():
    responder = FillerResponder(mean_output_tokens=256, sigma=0.6)
    rng = random.Random(7)
    lengths = [responder.respond(_request(), rng).output_tokens for _ in range(4000)]
    assert statistics.fmean(lengths) == pytest.approx(256, rel=0.05)
    r = responder.respond(_request(), random.Random(1))
    assert (r.text, r.token_ids, r.tool_calls) == ("", None, [])


def test_filler_is_deterministic_given_the_rng_and_honours_caps_and_hints():
    responder = FillerResponder()
    a = responder.respond(_request(), random.Random(3))
    assert a == responder.respond(_request(), random.Random(3))
    capped = responder.respond(_request(max_tokens=5, hint=50), random.Random(3))
    assert (capped.output_tokens, capped.finish_reason) == (5, "length")
    assert responder.respond(_request(hint=17), random.Random(3)).output_tokens == 17
    assert responder.respond(_request(max_tokens=1), random.Random(3)).output_tokens == 1


@pytest.mark.parametrize("hint", [1, 2, 40])
def test_filler_with_messages_writes_text_of_exactly_that_many_tokens(hint):
    r = FillerResponder().respond(_request(hint=hint, messages=CHAT), random.Random(0))
    assert r.output_tokens == hint == len(r.token_ids)
    assert r.token_ids == SimpleTokenizer().encode_reply(r.text)


def _script(request, rng):
    if rng.random() < 2:  # always: a "decision" drawn from the rng
        return {"text": "Running the tests.", "tool_calls": [
            {"name": "run_tests", "arguments": {"path": "tests/", "k": "parser"}}]}
    return ScriptedReply()


def test_scripted_replies_carry_tool_calls_and_their_token_ids():
    responder = ScriptedResponder(_script)
    r = responder.respond(_request(messages=CHAT), random.Random(5))
    assert r.finish_reason == "tool_calls" and r.tool_calls[0].name == "run_tests"
    assert r.tool_calls[0].arguments == '{"k":"parser","path":"tests/"}'
    assert r.token_ids == SimpleTokenizer().encode_reply(r.text, r.tool_calls)
    assert r.output_tokens == len(r.token_ids)
    assert r == responder.respond(_request(messages=CHAT), random.Random(5))


def test_scripted_replies_over_max_tokens_are_cut():
    responder = ScriptedResponder(lambda req, rng: ScriptedReply(
        "one two three", [ToolCallSpec("c1", "t", "{}")]))
    cut_in_text = responder.respond(_request(max_tokens=2), random.Random(0))
    assert (cut_in_text.text, cut_in_text.output_tokens) == ("one two", 2)
    assert cut_in_text.tool_calls == [] and cut_in_text.finish_reason == "length"
    cut_in_calls = responder.respond(_request(max_tokens=5), random.Random(0))
    assert (cut_in_calls.text, len(cut_in_calls.token_ids)) == ("one two three", 5)


def test_registry_builds_defaults_and_rejects_unknown_names():
    assert isinstance(make_responder("filler", mean_output_tokens=10), Responder)
    with pytest.raises(ValueError, match="filler"):
        make_responder("oracle")
