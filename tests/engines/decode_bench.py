"""CPU time per simulated output token of one engine on an agent-shaped workload.

    .venv/bin/python -m tests.engines.decode_bench [sessions turns growth output]

Sessions of `turns` turns each (default 64 x 11): every turn appends `growth` tokens
(default 2000: the reply and a tool result) to the session's prompt and decodes
`output` tokens (default 200); between turns the session waits for a tool
(exponential, mean 1 s) while a pin holds its prefix. A small loop drives the engine
on a virtual clock, once stepping one iteration per call and once passing the next
arrival as the horizon so that pure-decode runs are fused. Prints both rates;
`test_engines_fused_decode.py` runs a small instance without timing it.
"""
from __future__ import annotations

import heapq
import math
import random
import sys
import time
from dataclasses import dataclass

from agentrt.runtime.core.messages import RequestDone
from agentrt.runtime.engines import FillerResponder, SimulatedEngine
from tests.engines.builders import chain_after, make_engine, make_request, synthetic_chain


@dataclass(slots=True)
class BenchResult:
    cpu_s: float  # process time: steadier than wall time on a shared machine
    output_tokens: int
    iterations: int
    calls: int
    virtual_s: float

    @property
    def us_per_token(self) -> float:
        return 1e6 * self.cpu_s / self.output_tokens


@dataclass(frozen=True, slots=True)
class Workload:
    sessions: int = 64
    turns: int = 11
    growth: int = 2000  # prompt tokens added per turn, the reply included
    output: int = 200


def run_sessions(
    engine: SimulatedEngine, work: Workload = Workload(), fused: bool = True, seed: int = 0,
) -> BenchResult:
    """Drive `engine` through `work`; `fused` passes horizons to `step`."""
    rng = random.Random(seed)
    system = synthetic_chain("system", 2000)
    sent, queue = {}, []

    def push(t: float, session: int, turn: int, prefix) -> None:
        req = make_request(f"s{session}-t{turn}", prefix, work.output,
                           session=f"s{session}", hint=work.output)
        sent[req.request_id] = (req, turn)
        heapq.heappush(queue, (t, req.request_id))

    for s in range(work.sessions):
        push(rng.uniform(0, 2), s, 0, synthetic_chain(f"task{s}", 300, base=system))
    start, now, tokens, calls = time.process_time(), 0.0, 0, 0
    while True:
        while queue and queue[0][0] <= now:
            engine.submit(sent[heapq.heappop(queue)[1]][0], now)
        if not engine.has_work():
            if not queue:
                break
            now = queue[0][0]
            continue
        horizon = queue[0][0] if queue else math.inf
        result = engine.step(now, horizon) if fused else engine.step(now)
        now += result.duration
        calls += 1
        for ev in result.events:
            if isinstance(ev, RequestDone):
                tokens += ev.output_tokens
                _next_turn(engine, ev, sent, work, rng, now, push)
    cpu = time.process_time() - start
    return BenchResult(cpu, tokens, engine.stats().steps, calls, now)


def _next_turn(engine, done, sent, work, rng, now, push) -> None:
    req, turn = sent[done.request_id]
    if turn + 1 >= work.turns:
        engine.release(done.session_id, now)
        return
    prefix = chain_after(req, done)
    prefix.extend_synthetic(rng.getrandbits(62), max(1, work.growth - work.output))
    wait = rng.expovariate(1.0)
    engine.pin(done.session_id, chain_after(req, done), until=now + wait + 0.5, now=now)
    push(now + wait, int(done.session_id[1:]), turn + 1, prefix)


def main(work: Workload = Workload()) -> None:
    print(work)
    for fused in (False, True):
        engine = make_engine(responder=FillerResponder(), max_num_seqs=256)
        r = run_sessions(engine, work, fused)
        print(f"{'fused' if fused else 'single':6s}: {r.us_per_token:6.2f} us/token  "
              f"({r.output_tokens} tokens, {r.iterations} iterations in {r.calls} calls, "
              f"{r.cpu_s:.2f} s CPU, {r.virtual_s:.1f} s simulated)")


if __name__ == "__main__":
    main(Workload(*(int(a) for a in sys.argv[1:])))
