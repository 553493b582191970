"""`agentrt bench` as a user types it: small runs, fast."""
from __future__ import annotations

import json

from tests.e2e.test_cli import agentrt


def test_bench_prints_the_table_and_writes_json_markdown_and_plots(tmp_path):
    proc = agentrt("bench", "--programs", "12", "--workers", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "| swe | vllm-rr | 2 |" in proc.stdout and "| swe | agentrt | 2 |" in proc.stdout
    assert "peak memory" in proc.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    assert [c["policy"] for c in result["cells"]] == ["vllm-rr", "vllm-sticky", "agentrt"]
    metrics = result["cells"][0]["metrics"]
    for key in ("jct_mean", "jct_p50", "jct_p95", "jct_p99", "makespan",
                "throughput_calls_per_min", "kv_hit_rate", "reprefilled_tokens",
                "gpu_busy_fraction", "queue_wait_mean", "jct_over_lower_bound_mean"):
        assert key in metrics
    assert (tmp_path / "table.md").read_text().startswith("| workload |")
    assert (tmp_path / "swe-2w.png").stat().st_size > 10_000


def test_bench_replays_a_trace_file(tmp_path):
    proc = agentrt("bench", "--trace", "examples/traces/sample.jsonl", "--workers", "2",
                   "--policies", "agentrt", "--no-plots", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "| trace | agentrt | 2 |" in proc.stdout


def test_a_bad_trace_line_is_named_with_its_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"program_id": "p", "steps": [{"step_id": "s", "turns": '
                   '[{"input_tokens": 10, "output_tokens": 0}]}]}\n')
    proc = agentrt("bench", "--trace", str(bad), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "bad.jsonl line 1: steps[0].turns[0].output_tokens" in proc.stderr


def test_unknown_policy_sets_and_workloads_list_the_valid_ones(tmp_path):
    proc = agentrt("bench", "--policies", "magic", "--out", str(tmp_path))
    assert proc.returncode == 2 and "vllm-rr" in proc.stderr
    proc = agentrt("bench", "--workload", "chess", "--out", str(tmp_path))
    assert proc.returncode == 2 and "swe" in proc.stderr


def test_gittins_cells_keep_their_size_history_and_a_later_run_starts_from_it(tmp_path):
    first = tmp_path / "first"
    proc = agentrt("bench", "--programs", "16", "--workers", "2", "--policies",
                   "agentrt-sched,agentrt-gittins", "--seed", "1", "--no-plots",
                   "--out", str(first))
    assert proc.returncode == 0, proc.stderr
    kept = list((first / "size-history").glob("*.jsonl"))  # (and its .lock)
    assert [p.name for p in kept] == ["swe-agentrt-gittins-2-workers-seed-1.jsonl"]
    learned = kept[0].read_text().splitlines()
    assert len(learned) == 16  # every finished program; the non-Gittins cell keeps none
    assert all(json.loads(line)["calls"] >= 1 for line in learned)

    second = tmp_path / "second"
    proc = agentrt("bench", "--programs", "16", "--workers", "2", "--policies",
                   "agentrt-gittins", "--seed", "2", "--no-plots", "--out", str(second),
                   "--size-history", str(kept[0]))
    assert proc.returncode == 0, proc.stderr
    assert f"the Gittins queue starts from 16 finished programs in {kept[0]}" in proc.stderr
    grown = (second / "size-history" / "swe-agentrt-gittins-2-workers-seed-2.jsonl")
    lines = grown.read_text().splitlines()
    assert lines[:16] == learned and len(lines) == 32  # a copy, added to
    assert kept[0].read_text().splitlines() == learned  # the source is left as it was


def test_a_missing_or_bad_size_history_stops_the_run_before_any_cell(tmp_path):
    proc = agentrt("bench", "--policies", "agentrt-gittins", "--out", str(tmp_path),
                   "--size-history", str(tmp_path / "none.jsonl"))
    assert proc.returncode == 2
    assert "none.jsonl does not exist" in proc.stderr and "leave --size-history out" \
        in proc.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"v":1,"agent":"swe","features":null,"calls":"many"}\n')
    proc = agentrt("bench", "--policies", "agentrt-gittins", "--out", str(tmp_path),
                   "--size-history", str(bad))
    assert proc.returncode == 2
    assert "bad.jsonl, line 1: field 'calls' must be an integer >= 1" in proc.stderr
