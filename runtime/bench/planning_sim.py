"""One grid point of the planner benchmark, run as programs in the simulator.

Every task of the point becomes a program (`plan_programs.task_program`) with the
point's budget and deadline; all of them run in one `ProgramSimulation` on a cluster
with a worker pool per candidate model, planned by the runtime's own planner session
(`execute_program`), their samples forked on simulated workers through the cluster
control, the outcomes drawn from each task's hidden truth.

    pools      llama-3.1-8b   H100, TP1   `GRID_WORKERS` workers
               llama-3.1-70b  H100, TP4   `GRID_WORKERS` workers
               frontier       a hosted API (0.3 s + 50 us per prompt token + 25 ms per
                              output token), one pool, no queueing
    arrivals   closed loop, `GRID_CONCURRENCY` programs in flight
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from agentrt.programs.workloads.planning import PlanTask
from agentrt.runtime.bench.plan_programs import WorldResponder, task_program
from agentrt.runtime.config import DEFAULT_PRICES, WorkerPool
from agentrt.runtime.core.budget import Price
from agentrt.runtime.results import ProgramResult
from agentrt.runtime.runner.choices import PlanningSettings
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.programs import ProgramSimulation

GRID_WORKERS = 4
GRID_CONCURRENCY = 16
FRONTIER = WorkerPool(model="frontier", engine="latency", workers=1, ttft_s=0.3,
                      prompt_token_s=5e-5, tpot_s=0.025)
PRICES: dict[str, Price] = {**DEFAULT_PRICES, "frontier": Price(3.0, 15.0)}


def grid_pools(workers: int = GRID_WORKERS) -> list[WorkerPool]:
    return [WorkerPool(model="llama-3.1-8b", workers=workers, gpu="h100", tp=1),
            WorkerPool(model="llama-3.1-70b", workers=workers, gpu="h100", tp=4),
            FRONTIER]


@dataclass(slots=True)
class CellRun:
    """What one grid point gave, per task in task order."""

    results: list[ProgramResult]
    budgets: list[float]

    @property
    def ok(self) -> list[bool]:
        return [r.ok for r in self.results]


def run_cell(tasks: Sequence[PlanTask], told: Sequence[PlanTask],
             limits: Sequence[tuple[float, float]], planner: str, worlds: Sequence[object],
             *, seed: int = 0, rollouts: int | None = None,
             concurrency: int = GRID_CONCURRENCY, workers: int = GRID_WORKERS) -> CellRun:
    """Run every task under `planner` with its (budget USD, deadline s) from `limits`;
    `told[i]` is what the planner is told about `tasks[i]` (its priors, or the truth in
    an evaluation), `worlds[i]` its hidden outcomes."""
    family = tasks[0].family
    ids = [f"{family}-{i:05d}" for i in range(len(tasks))]
    programs = [task_program(t, b, d, told=k) for t, k, (b, d) in zip(tasks, told, limits)]
    pools = grid_pools(workers)
    config = SimConfig(pools=pools, concurrency=concurrency, ramp_s=0.0, seed=seed,
                       check_integrity=False)
    planning = PlanningSettings(
        planner=planner, min_success=0.0, prices=PRICES, served_model=pools[0].model,
        pools=tuple(p.model_dump() for p in pools), call_overhead_s=0.0, seed=seed,
        rollouts=rollouts)
    sim = ProgramSimulation(programs, [{}] * len(tasks), config,
                            responder=WorldResponder(dict(zip(ids, worlds))),
                            planning=planning, prices=PRICES, program_ids=ids)
    return CellRun(sim.run_programs(), [b for b, _ in limits])
