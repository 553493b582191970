"""Resume, as a user meets it: `agentrt run` killed with SIGKILL mid-run (its local Ray
with it) then `--resume RUN_ID`; Ctrl-C and SIGTERM stopping a run with a partial
summary, results.jsonl and the command that resumes it (tests/e2e/resume_workload.py
holds programs at a gate, so the moment of the kill is chosen, not raced)."""
from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agentrt.runtime.bench.processes import processes_with_env

ROOT = Path(__file__).resolve().parents[2]
AGENTRT = [sys.executable, "-m", "agentrt.runtime.cli"]
WORKLOAD = "tests/e2e/resume_workload.py"
STEPS = ("draft", "publish", "wait_gate", "summary")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def start(folder: Path, *args: str) -> subprocess.Popen:
    """`agentrt run` in a session of its own (its local Ray processes join it)."""
    env = {**os.environ, "RESUME_TEST_DIR": str(folder)}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([*AGENTRT, "run", WORKLOAD, "--trace-dir", str(folder / "runs"),
                             "--quiet", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_for(predicate, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.2)


def run_processes(folder: Path) -> list[int]:
    """Processes of a run on `folder`: the driver and the local Ray it started."""
    return processes_with_env("RESUME_TEST_DIR", str(folder))


def kill_run(proc: subprocess.Popen, folder: Path) -> None:
    """SIGKILL the driver's process group, then wait until its local Ray is gone too
    (Ray's reaper takes it down after the driver, in a few seconds): a runner still
    alive could otherwise go on with the killed run's programs."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    wait_for(lambda: not run_processes(folder), "the killed run's Ray processes to exit", 60)


def journal_rows(folder: Path, query: str) -> list[tuple]:
    [journal] = (folder / "runs").glob("*/journal.sqlite")
    with sqlite3.connect(journal) as db:
        return db.execute(query).fetchall()


def held(folder: Path) -> bool:
    """Programs 0 and 1 finished (journaled), 2 to 5 are all waiting at the gate."""
    reached = folder / "reached"
    at_gate = {p.name for p in reached.iterdir()} if reached.is_dir() else set()
    if not {f"report-{i:05d}" for i in range(6)} <= at_gate:
        return False
    done = journal_rows(folder, "SELECT count(*) FROM agentrt_programs WHERE is_final = 1")
    return done == [(2,)]


def open_two(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for i in (0, 1):
        (folder / f"open-report-{i:05d}").touch()


def results(folder: Path) -> dict[str, dict]:
    [path] = (folder / "runs").glob("*/results.jsonl")
    return {row["program_id"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_a_run_killed_mid_way_resumes_only_its_unfinished_steps(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    open_two(killed)
    proc = start(killed)
    try:
        wait_for(lambda: held(killed), "two programs done and four at the gate")
    finally:
        kill_run(proc, killed)  # the driver and its local Ray, mid-run
    [run_dir] = (killed / "runs").iterdir()
    journaled = set(journal_rows(killed, "SELECT program_id, step_id FROM agentrt_steps"))
    before = Counter((killed / "steps.log").read_text().splitlines())
    assert len(journaled) == 2 * 4 + 4 * 2  # done: all 4 steps; at the gate: draft, publish
    assert not (run_dir / "results.jsonl").exists()

    (killed / "open").touch()
    code, out, err = finish(start(killed, "--resume", run_dir.name))
    assert code == 0, out + err
    assert "resumed       2 programs done before (from the journal), 4 resumed: 8 steps " \
           "from the journal, 8 re-run" in out

    after = Counter((killed / "steps.log").read_text().splitlines())
    rerun = after - before
    every = {(f"report-{i:05d}", step) for i in range(6) for step in STEPS}
    assert {tuple(line.split()) for line in rerun} == every - journaled  # only the rest
    assert sum(rerun.values()) == 8  # wait_gate (in flight at the kill) and summary, x4
    effects = Counter((killed / "effects.log").read_text().splitlines())
    assert effects == {f"report-{i:05d}": 1 for i in range(6)}  # no side effect twice

    rows = results(killed)
    assert [rows[f"report-{i:05d}"]["from_journal"] for i in range(6)] == [True] * 2 + [False] * 4
    assert [rows[f"report-{i:05d}"]["attempt"] for i in range(6)] == [1] * 2 + [2] * 4

    # Deterministic steps: the same outputs as a run that was never interrupted.
    reference.mkdir()
    (reference / "open").touch()
    code, out, err = finish(start(reference))
    assert code == 0, out + err
    want = {pid: row["outputs"] for pid, row in results(reference).items()}
    assert {pid: row["outputs"] for pid, row in rows.items()} == want

    # The resumed programs' root spans link to their first attempt's.
    spans = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    roots = {s["attributes"]["agentrt.program.id"]: s for s in spans
             if s["name"] == "invoke_workflow report"
             and s["attributes"].get("agentrt.program.attempt") == 2}
    assert sorted(roots) == [f"report-{i:05d}" for i in range(2, 6)]
    for root in roots.values():
        [link] = root["links"]
        assert link["trace_id"] == root["attributes"]["agentrt.resume.first_trace_id"]
        assert link["trace_id"] != root["trace_id"]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["sigint", "sigterm"])
def test_a_stop_signal_gives_a_partial_summary_and_the_resume_command(tmp_path, signum, code):
    open_two(tmp_path)
    proc = start(tmp_path)
    try:
        wait_for(lambda: held(tmp_path), "two programs done and four at the gate")
        proc.send_signal(signum)  # the driver only, as `ray job stop` or Ctrl-C reaches it
        returncode, out, err = finish(proc, timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert returncode == code, out + err
    assert "Traceback" not in err and "Traceback" not in out, err
    assert f"stopped       by {name}: 2 programs finished, 4 not finished" in out
    rows = results(tmp_path)
    assert Counter(r["status"] for r in rows.values()) == {"succeeded": 2, "interrupted": 4}
    assert f"results       {next((tmp_path / 'runs').glob('*/results.jsonl'))}" in out
    [command] = [line for line in out.splitlines() if line.startswith("resume with: ")]
    [run_dir] = (tmp_path / "runs").iterdir()
    assert command.endswith(f"--resume {run_dir.name}")
    if signum != signal.SIGTERM:
        return
    # The printed command resumes the run.
    (tmp_path / "open").touch()
    argv = shlex.split(command.removeprefix("resume with: "))
    assert argv[:2] == ["agentrt", "run"]
    env = {**os.environ, "RESUME_TEST_DIR": str(tmp_path)}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([*AGENTRT, *argv[1:]], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert Counter(r["status"] for r in results(tmp_path).values()) == {"succeeded": 6}
    effects = Counter((tmp_path / "effects.log").read_text().splitlines())
    assert effects == {f"report-{i:05d}": 1 for i in range(6)}
