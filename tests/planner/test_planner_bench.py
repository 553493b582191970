import json

import pytest

from agentrt.runtime.bench.planning import GridSpec, main, markdown, run_grid
from agentrt.runtime.cli import main as agentrt


def test_grid_reports_completion_latency_and_budget(capsys):
    spec = GridSpec(planners=("mcpp", "cheapest", "knapsack"), budgets=(1.0, 4.0),
                    deadlines=(2.0, 5.0), programs=4, rollouts=64)
    result = run_grid(spec)
    assert len(result.ok) == 2 * 2 * 2 * len(spec.planners)
    assert result.programs_run == 2 * 2 * 2 * 3 * 4
    assert result.over_budget == 0 and result.max_spend_ratio <= 1.0
    text = markdown(result)
    assert "| planner | plan p50 ms | plan p99 ms | plan calls |" in text
    assert "mean MCPP - best baseline" in text and "MCPP - each baseline" in text


def test_main_writes_the_table_json_and_heat_map(tmp_path, capsys):
    main(["--programs", "3", "--budgets", "2", "--deadlines", "3", "--rollouts", "32",
          "--workloads", "codeflow", "--planners", "mcpp,cheapest", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "| mcpp |" in printed  # planner latency is printed, not asserted
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["over_budget"] == 0 and "mcpp" in data["latency_ms"]
    assert (tmp_path / "table.md").read_text().startswith("### codeflow")
    assert (tmp_path / "planner_heatmap.png").stat().st_size > 0


def test_agentrt_bench_runs_the_planner_grid_on_planning_workloads(tmp_path, capsys):
    status = agentrt(["bench", "--workload", "codeflow,proofflow", "--policies",
                      "mcpp,cheapest,knapsack", "--programs", "3", "--budgets", "1,4",
                      "--deadlines", "2,5", "--rollouts", "32", "--out", str(tmp_path)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "MCPP planning latency (N = 32): p50" in printed
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["spec"]["planners"] == ["mcpp", "cheapest", "knapsack"]
    assert data["spec"]["workloads"] == ["codeflow", "proofflow"]
    assert len(data["completion"]) == 2 * 2 * 2 * 3 and data["over_budget"] == 0
    assert set(data["summary"]) == {"codeflow", "proofflow"}
    assert (tmp_path / "planner_heatmap.png").stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["--workload", "codeflow", "--policies", "mcpp,magic"], "unknown planner 'magic'"),
    (["--workload", "codeflow,swe"], "run on their own"),
    (["--workload", "codeflow", "--policies", "cheapest,mcpp"], "'mcpp' followed by"),
])
def test_agentrt_bench_planning_input_errors_exit_2(tmp_path, capsys, argv, message):
    assert agentrt(["bench", *argv, "--programs", "2", "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("planners", [("mcpp",), ("cheapest", "mcpp")])
def test_grid_needs_mcpp_first_and_a_baseline(planners):
    with pytest.raises(ValueError, match="'mcpp' followed by the baselines"):
        run_grid(GridSpec(planners=planners, programs=2))


def test_told_the_truth_states_the_hidden_truth_as_an_exact_prior():
    from agentrt.programs.workloads.planning import generate_planning, told_the_truth
    task = generate_planning("proofflow", 1, 5)[0]
    told = told_the_truth(task)
    for s, t in zip(task.subtasks, told.subtasks):
        assert t.prior == t.truth == s.truth and s.prior != s.truth
    assert told.prior_strength == 10_000 and told.length_uncertainty == 0
    assert task.subtasks[0].prior != task.subtasks[0].truth  # the original is untouched


def test_mcpp_told_truth_is_flagged_and_only_changes_mcpp(tmp_path, capsys):
    argv = ["bench", "--workload", "codeflow", "--policies", "mcpp,cheapest", "--programs",
            "4", "--budgets", "2,8", "--deadlines", "3", "--rollouts", "32", "--no-plots"]
    assert agentrt([*argv, "--out", str(tmp_path / "a")]) == 0
    assert agentrt([*argv, "--mcpp-told-truth", "--out", str(tmp_path / "b")]) == 0
    assert "MCPP was told the hidden truth" in capsys.readouterr().out
    a, b = (json.loads((tmp_path / x / "result.json").read_text()) for x in "ab")
    assert b["spec"]["mcpp_told_truth"] and not a["spec"]["mcpp_told_truth"]
    cheap = [[c["p"] for c in d["completion"] if c["planner"] == "cheapest"] for d in (a, b)]
    assert cheap[0] == cheap[1]  # the baselines still see the priors
