"""Planner benchmark: constrained completion probability over a budget x deadline grid.

Each task runs as a program in the simulator (`runtime.bench.planning_sim`): the
runtime's planner session chooses models and samples, the samples run as forks on
simulated workers of each model's pool through the cluster control, and their verdicts
and lengths come from the task's hidden truth (`TruthWorld`); every call is reserved at
its worst case in the program's budget ledger before dispatch, so spend never exceeds
the budget, and the deadline cancels what is still running. Budgets and deadlines are
multiples of a per-task reference computed from the priors only: one sample of the
reference model per subtask (cost summed; time along the longest chain). Every planner
at every grid point runs the same tasks with the same outcome draws (common random
numbers), so differences between planners are paired.

    agentrt bench --workload codeflow,proofflow --policies mcpp,cheapest,... --out DIR
    python -m runtime.bench.planning --programs 100 --out runs/planning
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from agentrt.runtime.bench.plan_tasks import problem_of
from agentrt.programs.workloads.planning import (
    PLANNING_WORKLOADS,
    PlanTask,
    generate_planning,
    told_the_truth,
)
from agentrt.runtime.bench.planning_report import latency_ms, markdown, write_outputs
from agentrt.runtime.config import DEFAULT_PRICES
from agentrt.runtime.core.budget import Price
from agentrt.runtime.core.planner import (
    BASELINES,
    PLANNERS,
    MCPPConfig,
    ModelCard,
    Option,
    PerfLatency,
    Planner,
    PlanningProblem,
    TableLatency,
    make_planner,
)
from agentrt.runtime.bench.planning_sim import CellRun, run_cell
from agentrt.runtime.engines.simulated.perf_model import PerfModel

WORLD_ATTEMPTS = 16


def default_cards(gpu: str = "h100", batch: int = 16) -> list[ModelCard]:
    """Two open models served on `gpu` (prices from config, latency from the engine
    performance model at a decode batch of `batch`) and an expensive hosted model
    (Sonnet-class list prices, a latency table)."""
    return [
        ModelCard("llama-3.1-8b", DEFAULT_PRICES["llama-3.1-8b"],
                  PerfLatency(PerfModel("llama-3.1-8b", gpu, 1), batch)),
        ModelCard("llama-3.1-70b", DEFAULT_PRICES["llama-3.1-70b"],
                  PerfLatency(PerfModel("llama-3.1-70b", gpu, 4), batch)),
        ModelCard("frontier", Price(3.0, 15.0), TableLatency(0.3, 5e-5, 0.025)),
    ]


def reference_scale(problem: PlanningProblem,
                    model: str = "llama-3.1-70b") -> tuple[float, float]:
    """(USD, seconds) of one sample of `model` per subtask, from the priors."""
    st, o = problem.stats(), problem.option_index(Option(model, 1))
    finish: list[float] = []
    for s, deps in enumerate(problem.deps):
        finish.append(max((finish[d] for d in deps), default=0.0) + st.exp_time[s, o])
    return float(st.exp_cost[:, o].sum()), max(finish)


class TruthWorld:
    """A task's hidden outcomes. Uniforms and normals are drawn per (subtask, attempt,
    sample) and shared by every model, so all planners face the same luck."""

    def __init__(self, task: PlanTask, seed: int | Sequence[int]) -> None:
        rng = np.random.default_rng(seed)
        shape = (len(task.subtasks), WORLD_ATTEMPTS, 8)
        self.task, self.u, self.z = task, rng.random(shape), rng.standard_normal(shape)
        self.spare = rng
        self.index = {s.subtask_id: i for i, s in enumerate(task.subtasks)}

    def sample(self, sid: str, model: str, attempt: int, j: int) -> tuple[bool, int]:
        i = self.index[sid]
        sub = self.task.subtasks[i]
        truth = sub.truth[model]
        if attempt < WORLD_ATTEMPTS and j < self.u.shape[2]:
            u, z = self.u[i, attempt, j], self.z[i, attempt, j]
        else:
            u, z = self.spare.random(), self.spare.standard_normal()
        tokens = round(truth.len_median * math.exp(truth.len_sigma * z))
        return bool(u < truth.p), int(min(max(tokens, 1), sub.max_tokens))


@dataclass
class GridSpec:
    workloads: Sequence[str] = ("codeflow", "proofflow")
    planners: Sequence[str] = ("mcpp", *BASELINES)
    budgets: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0)
    """Multiples of the reference cost."""
    deadlines: Sequence[float] = (1.0, 1.5, 2.0, 3.0, 5.0)
    """Multiples of the reference time."""
    programs: int = 100
    """Tasks per workload; every grid point and planner runs all of them."""
    seed: int = 0
    rollouts: int = 256
    mcpp_told_truth: bool = False
    """Evaluation only: MCPP is told each task's hidden truth (`told_the_truth`) while
    the baselines see the priors; an upper bound on what better estimates could add,
    not a planner anyone can run."""


@dataclass
class GridResult:
    spec: GridSpec
    ok: dict[tuple[str, float, float, str], np.ndarray] = field(default_factory=dict)
    """(workload, budget x, deadline x, planner) -> success per task."""
    plan_seconds: dict[str, list[float]] = field(default_factory=dict)
    programs_run: int = 0
    over_budget: int = 0
    """Programs whose spend exceeded their budget (must be 0)."""
    max_spend_ratio: float = 0.0
    """Largest spend / budget over all programs."""
    wall_time_s: float = 0.0

    @property
    def points(self) -> list[tuple[float, float]]:
        return [(b, d) for b in self.spec.budgets for d in self.spec.deadlines]

    def completion(self, workload: str, b: float, d: float, name: str) -> tuple[float, float]:
        """(probability, standard error) of one planner at one grid point."""
        x = self.ok[workload, b, d, name]
        p = float(x.mean())
        return p, math.sqrt(p * (1 - p) / len(x))

    def paired(self, workload: str, b: float, d: float, other: str) -> tuple[float, float]:
        """MCPP minus `other` at a point and the paired standard error."""
        diff = (self.ok[workload, b, d, "mcpp"].astype(float)
                - self.ok[workload, b, d, other].astype(float))
        return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff)))

    def best_baseline(self, workload: str, b: float, d: float) -> str:
        base = [n for n in self.spec.planners if n != "mcpp"]
        return max(base, key=lambda n: self.ok[workload, b, d, n].mean())

    def summary(self, workload: str) -> dict:
        """Acceptance figures over the points where any planner exceeds 5%: the mean
        margin of MCPP over the best baseline of each point and over each baseline;
        and every (point, baseline) where MCPP is lower by more than two paired
        standard errors."""
        base = list(self.spec.planners[1:])
        counted = [(b, d) for b, d in self.points if max(
            self.ok[workload, b, d, n].mean() for n in self.spec.planners) > 0.05]
        below = [(b, d, n, round(diff, 3)) for b, d in self.points for n in base
                 for diff, se in [self.paired(workload, b, d, n)] if diff < -2 * se]

        def mean_over(pick) -> float:
            values = [self.paired(workload, b, d, pick(b, d))[0] for b, d in counted]
            return float(np.mean(values)) if values else math.nan

        return {"points_counted": len(counted),
                "mean_margin_over_best": mean_over(lambda b, d: self.best_baseline(
                    workload, b, d)),
                "mean_margin_over": {n: mean_over(lambda b, d, n=n: n) for n in base},
                "below_baseline_by_2se": below}


def run_grid(spec: GridSpec, cards: Sequence[ModelCard] | None = None) -> GridResult:
    if len(spec.planners) < 2 or spec.planners[0] != "mcpp":
        raise ValueError(f"planners must be 'mcpp' followed by the baselines to compare it "
                         f"with, got {list(spec.planners)}")
    if spec.programs < 2:
        raise ValueError(f"programs must be >= 2 for standard errors, got {spec.programs}")
    cards = cards or default_cards()
    for name in spec.planners:
        make_planner(name)  # unknown names fail here, listing the valid ones
    result = GridResult(spec, plan_seconds={n: [] for n in spec.planners})
    started = time.perf_counter()
    for workload in spec.workloads:
        tasks = generate_planning(workload, spec.programs, spec.seed)
        scales = [reference_scale(problem_of(t, cards)) for t in tasks]
        truths = [told_the_truth(t) for t in tasks] if spec.mcpp_told_truth else tasks
        for b, d in result.points:
            limits = [(b * cost, d * span) for cost, span in scales]
            for name in spec.planners:
                seen = truths if name == "mcpp" else tasks  # truths is tasks unless told
                worlds = [TruthWorld(t, [spec.seed, i, 1]) for i, t in enumerate(tasks)]
                cell = run_cell(tasks, seen, limits, name, worlds, seed=spec.seed,
                                rollouts=spec.rollouts)
                result.ok[workload, b, d, name] = np.array(cell.ok)
                _account(result, name, cell)
    result.wall_time_s = time.perf_counter() - started
    return result


def _account(result: GridResult, name: str, cell: CellRun) -> None:
    for r, budget in zip(cell.results, cell.budgets):
        result.plan_seconds[name].extend(r.plan_seconds)
        result.programs_run += 1
        result.over_budget += r.spent_usd > budget
        result.max_spend_ratio = max(result.max_spend_ratio, r.spent_usd / budget)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def add_planning_options(parser: argparse.ArgumentParser) -> None:
    """The grid options of a planning run (`agentrt bench --workload codeflow,...`)."""
    parser.add_argument("--budgets", type=_floats, default=GridSpec.budgets,
                        help="planning workloads: budgets as multiples of the reference "
                        "cost (comma list)")
    parser.add_argument("--deadlines", type=_floats, default=GridSpec.deadlines,
                        help="planning workloads: deadlines as multiples of the reference "
                        "time (comma list)")
    parser.add_argument("--rollouts", type=int, default=GridSpec.rollouts,
                        help="planning workloads: MCPP's N, rollouts per candidate")
    parser.add_argument("--mcpp-told-truth", action="store_true",
                        help="planning workloads, evaluation only: tell MCPP the hidden "
                        "success rates and lengths (the baselines keep the priors), to "
                        "bound what better estimates could add")


def is_planning_run(workloads: Sequence[str]) -> bool:
    """True when every workload is a planning workload; ValueError on a mix."""
    planning = [w in PLANNING_WORKLOADS for w in workloads]
    if any(planning) and not all(planning):
        raise ValueError(f"planning workloads {sorted(PLANNING_WORKLOADS)} run on their own, "
                         f"not with {[w for w in workloads if w not in PLANNING_WORKLOADS]}")
    return bool(planning) and all(planning)


def spec_from_args(args: argparse.Namespace, planners: Sequence[str]) -> GridSpec:
    return GridSpec(tuple(w for w in args.workload.split(",") if w), tuple(planners),
                    args.budgets, args.deadlines, args.programs, args.seed, args.rollouts,
                    args.mcpp_told_truth)


def run_and_write(spec: GridSpec, out: Path, plots: bool = True) -> GridResult:
    """Run the grid, print the table and the latency figures, write the outputs."""
    result = run_grid(spec)
    if spec.mcpp_told_truth:
        print("MCPP was told the hidden truth (--mcpp-told-truth): its column is an upper "
              "bound for evaluation, not a planner's result\n")
    print(markdown(result))
    mcpp = latency_ms(result).get("mcpp")
    if mcpp:
        print(f"\nMCPP planning latency (N = {spec.rollouts}): p50 {mcpp[0]:.2f} ms, "
              f"p99 {mcpp[1]:.2f} ms over {mcpp[2]} plan calls; grid wall time "
              f"{result.wall_time_s:.0f} s")
    paths = write_outputs(result, out, plots)
    print("wrote " + ", ".join(str(p) for p in paths))
    return result


def run_planning_command(args: argparse.Namespace) -> int | None:
    """`agentrt bench` on planning workloads: None when `--workload` names none (the
    simulator's run), else the exit status (2 on bad input). `--policies` names planners,
    MCPP first; left at the simulator's policy sets it means every planner."""
    try:
        if not is_planning_run([w for w in args.workload.split(",") if w]):
            return None
        names = [p for p in args.policies.split(",") if p]
        if all(_is_policy_set(n) for n in names):
            names = list(GridSpec.planners)
        for name in names:
            make_planner(name)  # unknown names fail here, listing the valid ones
        spec = spec_from_args(args, names)
        print(f"planning grid: {', '.join(spec.workloads)}, {spec.programs} tasks x "
              f"{len(spec.budgets)} budgets x {len(spec.deadlines)} deadlines x "
              f"{len(names)} planners (simulated outcomes)", file=sys.stderr)
        run_and_write(spec, Path(args.out), plots=not args.no_plots)
    except ValueError as exc:
        print(f"agentrt: {exc}", file=sys.stderr)
        return 2
    return 0


def _is_policy_set(name: str) -> bool:
    from agentrt.runtime.bench.policies import policy_set
    try:
        policy_set(name)
    except ValueError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> GridResult:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", type=int, default=GridSpec.programs)
    ap.add_argument("--seed", type=int, default=GridSpec.seed)
    add_planning_options(ap)
    ap.add_argument("--workloads", dest="workload", default=",".join(GridSpec.workloads),
                    help=f"comma list of {sorted(PLANNING_WORKLOADS)}")
    ap.add_argument("--planners", default=",".join(GridSpec.planners),
                    help=f"comma list starting with mcpp, of {sorted(PLANNERS)}")
    ap.add_argument("--out", type=Path, default=Path("runs/planning"))
    args = ap.parse_args(argv)
    return run_and_write(spec_from_args(args, args.planners.split(",")), args.out)


if __name__ == "__main__":
    main()
