"""The benchmark harness: a matrix of workload x policy set x cluster, each cell one
simulation, every cell on the same programs (same seed) so ratios compare like with
like."""
from __future__ import annotations

import resource
from dataclasses import dataclass, field
from typing import Any, Sequence

from programs.workloads import ProgramSpec, generate, load_trace
from runtime.bench.policies import policy_set
from runtime.sim.config import SimConfig
from runtime.sim.driver import Simulation
from runtime.sim.metrics import SimResult


@dataclass
class Cell:
    workload: str
    policy: str
    workers: int
    result: SimResult

    @property
    def name(self) -> str:
        return f"{self.workload} / {self.policy} / {self.workers} workers"


@dataclass
class BenchSpec:
    workloads: Sequence[str] = ("swe",)
    policies: Sequence[str] = ("vllm-rr", "vllm-sticky", "agentrt")
    workers: Sequence[int] = (8,)
    programs: int = 200
    seed: int = 0
    trace: str | None = None
    concurrency_per_worker: int = 16
    """Closed loop: programs in flight per worker (the cell's concurrency scales with it)."""
    sim: dict[str, Any] = field(default_factory=dict)
    """Other SimConfig fields shared by every cell (model, gpu, tp, arrival, ...)."""


def load_programs(workload: str, spec: BenchSpec) -> list[ProgramSpec]:
    if workload == "trace":
        return load_trace(spec.trace)
    return generate(workload, spec.programs, spec.seed)


def run_bench(spec: BenchSpec, progress=None) -> list[Cell]:
    """Run every cell; `progress(cell)` is called after each."""
    workloads = ["trace"] if spec.trace else list(spec.workloads)
    cells = []
    for workload in workloads:
        programs = load_programs(workload, spec)
        for workers in spec.workers:
            for policy in spec.policies:
                config = SimConfig(**{"concurrency": spec.concurrency_per_worker * workers,
                                      **spec.sim, **policy_set(policy), "workers": workers,
                                      "seed": spec.seed,
                                      **({"arrival": "trace"} if workload == "trace" else {})})
                result = Simulation(programs, config).run()
                cell = Cell(workload, policy, workers, result)
                cells.append(cell)
                if progress is not None:
                    progress(cell)
    return cells


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
