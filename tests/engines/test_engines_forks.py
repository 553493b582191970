"""Forks (parallel samples of one prompt, `LLMRequest.fork_of`): the engine prefills the
prompt once and the other forks read its KV; requests behind a waiting fork still go."""
from __future__ import annotations

from agentrt.runtime.core.messages import RequestDone
from tests.engines.builders import drive, make_engine, make_request, synthetic_chain

PROMPT = 2000


def forks(k: int, fork: bool = True, prompt: int = PROMPT):
    chain = synthetic_chain("prompt", prompt)
    return [make_request(f"f{j}", chain, max_tokens=64, session=f"s~{j}", hint=32,
                         fork_of="f0" if fork and j else None) for j in range(k)]


def done_by_id(events):
    return {e.request_id: e for e in events if isinstance(e, RequestDone)}


def test_forks_prefill_the_prompt_once_and_share_it():
    engine = make_engine()
    done = done_by_id(drive(engine, [(0.0, r) for r in forks(4)]))
    assert done["f0"].cached_tokens == 0 and done["f0"].prefilled_tokens == PROMPT
    for j in (1, 2, 3):
        assert done[f"f{j}"].cached_tokens == PROMPT - 1  # the last token is recomputed
    assert engine.stats().prefix_miss_tokens == PROMPT + 3


def test_without_fork_of_requests_admitted_together_prefill_alone():
    engine = make_engine()
    done = done_by_id(drive(engine, [(0.0, r) for r in forks(4, fork=False)]))
    assert all(d.cached_tokens == 0 for d in done.values())


def test_a_waiting_fork_does_not_hold_back_other_requests():
    engine = make_engine()
    other = make_request("other", synthetic_chain("other", 64), max_tokens=8, hint=4)
    events = drive(engine, [(0.0, r) for r in forks(2)] + [(0.0, other)])
    order = [e.request_id for e in events if isinstance(e, RequestDone)]
    assert order.index("other") < order.index("f1")
