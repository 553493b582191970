"""Workload generators: the shapes and statistics their docstrings promise, and determinism."""
from __future__ import annotations

import numpy as np
import pytest

from agentrt.programs.workloads import GENERATORS, generate


def turn_counts(name: str, seed: int, n: int = 2000) -> np.ndarray:
    return np.array([p.num_calls for p in generate(name, n, seed)])


def tool_durations(name: str, seed: int, n: int = 2000) -> np.ndarray:
    return np.array([t.tool_duration for p in generate(name, n, seed)
                     for s in p.steps for t in s.turns if t.tool is not None])


@pytest.mark.parametrize("seed", [0, 7])
def test_swe_has_about_11_turns_between_3_and_40(seed):
    turns = turn_counts("swe", seed)
    assert abs(turns.mean() - 11) <= 1
    assert turns.min() >= 3 and turns.max() <= 40


@pytest.mark.parametrize("seed", [0, 7])
def test_bfcl_has_about_6_turns_with_fast_tools(seed):
    assert abs(turn_counts("bfcl", seed).mean() - 6) <= 1
    assert tool_durations("bfcl", seed).max() <= 0.5


@pytest.mark.parametrize("seed", [0, 7])
def test_remote_tools_have_heavy_tails(seed):
    p95, p99 = np.percentile(tool_durations("remote", seed), [95, 99])
    assert 10 <= p95 <= 100
    assert 50 <= p99 <= 500


def test_generated_steps_never_call_a_tool_on_their_last_turn():
    for name in GENERATORS:
        for p in generate(name, 50, seed=2):
            assert all(s.turns[-1].tool is None for s in p.steps), p.program_id


def test_dag_is_plan_then_parallel_workers_then_merge():
    for p in generate("dag", 50, seed=4):
        plan, *workers, merge = p.steps
        assert 2 <= len(workers) <= 4
        assert plan.deps == () and all(w.deps == ("plan",) for w in workers)
        assert merge.deps == tuple(w.step_id for w in workers)
        assert {s.prefix_id for s in p.steps} == {"dag-system"}


@pytest.mark.parametrize("context_tokens", [8_000, 32_000, 128_000])
def test_oversub_contexts_reach_about_the_requested_size_without_sharing(context_tokens):
    programs = generate("oversub", 20, seed=1, context_tokens=context_tokens)
    sizes = [s.context_tokens() for p in programs for s in p.steps]
    assert all(abs(size - context_tokens) <= 0.1 * context_tokens for size in sizes)
    assert all(s.prefix_id is None for p in programs for s in p.steps)
    assert len({p.program_id for p in programs}) == 20


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_programs_other_seed_other_programs(name):
    assert generate(name, 40, seed=5) == generate(name, 40, seed=5)
    assert generate(name, 40, seed=5) != generate(name, 40, seed=6)


def test_unknown_generator_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown workload 'sw'; valid: \['bfcl', 'dag'"):
        generate("sw", 1)
