"""Benchmark: what running a tool costs on each executor, and what asynchronous
preparation of tool resources saves.

    .venv/bin/python -m agentrt.runtime.bench.tool_overhead [--calls 200]
        [--programs 64] [--concurrency 16] [--prepare-s 0.5] [--llm-s 0.4] [--no-ray]

Part 1, per-call overhead: one trivial function (``textwrap.dedent`` on a short
string, microseconds of work) called one call at a time through ``ToolManager.call``
on each executor; the whole call is timed, so the figure is the executor's overhead.
``subprocess`` is shown twice: for a function of a standard-library module (the child
imports nothing else) and for a tool of a module that imports agentrt (``tool_probe``:
the child imports agentrt too, as it does for any tool declared with ``@agentrt.tool``
in the module of its function). Ray runs a local instance (2 CPUs); its first calls
(worker start) are not counted.

Part 2, program time with and without asynchronous preparation: the workload of
``prep_workload`` (each program needs a sandbox that takes ``--prepare-s`` to set up,
and makes ``turns`` LLM calls of ``--llm-s`` each) run with ``preparation="overlap"``
and ``"before_start"``, side by side.

Figures are printed, not asserted: they depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentrt.runtime.bench import tool_probe
from agentrt.runtime.bench.prep_workload import PrepWorkload, run_prep_comparison
from agentrt.toolmgr import ToolManager, ToolRegistry


@dataclass(slots=True)
class Overhead:
    """Per-call latency of one executor, in milliseconds."""

    label: str
    calls: int
    p50_ms: float
    p99_ms: float
    mean_ms: float


async def _time_calls(manager: ToolManager, name: str, calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        result = await manager.call(name, {"text": "  x"})
        assert result.ok, result.error
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        result = await manager.call(name, {"text": "  x"})
        times.append(time.perf_counter() - start)
        assert result.ok, result.error
    return times


def measure(label: str, fn: Callable[..., Any], executor: str, calls: int,
            warmup: int = 3) -> Overhead:
    registry = ToolRegistry()
    registry.register(fn, name="probe", executor=executor, timeout_s=120)
    manager = ToolManager(registry)
    try:
        times = asyncio.run(_time_calls(manager, "probe", calls, warmup))
    finally:
        manager.close()
    ms = np.array(times) * 1000
    return Overhead(label, calls, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)),
                    float(ms.mean()))


def executor_overheads(calls: int, with_ray: bool) -> list[Overhead]:
    rows = [
        measure("inline", textwrap.dedent, "inline", calls * 10),
        measure("thread", textwrap.dedent, "thread", calls * 10),
        measure("subprocess, stdlib function", textwrap.dedent, "subprocess", calls),
        measure("subprocess, agentrt tool module", tool_probe.probe.fn, "subprocess",
                max(3, calls // 4)),
    ]
    if with_ray:
        import ray

        started = not ray.is_initialized()
        if started:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            rows.append(measure("ray task", textwrap.dedent, "ray", calls, warmup=10))
        finally:
            if started:
                ray.shutdown()
    return rows


def overhead_table(rows: list[Overhead]) -> str:
    lines = [f"{'executor':<30} {'calls':>6} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}"]
    lines += [f"{r.label:<30} {r.calls:>6} {r.p50_ms:>9.3f} {r.p99_ms:>9.3f} {r.mean_ms:>9.3f}"
              for r in rows]
    return "\n".join(lines)


def prep_table(workload: PrepWorkload) -> str:
    runs = run_prep_comparison(workload)
    lines = [f"{'preparation':<14} {'programs':>8} {'mean s':>8} {'p50 s':>8} {'p99 s':>8} "
             f"{'max s':>8}"]
    for run in runs:
        t = np.array(run.times)
        lines.append(f"{run.preparation:<14} {len(t):>8} {t.mean():>8.3f} "
                     f"{np.percentile(t, 50):>8.3f} {np.percentile(t, 99):>8.3f} {t.max():>8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200,
                        help="timed calls per executor (x10 for inline and thread)")
    parser.add_argument("--programs", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--llm-s", type=float, default=0.4)
    parser.add_argument("--prepare-s", type=float, default=0.5)
    parser.add_argument("--cap", type=int, default=16, help="sandboxes at once")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}, per-call overhead of a trivial tool:")
    print(overhead_table(executor_overheads(args.calls, not args.no_ray)))
    workload = PrepWorkload(programs=args.programs, concurrency=args.concurrency,
                            turns=args.turns, llm_s=args.llm_s, prepare_s=args.prepare_s,
                            cap=args.cap)
    ideal = workload.turns * workload.llm_s
    print(f"\nprogram time, {workload.programs} programs ({workload.concurrency} at a time), "
          f"{workload.turns} LLM calls of {workload.llm_s}s each, sandbox setup "
          f"{workload.prepare_s}s, at most {workload.cap} sandboxes "
          f"(LLM time alone: {ideal:.2f}s):")
    print(prep_table(workload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
