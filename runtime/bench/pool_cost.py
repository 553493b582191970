"""Micro-benchmark: KV cache manager cost per LLM call on agent-shaped sessions.

    .venv/bin/python -m kvcache.bench_pool [sessions] [turns] [concurrency] [repeats]

Each session's prompt is a shared 1,500-token system prompt, a 3,000-token task, then
per turn the previous output (200 tokens) and about 2,000 new tokens (tool results),
so the last of 11 turns is about 27k tokens (1,700 blocks of 16). Calls run in waves
of `concurrency` sessions picked at random (seeded) among those with turns left: admit
all (allocate, commit the prompt), then for each append the output, commit, free.
Nothing holds a session between turns, so a turn whose chain survived takes it back
from free and gives it back at the end.

Two pools: "tight" is 1.5x the live working set (`concurrency` calls at the longest
context), so it keeps about a third of the sessions and evicts all along; "roomy"
keeps everything, so every turn after the first finds its whole chain cached.

Prints microseconds per call (all five operations) and, per turn, for `allocate` and
`free` alone, with the fresh blocks `allocate` took: the calls whose cost could grow
with the prefix. Only the manager's calls are timed; chains are built beforehand. The
workload is deterministic, so the fastest of `repeats` runs (default 5) is shown, to
damp noise from other work on the machine.
"""
from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field

from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.prefix import TokenChain, stable_hash

BLOCK_SIZE = 16
SYSTEM_TOKENS = 1500
TASK_TOKENS = 3000
GROWTH_TOKENS = 2000
OUTPUT_TOKENS = 200


@dataclass(slots=True)
class Timings:
    calls: int = 0
    total_s: float = 0.0
    # turn -> [allocate seconds, free seconds, fresh blocks, calls]
    by_turn: dict[int, list[float]] = field(default_factory=dict)

    def add_turn(self, turn: int, allocate_s: float, free_s: float, fresh: int) -> None:
        row = self.by_turn.setdefault(turn, [0.0, 0.0, 0, 0])
        row[0] += allocate_s
        row[1] += free_s
        row[2] += fresh
        row[3] += 1


def session_chains(sessions: int, turns: int, rng: random.Random) -> list[list[tuple]]:
    """Per session, per turn: (prompt, chain after the output)."""
    system = TokenChain(BLOCK_SIZE)
    system.extend_synthetic(stable_hash("system"), SYSTEM_TOKENS)
    out = []
    for s in range(sessions):
        prompt = system.copy()
        prompt.extend_synthetic(stable_hash("task", s), TASK_TOKENS)
        calls = []
        for t in range(turns):
            after = prompt.copy()
            after.extend_synthetic(stable_hash("out", s, t), OUTPUT_TOKENS)
            calls.append((prompt, after))
            prompt = after.copy()
            grow = GROWTH_TOKENS + rng.randrange(-500, 501)
            prompt.extend_synthetic(stable_hash("tool", s, t), grow)
        out.append(calls)
    return out


def run(chains: list[list[tuple]], num_blocks: int, concurrency: int, seed: int = 0):
    """Replay every session's turns on a fresh manager; returns it and the timings."""
    rng = random.Random(seed)
    kv = KVCacheManager(num_blocks, BLOCK_SIZE)
    next_turn = [0] * len(chains)
    timings = Timings()
    perf, now = time.perf_counter, 0.0
    while ready := [s for s, calls in enumerate(chains) if next_turn[s] < len(calls)]:
        wave = rng.sample(ready, min(concurrency, len(ready)))
        admitted = {}
        for s in wave:
            prompt, _ = chains[s][next_turn[s]]
            t0 = perf()
            fresh = kv.allocate(f"s{s}", prompt, now).blocks_allocated
            t1 = perf()
            kv.commit(f"s{s}", prompt, now)
            timings.total_s += perf() - t0
            admitted[s] = (t1 - t0, fresh)
        now += 1.0
        for s in wave:
            _, after = chains[s][next_turn[s]]
            t0 = perf()
            kv.append(f"s{s}", OUTPUT_TOKENS, now)
            kv.commit(f"s{s}", after, now)
            t1 = perf()
            kv.free(f"s{s}", now)
            t2 = perf()
            timings.total_s += t2 - t0
            timings.add_turn(next_turn[s], admitted[s][0], t2 - t1, admitted[s][1])
            timings.calls += 1
            next_turn[s] += 1
        now += 1.0
    kv.check_integrity()
    return kv, timings


def report(name: str, kv: KVCacheManager, t: Timings) -> None:
    s = kv.stats
    print(f"{name}: {kv.capacity_blocks} blocks, hit rate {s.hit_rate:.2f}, "
          f"{s.allocated_blocks} allocated, {s.evicted_blocks} evicted")
    print(f"  {1e6 * t.total_s / t.calls:.1f} us per call (allocate, commit, append, "
          f"commit, free), {t.total_s:.3f} s for {t.calls} calls")
    print("  turn  prompt blocks  fresh blocks  allocate us  free us")
    for turn, (alloc, free, fresh, n) in sorted(t.by_turn.items()):
        blocks = -(-(SYSTEM_TOKENS + TASK_TOKENS + turn * (GROWTH_TOKENS + OUTPUT_TOKENS))
                   // BLOCK_SIZE)
        print(f"  {turn:4}  {blocks:13}  {fresh / n:12.0f}  {1e6 * alloc / n:11.1f}"
              f"  {1e6 * free / n:7.1f}")


def main(argv: list[str]) -> None:
    sessions, turns, concurrency, repeats = (
        int(a) for a in (argv + ["64", "11", "16", "5"][len(argv):])
    )
    chains = session_chains(sessions, turns, random.Random(0))
    longest = -(-max(c[-1][1].num_tokens for c in chains) // BLOCK_SIZE)
    print(f"{sessions} sessions x {turns} turns, {concurrency} calls at a time")
    for name, num_blocks in [("tight", int(1.5 * concurrency * longest)),
                             ("roomy", sessions * longest + concurrency * longest)]:
        kv, t = min((run(chains, num_blocks, concurrency) for _ in range(repeats)),
                    key=lambda result: result[1].total_s)
        report(name, kv, t)


if __name__ == "__main__":
    main(sys.argv[1:])
