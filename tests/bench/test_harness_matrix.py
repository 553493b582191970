"""The bench harness's matrix options: several models, programs per worker, cluster
sizes sized by KV oversubscription."""
from __future__ import annotations

import argparse

import pytest

from agentrt.programs.workloads import generate
from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.bench.command import _bench_spec, add_bench_options
from agentrt.runtime.bench.harness import (
    BenchSpec,
    kv_capacity_tokens,
    mean_call_prompt_tokens,
    oversub_concurrency,
    run_bench,
)
from agentrt.runtime.bench.report import markdown_table


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_options(parser)
    return parser.parse_args(list(argv))


def test_mean_call_prompt_counts_prefix_earlier_turns_and_the_calls_own_input():
    step = StepSpec("s", [TurnSpec(100, 10, "t", 1.0), TurnSpec(50, 5)], prefix_tokens=1000)
    # call 1: 1000 + 100; call 2: 1000 + 100 + 10 + 50
    assert mean_call_prompt_tokens([ProgramSpec("p", [step])]) == (1100 + 1160) / 2


def test_oversubscription_sizes_the_closed_loop_from_kv_capacity_and_mean_prompt():
    programs = generate("swe", 40, 0)
    spec = BenchSpec(kv_oversub=2.0, sim={"model": "llama-3.1-8b", "tp": 1})
    n = oversub_concurrency(spec, programs, workers=8)
    expected = 2.0 * 8 * kv_capacity_tokens(spec) / mean_call_prompt_tokens(programs)
    assert n == round(expected)
    big = BenchSpec(kv_oversub=2.0, sim={"model": "llama-3.1-70b", "tp": 4})
    assert oversub_concurrency(big, programs, 8) != n  # sized per model


def test_models_and_programs_per_worker_make_one_row_group_each():
    spec = BenchSpec(workloads=["swe"], policies=["agentrt"], workers=[1, 2],
                     programs_per_worker=3, models=[("llama-3.1-8b", 1), ("llama-3.1-70b", 4)],
                     sim={"fuse_decode": True})
    cells = run_bench(spec)
    assert [(c.model, c.workers, c.result.metrics()["programs"]) for c in cells] == [
        ("llama-3.1-8b/tp1", 1, 3), ("llama-3.1-8b/tp1", 2, 6),
        ("llama-3.1-70b/tp4", 1, 3), ("llama-3.1-70b/tp4", 2, 6)]
    assert cells[2].result.config["model"] == "llama-3.1-70b" and cells[2].result.config["tp"] == 4
    table = markdown_table(cells)
    assert table.startswith("| model | workload |")
    assert "| llama-3.1-70b/tp4 | swe | agentrt | 2 |" in table
    assert "within SLO" in table and "slowdown spread" in table


def test_bad_matrix_options_name_the_fix():
    with pytest.raises(ValueError, match="one size for all or one per model"):
        _bench_spec(_args("--model", "llama-3.1-8b,llama-3.1-70b", "--tp", "1,4,8"))
    with pytest.raises(ValueError, match="comma-separated integers"):
        _bench_spec(_args("--tp", "four"))
    with pytest.raises(ValueError, match="--arrival closed"):
        _bench_spec(_args("--kv-oversub", "2", "--arrival", "poisson", "--rate", "1"))
    spec = _bench_spec(_args("--model", "llama-3.1-8b,llama-3.1-70b", "--tp", "1,4"))
    assert list(spec.models) == [("llama-3.1-8b", 1), ("llama-3.1-70b", 4)]


def test_a_concurrency_sweep_makes_one_row_group_per_load():
    spec = _bench_spec(_args("--workload", "swe", "--policies", "vllm-sticky,agentrt",
                             "--workers", "2", "--programs-per-worker", "3",
                             "--concurrency", "1,3"))
    cells = run_bench(spec)
    assert [(c.policy, c.in_flight, c.result.config["concurrency"]) for c in cells] == [
        ("vllm-sticky", 1, 2), ("agentrt", 1, 2), ("vllm-sticky", 3, 6), ("agentrt", 3, 6)]
    table = markdown_table(cells)
    assert "| in flight/worker |" in table.splitlines()[0]
    # 'vs first' compares within a load: each load's first row is 1.00x
    rows = [r for r in table.splitlines()[2:] if "| vllm-sticky |" in r]
    assert all(r.split("|")[-4].strip() == "1.00x" for r in rows)
    assert "in flight per worker" in cells[2].name


def test_bad_concurrency_sweeps_name_the_fix():
    with pytest.raises(ValueError, match="comma-separated integers"):
        _bench_spec(_args("--concurrency", "many"))
    with pytest.raises(ValueError, match="at least 1"):
        run_bench(_bench_spec(_args("--concurrency", "0,4", "--programs", "1")))
    with pytest.raises(ValueError, match="one --concurrency"):
        run_bench(_bench_spec(_args("--concurrency", "4,8", "--kv-oversub", "2")))
