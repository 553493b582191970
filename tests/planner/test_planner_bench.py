import json

import pytest

from runtime.bench.planning import GridSpec, main, markdown, run_grid


def test_grid_reports_completion_latency_and_budget(capsys):
    spec = GridSpec(budgets=(1.0, 4.0), deadlines=(2.0, 5.0), programs=6, rollouts=64)
    result = run_grid(spec)
    assert len(result.ok) == 2 * 2 * 2 * len(spec.planners)
    assert result.over_budget == 0 and result.max_spend_ratio <= 1.0
    text = markdown(result)
    assert "| planner | plan p50 ms | plan p99 ms | plan calls |" in text
    assert "mean MCPP - best baseline" in text and "MCPP - each baseline" in text


def test_main_writes_the_table_json_and_heat_map(tmp_path, capsys):
    main(["--programs", "3", "--budgets", "2", "--deadlines", "3", "--rollouts", "32",
          "--workloads", "codeflow", "--planners", "mcpp,cheapest", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "| mcpp |" in printed  # planner latency is printed, not asserted
    data = json.loads((tmp_path / "planning.json").read_text())
    assert data["over_budget"] == 0 and "mcpp" in data["latency_ms"]
    assert (tmp_path / "planner_heatmap.png").stat().st_size > 0


@pytest.mark.parametrize("planners", [("mcpp",), ("cheapest", "mcpp")])
def test_grid_needs_mcpp_first_and_a_baseline(planners):
    with pytest.raises(ValueError, match="'mcpp' followed by the baselines"):
        run_grid(GridSpec(planners=planners, programs=2))
