"""A seeded chaos run on local Ray: actors and the driver killed at random moments, the
run resumed until every program has a final outcome, then what was lost counted.

    python -m agentrt.runtime.bench.chaos --seed 7 --programs 40 --workers 3

Each program is four deterministic steps on the simulated model, one of them a
side-effecting tool:

    draft (LLM) ─▶ publish (send: side effects, appends one line per real run) ─▶
        review (LLM) ─▶ summary (LLM)

Rounds (each its own driver process, so a driver kill is a real SIGKILL):

    1  kills a worker actor and a runner actor at seeded moments (seconds after the
       round's cluster is up), then the driver
       (SIGKILL of its process group; the run's local Ray goes with it)
    2  `resume`: kills a worker, a runner and the scheduler actor at seeded moments
    3+ `resume` without kills, until every program's outcome is final (at most --rounds)

A killed worker's calls run on the others; a killed runner fails its programs, a killed
scheduler every program in flight, and a killed driver leaves its programs unfinished;
none of those outcomes is final in the journal, so the next round resumes them.

At the end it prints, from the journal and the last round's results.jsonl: programs
done (succeeded), failed, resumed (attempt > 1); side-effecting calls run twice (lines
of the effects log per program beyond one); lost results (programs with no row, or
whose journaled steps are missing from a succeeded program's outputs); and the checks
each round ran (workers' KV integrity, token budgets never exceeded).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import agentrt
from agentrt.runtime.bench.processes import processes_with_env

DIR_ENV = "AGENTRT_CHAOS_DIR"
BUDGET_TOKENS = 20_000


def _dir() -> Path:
    return Path(os.environ[DIR_ENV])


@agentrt.tool(side_effects=True, executor="inline")
def send(program: str, text: str) -> str:
    """Send a note: a real effect, one line in the effects log per execution."""
    with open(_dir() / "effects.log", "a") as f:
        f.write(f"{program}\n")
    return f"sent {len(text)} characters"


@agentrt.step(max_tokens=400)
async def draft(ctx, topic: str) -> dict:
    reply = await ctx.chat([{"role": "user", "content": f"Draft a note on {topic}."}])
    return {"draft": reply.text}


@agentrt.step(tools=[send])
async def publish(ctx, note: dict) -> dict:
    result = await ctx.call_tool({"id": "send-1", "type": "function", "function": {
        "name": "send", "arguments": {"program": ctx.program_id, "text": note["draft"]}}})
    return {"receipt": result.output, "ok": result.ok}


@agentrt.step(max_tokens=400)
async def review(ctx, note: dict, receipt: dict) -> dict:
    reply = await ctx.chat([{"role": "user", "content": f"Review: {note['draft']}"}])
    return {"review": reply.text, "receipt": receipt["receipt"]}


@agentrt.step(max_tokens=60)
async def summary(ctx, note: dict, checked: dict) -> dict:
    reply = await ctx.chat([{"role": "user", "content": f"Summarise: {checked['review']}"}])
    return {"summary": reply.text, "draft": note["draft"], "receipt": checked["receipt"]}


@agentrt.program(name="chaos_note", deadline_s=600, budget_tokens=BUDGET_TOKENS)
def chaos_note(topic: str):
    note = draft(topic)
    return summary(note, review(note, publish(note)))


# -- one round: a driver process ---------------------------------------------------------
def _round(args: argparse.Namespace) -> int:
    """Run (or resume) the programs, killing actors at the given moments."""
    from agentrt.runtime.cluster.driver import Runtime
    from agentrt.runtime.config import RuntimeConfig
    from agentrt.runtime.run_output import write_results

    import ray

    config = RuntimeConfig(workers=args.workers, runners=2, time_scale=1.0,
                           max_concurrent_programs=8, trace_dir=Path(args.dir) / "runs")
    kills = json.loads(args.kills)
    inputs = [{"topic": f"topic {i}"} for i in range(args.programs)]
    with Runtime(config, run_id=args.run_id) as rt:

        def chaos() -> None:
            # The cluster starts inside run(): kills are timed from its start, and the
            # controller times a driver kill from the same moment ("up").
            while rt._scheduler is None or not rt._workers or not rt._runners:
                time.sleep(0.05)
            started = time.monotonic()
            (Path(args.dir) / "up").touch()
            for at, kind, index in sorted(kills):
                time.sleep(max(0.0, at - (time.monotonic() - started)))
                actors = {"worker": rt._workers, "runner": rt._runners,
                          "scheduler": [rt._scheduler]}[kind]
                print(f"chaos: kill {kind} {index} at {time.monotonic() - started:.1f}s",
                      flush=True)
                ray.kill(actors[index % len(actors)], no_restart=True)

        threading.Thread(target=chaos, daemon=True).start()
        report = rt.run(chaos_note, inputs, resume=args.run_id if args.resume else None)
        integrity = "skipped (scheduler killed)"
        if not any(kind == "scheduler" for _, kind, _ in kills):
            rt.check_integrity()
            integrity = "ok"
    write_results(rt.run_dir, report)
    over = [r.program_id for r in report.results
            if r.prompt_tokens + r.output_tokens > BUDGET_TOKENS]
    print(json.dumps({"run_id": rt.run_id, "integrity": integrity, "over_budget": over,
                      "statuses": Counter(r.status for r in report.results)}), flush=True)
    return 0


# -- the controller ----------------------------------------------------------------------
def _driver(folder: Path, programs: int, workers: int, run_id: str, resume: bool,
            kills: list[tuple[float, str, int]]) -> subprocess.Popen:
    env = {**os.environ, DIR_ENV: str(folder)}
    env.pop("RAY_ADDRESS", None)
    argv = [sys.executable, "-m", "agentrt.runtime.bench.chaos", "--round", "--dir",
            str(folder), "--programs", str(programs), "--workers", str(workers),
            "--run-id", run_id, "--kills", json.dumps(kills)]
    if resume:
        argv.append("--resume")
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _run_processes(folder: Path) -> list[int]:
    return processes_with_env(DIR_ENV, str(folder))


def _wait_gone(folder: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _run_processes(folder):
        if time.monotonic() > deadline:
            for pid in _run_processes(folder):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            return
        time.sleep(0.2)


def _wait_up(folder: Path, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    """Until the round's cluster is up (its Ray start is not part of the chaos)."""
    deadline = time.monotonic() + timeout_s
    while not (folder / "up").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the round's driver never started its cluster (exit "
                               f"{proc.returncode}); its output:\n{proc.communicate()[0]}")
        time.sleep(0.1)


def _final_count(folder: Path, run_id: str) -> tuple[int, int]:
    import sqlite3

    path = folder / "runs" / run_id / "journal.sqlite"
    if not path.exists():
        return 0, 0
    with sqlite3.connect(path) as db:
        final = db.execute("SELECT count(*) FROM agentrt_programs WHERE is_final = 1")
        total = db.execute("SELECT count(*) FROM agentrt_programs")
        return final.fetchone()[0], total.fetchone()[0]


def chaos_run(seed: int, programs: int, workers: int, rounds: int,
              folder: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    run_id = f"chaos-{seed}"
    log: list[str] = []
    rounds_run = 0
    for number in range(1, rounds + 1):
        if number == 1:
            kills = [(rng.uniform(1.0, 6.0), "worker", rng.randrange(workers)),
                     (rng.uniform(3.0, 9.0), "runner", rng.randrange(2))]
            kill_driver_at = rng.uniform(10.0, 16.0)
        elif number == 2:
            kills = [(rng.uniform(1.0, 4.0), "worker", rng.randrange(workers)),
                     (rng.uniform(2.0, 6.0), "runner", rng.randrange(2)),
                     (rng.uniform(7.0, 12.0), "scheduler", 0)]
            kill_driver_at = None
        else:
            kills, kill_driver_at = [], None
        (folder / "up").unlink(missing_ok=True)
        proc = _driver(folder, programs, workers, run_id, number > 1, kills)
        try:
            if kill_driver_at is not None:
                _wait_up(folder, proc)
            out, _ = proc.communicate(timeout=kill_driver_at or 600)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=60)
            code = "killed"
            log.append(f"chaos: kill driver at {kill_driver_at:.1f}s")
        _wait_gone(folder)
        rounds_run = number
        log += [line for line in out.splitlines() if line.startswith(("chaos:", "{"))]
        final, total = _final_count(folder, run_id)
        log.append(f"round {number}: driver exit {code}; {final} of {programs} programs final"
                   f" in the journal ({total} started)")
        if final == programs:
            break
    return _tally(folder, run_id, programs, rounds_run, log)


def _tally(folder: Path, run_id: str, programs: int, rounds_run: int,
           log: list[str]) -> dict[str, Any]:
    results_path = folder / "runs" / run_id / "results.jsonl"
    rows = {}
    if results_path.exists():
        rows = {r["program_id"]: r for r in map(json.loads, results_path.read_text().splitlines())}
    expected = [f"chaos_note-{i:05d}" for i in range(programs)]
    effects_path = folder / "effects.log"
    effects = Counter(effects_path.read_text().splitlines()) if effects_path.exists() else Counter()
    status = Counter(rows[p]["status"] for p in expected if p in rows)
    succeeded = [p for p in expected if rows.get(p, {}).get("status") == "succeeded"]
    lost = [p for p in expected if p not in rows]
    lost += [p for p in succeeded if not (rows[p]["outputs"] or {}).get("receipt")]
    return {
        "programs": programs, "rounds": rounds_run, "done": status.get("succeeded", 0),
        "failed": sum(v for k, v in status.items() if k != "succeeded"),
        "resumed": sum(1 for p in expected if (rows.get(p, {}).get("attempt") or 1) > 1),
        "side_effects_twice": sum(1 for n in effects.values() if n > 1),
        "side_effects_missing": [p for p in succeeded if effects[p] == 0],
        "lost_results": lost, "log": log,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentrt.runtime.bench.chaos",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--programs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", help="folder for the run (default: a new temporary one)")
    parser.add_argument("--round", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument("--kills", default="[]", help=argparse.SUPPRESS)
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.round:
        return _round(args)
    folder = Path(args.dir or tempfile.mkdtemp(prefix="agentrt-chaos-")).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    tally = chaos_run(args.seed, args.programs, args.workers, args.rounds, folder)
    print(f"chaos run, seed {args.seed}: {args.programs} programs on {args.workers} "
          f"simulated workers, {tally['rounds']} rounds (folder {folder})")
    for line in tally["log"]:
        print(f"  {line}")
    print(f"programs done {tally['done']}, failed {tally['failed']}, resumed "
          f"{tally['resumed']}")
    print(f"side-effecting tools run twice: {tally['side_effects_twice']}; succeeded "
          f"without their effect: {len(tally['side_effects_missing'])}")
    print(f"lost results: {len(tally['lost_results'])} {tally['lost_results'] or ''}")
    bad = tally["side_effects_twice"] or tally["lost_results"] or tally["side_effects_missing"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
