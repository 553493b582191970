"""`ray start --head` then `ray job submit --working-dir . -- python examples/...`:
the path users take to run agentrt on any Ray cluster."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_dashboard(env: dict, address: str, head: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start exited with {head.returncode}")
        probe = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address],
                               env=env, capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return
        time.sleep(2)
    raise TimeoutError("the Ray dashboard did not come up in 120 s")


@pytest.fixture
def head_node(tmp_path):
    """A Ray head node in its own process group, stopped (with everything it started)
    at the end. Token auth mode is set explicitly so client and cluster agree."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    gcs, dashboard = free_port(), free_port()
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", f"--port={gcs}",
         f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1", "--num-cpus=2",
         '--resources={"sim_gpu": 4}', "--disable-usage-stats", "--block"],
        env=env, stdout=open(tmp_path / "head.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        wait_for_dashboard(env, address, head)
        yield env, address
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=30)


def test_job_submit_round_trip(head_node, tmp_path):
    env, address = head_node
    for _ in range(30):
        proc = subprocess.run(
            [str(BIN / "ray"), "job", "submit", "--address", address, "--working-dir", ".",
             "--", "python", "examples/coding_agent.py", "--programs", "4", "--workers", "2",
             "--time-scale", "0.1", "--quiet", "--trace-dir", str(tmp_path / "runs")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        out = proc.stdout + proc.stderr
        # The dashboard answers before the node's job agent is up; Ray says to retry.
        if "No available agent to submit job" not in out:
            break
        time.sleep(2)
    assert proc.returncode == 0, out
    assert "succeeded" in out
    assert "programs      4 done, 0 failed" in out
    assert "attached to Ray at" in out
    assert list((tmp_path / "runs").glob("*/trace.jsonl"))
