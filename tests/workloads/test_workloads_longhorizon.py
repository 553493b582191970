"""The long-horizon generator reproduces the published figures it cites (within the
ranges below), keeps every call inside the model's window, and its features carry
information about session length."""
from __future__ import annotations

import numpy as np
import pytest

from agentrt.programs.workloads import generate
from agentrt.programs.workloads.describe import describe
from agentrt.programs.workloads.longhorizon import LLAMA_8B_CONTEXT


@pytest.fixture(scope="module", params=[0, 3])
def sessions(request):
    return generate("longhorizon", 1000, seed=request.param)


def test_sessions_look_like_the_published_traffic(sessions):
    s = describe(sessions)
    assert 33 <= s.calls_median <= 43  # vLLM: 33 (Codex), 43 (AgentX)
    assert 65_000 <= s.context_at_turn_30_median <= 90_000  # about 80K by turn 30
    assert 380 <= s.output_median <= 510  # AgentX: 444
    assert 150 <= s.new_tokens_p10_p50_p90[0] and s.new_tokens_p10_p50_p90[2] <= 5_000
    assert 1.0 <= s.tool_calls_per_call <= 1.3  # TraceLab: about 1.2 per round
    assert 0.38 <= s.subagent_share <= 0.50  # AgentX: 44%
    p50, p90 = s.think_p50_p90
    assert 60 <= p50 <= 110 and 900 <= p90 <= 1800  # TraceLab: 1.4 min, 20.6 min
    shell_p50, shell_p99 = s.tool_quantiles["shell"]  # a turn's calls together
    assert 0.7 <= shell_p50 <= 2.0 and 120 <= shell_p99 <= 600  # per call: 0.85 s, 235 s
    assert s.tool_quantiles["read"][0] <= 0.1  # per call: 36 ms


def test_every_call_fits_the_window_and_long_sessions_compact(sessions):
    s = describe(sessions)
    assert 120_000 <= s.context_max <= LLAMA_8B_CONTEXT
    assert 0.12 <= s.compaction_share <= 0.35  # more than at the sources' larger windows


def test_a_larger_window_compacts_about_as_often_as_published():
    s = describe(generate("longhorizon", 1000, seed=0, max_context=200_000))
    assert 180_000 <= s.context_max <= 200_000  # vLLM: beyond 180K at the longest
    assert 0.05 <= s.compaction_share <= 0.14  # TraceLab: 9.7%
    assert 110 <= s.input_output_ratio <= 160  # vLLM: 131:1


def test_features_are_logged_and_predict_length(sessions):
    kinds = np.array([p.features["task_kind"] for p in sessions])
    calls = np.array([p.num_calls for p in sessions])
    median = {k: np.median(calls[kinds == k]) for k in set(kinds)}
    assert median["question"] < median["bugfix"] < median["feature"] < median["refactor"]
    repo = np.array([p.features["repo_tokens"] for p in sessions], dtype=float)
    assert np.corrcoef(np.log(repo), np.log(calls))[0, 1] > 0.15
    assert {p.agent for p in sessions} == {"claude-code", "codex"}
    assert all(set(p.features) == {"task_kind", "repo_tokens", "prompt_tokens"}
               for p in sessions)


def test_subagents_fork_from_the_main_conversation_and_compaction_is_a_call(sessions):
    for p in sessions[:200]:
        main, *subs = p.steps
        assert all(s.prefix_id is None and s.deps == () for s in subs)
        assert p.spawned() == {s.step_id for s in subs}
        for k, turn in enumerate(main.turns):
            if turn.summary_tokens is not None:  # the call before summarised
                assert main.turns[k - 1].tool == "compact"
                assert main.turns[k - 1].output_tokens == turn.summary_tokens


def test_the_same_seed_gives_the_same_sessions():
    assert generate("longhorizon", 50, seed=9) == generate("longhorizon", 50, seed=9)
    assert generate("longhorizon", 50, seed=9) != generate("longhorizon", 50, seed=10)
