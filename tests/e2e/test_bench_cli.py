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
