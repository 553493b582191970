"""Decision cost of the scheduler: microseconds per dispatched call.

    python -m runtime.core.bench_scheduler [--programs 10000] [--workers 64] ...

Keeps `programs` single-session programs in the scheduler at once (one call each,
queued or in flight) across `workers` workers, and times, for every queue policy x
router, what the driver pays per call: `preempt` and `take` for a worker whose step
ended, then the `RequestDone`s of what it sent and the programs' next calls
(`on_event`, `submit`). Building requests and replies is left out of the timing.
Prints the median and 90th percentile over steps of (step time / calls dispatched).
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


@dataclass(slots=True)
class CostResult:
    queue: str
    router: str
    stealing: bool
    median_us: float
    p90_us: float
    dispatched: int


def _request(p: _Program, now: float, rng: np.random.Generator) -> LLMRequest:
    new_tokens = int(rng.integers(50, 400))
    p.chain.extend_synthetic(stable_hash("in", p.program_id, p.turn), new_tokens)
    return LLMRequest(request_id=f"{p.program_id}#{p.turn}", program_id=p.program_id,
                      session_id=p.program_id, model="m", prefix=p.chain.copy(),
                      max_tokens=256, program_arrival=p.arrival, tenant=p.tenant)


def _done(r: LLMRequest, worker_id: str, now: float, seconds: float) -> RequestDone:
    return RequestDone(request_id=r.request_id, session_id=r.session_id,
                       program_id=r.program_id, worker_id=worker_id, finished_at=now,
                       prompt_tokens=r.prompt_tokens, cached_tokens=0,
                       prefilled_tokens=r.prompt_tokens, output_tokens=128,
                       dispatched_at=now - seconds, first_scheduled_at=now - seconds)


def measure(queue: str, router: str, programs: int = 10_000, workers: int = 64,
            dispatches: int = 20_000, stealing: bool = False, seed: int = 0) -> CostResult:
    """Time one policy pair (see the module docstring)."""
    rng = np.random.default_rng(seed)
    s = Scheduler(queue, router, dispatch_window=8,
                  stealing=StealConfig() if stealing else None)
    worker_ids = [f"w{i}" for i in range(workers)]
    for worker_id in worker_ids:
        s.add_worker(worker_id)
    state: dict[str, _Program] = {}
    for i in range(programs):
        chain = TokenChain(16)
        chain.extend_synthetic(stable_hash("sys", i % 8), 1500)
        p = state[f"p{i}"] = _Program(f"p{i}", f"t{i % 3}", 0.0, chain)
        s.submit(_request(p, 0.0, rng), 0.0)
    per_call: list[float] = []
    now, sent_total, step = 1.0, 0, 0
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
                      sent_total)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--dispatches", type=int, default=20_000)
    parser.add_argument("--queues", nargs="*", default=sorted(QUEUE_POLICIES))
    parser.add_argument("--routers", nargs="*", default=sorted(ROUTERS))
    parser.add_argument("--seed", type=int, default=0)
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


if __name__ == "__main__":
    main()
