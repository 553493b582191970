"""The scheduler actor under load on local Ray: its added latency per call and the
bytes a call carries, at turn 1 and turn 30 of a session.

    python -m agentrt.runtime.bench.ray_load [--programs 1000] [--workers 16]
        [--time-scale 0.1] [--long-every 10] [--long-turns 32] [--short-turns 4]
        [--concurrency 128 | --rate R] [--json OUT]

Replays `programs` counted programs (one agent session each) on `workers` simulated
H100 workers serving llama-3.1-8b, either closed-loop (all arrive at 0, at most
`concurrency` running at once: the load is what the runtime can take) or open-loop
(`--rate`: program i arrives i / R wall seconds in, none held back: the same offered
load for any version of the runtime). One program in `long_every` runs `long_turns`
turns (so turn 30 exists),
the others `short_turns`; each turn is 200-600 input and 60-200 output tokens after a
shared 2,000-token system prompt, and every turn but the last calls a tool of 0.2-1.0
model seconds. Seeded: every run replays the same programs.

Printed, from the scheduler actor's load probe (`runtime.cluster.load_probe`):

- added latency per call, p50 and p99, ending when the scheduler's flush for that call
  is done (its dispatch command, if it could go, has left), starting when the call
  reached the scheduler (its method started in the actor: "in actor") and when the
  caller sent it ("from send": adds Ray's hop and the wait in the actor's event loop),
  for runners' LLM calls ("chat") and workers' reports ("report");
- the calls the scheduler handled: chats, and reports per chat;
- bytes per call at turn 1 and turn 30 (median over the sessions that reached it), on
  each hop: runner -> scheduler (the encoded call) and scheduler -> worker (the encoded
  command that sends it).

The workers are simulated (no GPU) and share the machine's cores with the scheduler,
the runners and this process; figures are of this machine, not of a GPU cluster.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from typing import Any

import ray

from agentrt.programs.workloads import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig

SIZE_TURNS = (0, 29)  # turn 1 and turn 30 (request ids count turns from 0)


def workload(programs: int, long_every: int, long_turns: int, short_turns: int,
             seed: int = 0, spacing_s: float = 0.0) -> list[ProgramSpec]:
    """The programs (see the module docstring); program i arrives at i x `spacing_s`
    run seconds."""
    rng = random.Random(seed)
    specs = []
    for i in range(programs):
        n = long_turns if i % long_every == 0 else short_turns
        turns = [TurnSpec(rng.randint(200, 600), rng.randint(60, 200),
                          *((rng.choice(("grep", "bash", "edit")),
                             round(rng.uniform(0.2, 1.0), 3)) if t < n - 1 else ()))
                 for t in range(n)]
        specs.append(ProgramSpec(f"p{i:05d}", [StepSpec("solve", turns, prefix_id="sys",
                                                         prefix_tokens=2000)],
                                 arrival=i * spacing_s))
    return specs


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(figures: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"calls": figures["calls"]}
    for start, name in (("in_actor", "in_actor"), ("latency", "from_send")):
        for kind, samples in figures.get(start, {}).items():
            out[f"{kind}_{name}_ms"] = {"p50": 1e3 * _percentile(samples, 0.50),
                                        "p99": 1e3 * _percentile(samples, 0.99),
                                        "samples": len(samples)}
    for turn in SIZE_TURNS:
        sizes = [hops for rid, hops in figures["sizes"].items()
                 if rid.rpartition("#")[2] == str(turn)]
        out[f"turn{turn + 1}_bytes"] = {
            hop: statistics.median(h[hop] for h in sizes if hop in h)
            if any(hop in h for h in sizes) else None
            for hop in ("runner", "worker")} | {"sessions": len(sizes)}
    chats = figures["calls"].get("chat", 0)
    out["reports_per_chat"] = figures["calls"].get("report", 0) / chats if chats else None
    return out


def run(programs: int, workers: int, time_scale: float, long_every: int, long_turns: int,
        short_turns: int, concurrency: int, runners: int = 2,
        rate: float | None = None) -> dict[str, Any]:
    spacing = 1.0 / rate / time_scale if rate else 0.0  # run seconds between arrivals
    specs = workload(programs, long_every, long_turns, short_turns, spacing_s=spacing)
    config = RuntimeConfig(workers=workers, time_scale=time_scale, runners=runners,
                           max_concurrent_programs=programs if rate else concurrency,
                           trace_dir=tempfile.mkdtemp(prefix="ray-load-"))
    done = [0]

    def progress(n: int, total: int, _result: Any) -> None:
        done[0] = n
        if n % 100 == 0 or n == total:
            print(f"  {n}/{total} programs done", flush=True)

    with Runtime(config) as rt:
        rt.start()
        ray.get(rt.scheduler.reset_load_probe.remote(list(SIZE_TURNS)), timeout=60)
        start = time.time()
        report = rt.replay(specs, progress)
        wall = time.time() - start
        figures = ray.get(rt.scheduler.load_figures.remote(), timeout=120)
    statuses: dict[str, int] = {}
    for r in report.results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {"programs": programs, "workers": workers, "time_scale": time_scale,
            "load": f"open loop, {rate:g} programs/s" if rate else
            f"closed loop, {concurrency} programs at once",
            "llm_calls": sum(r.llm_calls for r in report.results), "statuses": statuses,
            "wall_s": wall, **summarize(figures)}


def render(result: dict[str, Any]) -> str:
    lines = [f"{result['programs']} programs ({result['llm_calls']} LLM calls, "
             f"{result['statuses']}, {result['load']}) on {result['workers']} simulated "
             f"workers, time scale {result['time_scale']:g}, {result['wall_s']:.1f} s wall",
             f"scheduler calls: {result['calls']}; reports per chat: "
             f"{result['reports_per_chat']:.2f}"]
    for kind in ("chat", "report"):
        for name, label in (("in_actor", "in actor"), ("from_send", "from send")):
            lat = result.get(f"{kind}_{name}_ms")
            if lat:
                lines.append(f"added latency per {kind} ({label}): p50 {lat['p50']:.2f} ms, "
                             f"p99 {lat['p99']:.2f} ms ({lat['samples']} calls)")
    for turn in SIZE_TURNS:
        b = result[f"turn{turn + 1}_bytes"]
        lines.append(f"bytes per call at turn {turn + 1} ({b['sessions']} sessions): "
                     f"runner->scheduler {b['runner']}, scheduler->worker {b['worker']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--long-every", type=int, default=10)
    parser.add_argument("--long-turns", type=int, default=32)
    parser.add_argument("--short-turns", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rate", type=float, help="open loop: programs per wall second")
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--json", help="also write the figures (with every sample "
                        "summarized) to this file")
    args = parser.parse_args(argv)
    result = run(args.programs, args.workers, args.time_scale, args.long_every,
                 args.long_turns, args.short_turns, args.concurrency, args.runners,
                 args.rate)
    print(render(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
