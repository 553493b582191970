"""Decision cost of the scheduler: microseconds per dispatched call.

    python -m agentrt.runtime.bench.scheduler_cost [--programs 10000] [--workers 64] ...

Keeps `programs` single-session programs in the scheduler at once (one call each,
queued or in flight) across `workers` workers, and times, for every queue policy x
router, what the driver pays per call: `preempt` and `take` for a worker whose step
ended, then the `RequestDone`s of what it sent and the programs' next calls
(`on_event`, `submit`). Building requests and replies is left out of the timing.
Prints the median and 90th percentile over steps of (step time / calls dispatched).

In the table the programs never end. The rows after it (`sized`) are the queues that
learn from program ends (`--sized`, default: gittins with each size predictor, and
oracle_srpt and atlas for reference): each program there has features (task kind,
repository size) and a size in calls that depends on them (lognormal, median 30 calls,
seeded); its last call ends it and a fresh program takes its place, so predictors
observe programs, refit and answer for new features all through the timing.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import numpy as np

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.queueing.registry import QUEUE_POLICIES
from agentrt.runtime.core.routing.registry import ROUTERS
from agentrt.runtime.core.scheduler import Scheduler
from agentrt.runtime.core.stealing import StealConfig


@dataclass(slots=True)
class _Program:
    program_id: str
    tenant: str
    arrival: float
    chain: TokenChain
    turn: int = 0
    size: int | None = None  # calls it makes (None: it never ends)
    features: dict | None = None


_KINDS = (("question", 0.35), ("bugfix", 0.9), ("feature", 1.4), ("refactor", 1.7))


def _program(i: int, now: float, rng: np.random.Generator, sized: bool) -> _Program:
    chain = TokenChain(16)
    chain.extend_synthetic(stable_hash("sys", i % 8), 1500)
    if not sized:
        return _Program(f"p{i}", f"t{i % 3}", now, chain)
    kind, factor = _KINDS[int(rng.integers(len(_KINDS)))]
    repo = int(300_000 * np.exp(1.2 * rng.standard_normal()))
    size = int(np.clip(30 * factor * (repo / 300_000) ** 0.25
                       * np.exp(0.55 * rng.standard_normal()), 2, 400))
    return _Program(f"p{i}", f"t{i % 3}", now, chain, size=size,
                    features={"task_kind": kind, "repo_tokens": repo})


@dataclass(slots=True)
class CostResult:
    queue: str
    router: str
    stealing: bool
    median_us: float
    p90_us: float
    dispatched: int
    programs_ended: int = 0


def _request(p: _Program, now: float, rng: np.random.Generator) -> LLMRequest:
    new_tokens = int(rng.integers(50, 400))
    p.chain.extend_synthetic(stable_hash("in", p.program_id, p.turn), new_tokens)
    return LLMRequest(request_id=f"{p.program_id}#{p.turn}", program_id=p.program_id,
                      session_id=p.program_id, model="m", prefix=p.chain.copy(),
                      max_tokens=256, program_arrival=p.arrival, tenant=p.tenant,
                      agent="coder", features=p.features, program_calls_hint=p.size,
                      last_call=p.size is not None and p.turn + 1 == p.size)


def _done(r: LLMRequest, worker_id: str, now: float, seconds: float) -> RequestDone:
    return RequestDone(request_id=r.request_id, session_id=r.session_id,
                       program_id=r.program_id, worker_id=worker_id, finished_at=now,
                       prompt_tokens=r.prompt_tokens, cached_tokens=0,
                       prefilled_tokens=r.prompt_tokens, output_tokens=128,
                       dispatched_at=now - seconds, first_scheduled_at=now - seconds)


def measure(queue: str, router: str, programs: int = 10_000, workers: int = 64,
            dispatches: int = 20_000, stealing: bool = False, seed: int = 0,
            sized: bool = False, queue_options: dict | None = None) -> CostResult:
    """Time one policy pair (see the module docstring)."""
    rng = np.random.default_rng(seed)
    s = Scheduler(queue, router, dispatch_window=8, queue_options=queue_options,
                  stealing=StealConfig() if stealing else None)
    worker_ids = [f"w{i}" for i in range(workers)]
    for worker_id in worker_ids:
        s.add_worker(worker_id)
    state: dict[str, _Program] = {}
    for i in range(programs):
        p = state[f"p{i}"] = _program(i, 0.0, rng, sized)
        if p.size is not None:  # mid-way through, so that programs end from the start
            p.turn = int(rng.integers(p.size))
        s.submit(_request(p, 0.0, rng), 0.0)
    per_call: list[float] = []
    now, sent_total, step, started = 1.0, 0, 0, programs
    while sent_total < dispatches:
        worker_id = worker_ids[step % workers]
        step += 1
        now += 0.001
        t0 = time.perf_counter_ns()
        s.preempt(worker_id, now)
        sent = s.take(worker_id, now)
        t1 = time.perf_counter_ns()
        if not sent:
            continue
        dones, nexts = [], []
        for r in sent:
            dones.append(_done(r, worker_id, now, float(rng.exponential(2.0))))
            p = state[r.program_id]
            if r.last_call:  # it ends; a fresh program takes its place
                del state[r.program_id]
                p = state[f"p{started}"] = _program(started, now, rng, sized)
                started += 1
            else:
                p.chain.extend_synthetic(stable_hash("out", r.request_id), 128)
                p.turn += 1
            nexts.append(_request(p, now, rng))
        t2 = time.perf_counter_ns()
        for done in dones:
            s.on_event(done, now)
        for r in nexts:
            s.submit(r, now)
        t3 = time.perf_counter_ns()
        per_call.append((t1 - t0 + t3 - t2) / 1e3 / len(sent))
        sent_total += len(sent)
    deciles = statistics.quantiles(per_call, n=10)
    return CostResult(queue, router, stealing, statistics.median(per_call), deciles[-1],
                      sent_total, started - programs)


# The queues timed with programs that end (`--sized`): name, label, queue options.
SIZED = (("gittins", "gittins (loglinear)", {"predictor": "loglinear"}),
         ("gittins", "gittins (buckets)", {"predictor": "buckets"}),
         ("oracle_srpt", "oracle_srpt", {}), ("atlas", "atlas", {}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--dispatches", type=int, default=20_000)
    parser.add_argument("--queues", nargs="*", default=sorted(QUEUE_POLICIES))
    parser.add_argument("--routers", nargs="*", default=sorted(ROUTERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sized", nargs="*", default=[label for _, label, _ in SIZED],
                        help="rows with programs that end (labels of SIZED; none: skip)")
    args = parser.parse_args(argv)
    print(f"median (p90) microseconds per dispatched call; {args.programs} programs, "
          f"{args.workers} workers")
    print(f"{'queue':<14}" + "".join(f"{r:>20}" for r in args.routers))
    for queue in args.queues:
        cells = []
        for router in args.routers:
            r = measure(queue, router, args.programs, args.workers, args.dispatches,
                        seed=args.seed)
            cells.append(f"{r.median_us:.1f} ({r.p90_us:.1f})")
        print(f"{queue:<14}" + "".join(f"{c:>20}" for c in cells))
    for queue in args.queues:
        r = measure(queue, "sticky", args.programs, args.workers, args.dispatches,
                    stealing=True, seed=args.seed)
        print(f"{queue:<14}{'sticky + stealing':>20}{r.median_us:>12.1f} ({r.p90_us:.1f})")
    for queue, label, options in SIZED:
        if label not in args.sized:
            continue
        r = measure(queue, "sticky", args.programs, args.workers, args.dispatches,
                    seed=args.seed, sized=True, queue_options=options)
        print(f"sized: {label:<20} sticky {r.median_us:>8.1f} ({r.p90_us:.1f})  "
              f"{r.programs_ended} programs ended and were replaced")


if __name__ == "__main__":
    main()
