"""`agentrt run` as a user types it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENTRT = [sys.executable, "-m", "agentrt.runtime.cli"]


def agentrt(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*AGENTRT, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_prints_the_summary_with_every_program_done(tmp_path):
    proc = agentrt("run", "examples/coding_agent.py", "--programs", "6", "--workers", "2",
                   "--time-scale", "0.1", "--trace-dir", str(tmp_path),
                   "--stealing", "--steal-kv", "network")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "programs      6 done, 0 failed" in out
    for label in ("job completion time mean", "p50", "p99", "LLM calls", "from cache",
                  "prefilled", "tool calls", "tool time", "simulated GPU", "trace"):
        assert label in out
    [trace] = tmp_path.glob("*/trace.jsonl")
    assert str(trace) in out and trace.stat().st_size > 0
    assert "6/6 programs" in proc.stderr  # the progress bar


def test_missing_file_is_a_clear_error():
    proc = agentrt("run", "examples/no_such_file.py")
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_bad_options_name_the_valid_choices(tmp_path):
    proc = agentrt("run", "examples/coding_agent.py", "--queue", "lifo")
    assert proc.returncode == 2
    assert "unknown queue policy 'lifo'" in proc.stderr and "program_fcfs" in proc.stderr
    proc = agentrt("run", "examples/coding_agent.py", "--model", "gpt-9")
    assert proc.returncode == 2
    assert "unknown model 'gpt-9'" in proc.stderr and "Llama-3.1-8B" in proc.stderr


def test_steal_kv_without_stealing_says_what_to_add():
    proc = agentrt("run", "examples/coding_agent.py", "--steal-kv", "nvlink")
    assert proc.returncode == 2
    assert "add --stealing" in proc.stderr


def test_a_file_without_a_workload_says_how_to_define_one(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    proc = agentrt("run", str(path))
    assert proc.returncode == 2
    assert "define exactly one" in proc.stderr and "Workload(" in proc.stderr
