"""What the durable journal adds to a program's steps, measured.

    python -m agentrt.runtime.bench.journal_cost [--steps 2000] [--concurrency 1,32]
                                                  [--url sqlite:///path.sqlite | postgresql://...]

Each measured operation is what a runner awaits on its event loop, through the journal's
own thread (`AsyncJournal`), against a fresh run in a fresh SQLite file (WAL, the
default) unless `--url` names another journal:

    step          ProgramJournal.record_step: a step's result packed and written
                  (first write wins); one per step of every program
    tool call     a side-effecting call's protocol (claim_tool before it runs, then
                  record_tool with its result): two writes per such call
    program       start_program then finish_program: one pair per program attempt

With `--concurrency N`, N programs record at once on one event loop (a runner's many
programs share one journal thread): a write's latency then includes its wait behind
the others. Figures are the wall time of each awaited call (p50, p99, in ms) on this
machine; the disk's fsync dominates SQLite's cost, so they vary with the storage.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from agentrt.runtime.journal import AsyncJournal, ProgramJournal, ToolKey, sqlite_url
from agentrt.runtime.journal import codec

RUN_ID = "bench"


def _result(size: int) -> dict:
    """A step result of about `size` bytes packed: plain data, as steps return."""
    return {"answer": "x" * size, "tokens": size // 4, "ok": True}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


async def _timed(samples: list[float], call) -> None:
    start = time.perf_counter()
    await call
    samples.append(time.perf_counter() - start)


async def measure(url: str, steps: int, concurrency: int, size: int) -> dict[str, list[float]]:
    """Per-operation latencies (seconds) of `steps` steps spread over `concurrency`
    programs recording at once; each program also makes one side-effecting tool call
    per step and starts and finishes once."""
    journal = AsyncJournal(url)
    await journal.call("open_run", RUN_ID, {"run_id": RUN_ID})
    out: dict[str, list[float]] = {"step": [], "tool call": [], "program": []}
    result = _result(size)
    packed_tool = codec.pack({"ok": True, "output": "sent", "error": None})
    per_program = max(1, steps // concurrency)

    async def program(index: int) -> None:
        pid = f"p{index:05d}"
        t0 = time.perf_counter()
        await journal.call("start_program", RUN_ID, pid, "bench", b"{}", "0" * 32, "0" * 16)
        started = time.perf_counter() - t0
        pj = ProgramJournal(journal, RUN_ID, pid, attempt=1)
        for step in range(per_program):
            await _timed(out["step"], pj.record_step(f"s{step}", result))
            key = ToolKey(pid, f"s{step}", 0, f"call-{step}")
            t0 = time.perf_counter()
            claimed = await journal.call("claim_tool", RUN_ID, key, "send", "digest")
            assert claimed is None, f"{key} claimed twice"
            await journal.call("record_tool", RUN_ID, key, "send", "digest", packed_tool)
            out["tool call"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await journal.call("finish_program", RUN_ID, pid, "succeeded", b"", True)
        out["program"].append(started + time.perf_counter() - t0)

    try:
        await asyncio.gather(*(program(i) for i in range(concurrency)))
        written = await journal.call("programs", RUN_ID)
        stored = sum([len(await journal.call("steps", RUN_ID, pid)) for pid in written])
        if stored != per_program * concurrency or len(written) != concurrency:
            raise AssertionError(f"the journal holds {stored} steps of {len(written)} "
                                 f"programs, {per_program * concurrency} of {concurrency} "
                                 f"were written")
    finally:
        journal.close()
    return out


def run(steps: int, concurrency: list[int], size: int, url: str | None) -> list[dict]:
    rows = []
    for n in concurrency:
        with tempfile.TemporaryDirectory(prefix="agentrt-journal-bench-") as tmp:
            target = url or sqlite_url(Path(tmp) / "journal.sqlite")
            samples = asyncio.run(measure(target, steps, n, size))
        for operation, values in samples.items():
            p50, p99 = _percentiles(values)
            rows.append({"journal": "sqlite (WAL)" if url is None else url.split(":", 1)[0],
                         "programs at once": n, "operation": operation,
                         "count": len(values), "p50_ms": p50, "p99_ms": p99})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentrt.runtime.bench.journal_cost",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,32",
                        help="programs recording at once, comma-separated")
    parser.add_argument("--result-bytes", type=int, default=512,
                        help="size of each step result")
    parser.add_argument("--url", help="journal URL (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    levels = [int(v) for v in args.concurrency.split(",")]
    rows = run(args.steps, levels, args.result_bytes, args.url)
    print(f"journal cost per operation ({args.steps} steps, results of "
          f"{args.result_bytes} bytes; wall time of each awaited call on this machine)")
    print(f"{'journal':<14}{'at once':>8}  {'operation':<10}{'count':>7}{'p50 ms':>9}"
          f"{'p99 ms':>9}")
    for r in rows:
        print(f"{r['journal']:<14}{r['programs at once']:>8}  {r['operation']:<10}"
              f"{r['count']:>7}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
