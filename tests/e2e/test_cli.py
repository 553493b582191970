"""`agentrt run` as a user types it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
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
    assert proc.stderr.strip().splitlines() == [
        "agentrt: --queue='lifo': unknown queue policy 'lifo'; valid: ['atlas', "
        "'fair_share', 'gittins', 'oracle_srpt', 'plas', 'program_fcfs', 'request_fcfs']"]
    proc = agentrt("run", "examples/coding_agent.py", "--workers", "0", "--ttl", "forever")
    assert proc.returncode == 2
    assert "validation error" not in proc.stderr and "pydantic" not in proc.stderr
    assert "--workers=0: input should be greater than or equal to 1" in proc.stderr
    assert "--ttl='forever': unknown TTL policy 'forever'" in proc.stderr
    proc = agentrt("run", "examples/coding_agent.py", "--model", "gpt-9")
    assert proc.returncode == 2
    assert "unknown model 'gpt-9'" in proc.stderr and "Llama-3.1-8B" in proc.stderr


def test_steal_kv_without_stealing_says_what_to_drop():
    proc = agentrt("run", "examples/coding_agent.py", "--no-stealing", "--steal-kv", "nvlink")
    assert proc.returncode == 2
    assert "drop --no-stealing" in proc.stderr


INVALID = """
from agentrt import program, step
from agentrt.runtime.workload import Workload

@step
def plan(ctx, goal):
    return goal

@program
def planner(goal):
    return plan({"goal": goal, "deadline": object()})  # not data: cannot travel

workload = Workload(program=planner, inputs=lambda i: {"goal": f"task {i}"})
"""


def test_an_invalid_program_fails_in_one_line_before_ray_starts(tmp_path):
    path = tmp_path / "invalid.py"
    path.write_text(INVALID)
    # An unreachable Ray address: starting Ray would fail differently, and slowly.
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1"}
    start = time.monotonic()
    proc = subprocess.run([*AGENTRT, "run", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("agentrt: invalid program 'planner': step 'plan': argument "
                           "`goal['deadline']` is a object")
    assert "Traceback" not in proc.stderr and time.monotonic() - start < 30


def test_the_python_api_validates_before_starting_ray(tmp_path):
    path = tmp_path / "invalid.py"
    path.write_text(INVALID + """
import ray, agentrt
from agentrt.programs import ProgramValidationError
try:
    agentrt.run(planner, [{"goal": "x"}])
except ProgramValidationError as exc:
    print("refused:", type(exc).__name__, "ray started:", ray.is_initialized())
""")
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "RAY_ADDRESS": "127.0.0.1:1"})
    assert "refused: ArgumentSerializationError ray started: False" in proc.stdout, \
        proc.stdout + proc.stderr


def test_a_file_without_a_workload_says_how_to_define_one(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    proc = agentrt("run", str(path))
    assert proc.returncode == 2
    assert "define exactly one" in proc.stderr and "Workload(" in proc.stderr
