"""The benchmark harness: a matrix of workload x policy set x cluster, each cell one
simulation, every cell on the same programs (same seed) so ratios compare like with
like."""
from __future__ import annotations

import math
import re
import resource
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from agentrt.programs.workloads import ProgramSpec, generate, load_trace
from agentrt.runtime.bench.policies import policy_set
from agentrt.runtime.core.prediction.history import SizeHistory
from agentrt.runtime.engines.simulated.perf_model import PerfModel
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.driver import Simulation
from agentrt.runtime.sim.metrics import SimResult


@dataclass
class Cell:
    workload: str
    policy: str
    workers: int
    result: SimResult
    model: str = ""
    """`model` or `model/tpN` when the run compares models; empty otherwise."""
    in_flight: int | None = None
    """Closed-loop programs in flight per worker when the run sweeps several loads;
    None otherwise."""

    @property
    def name(self) -> str:
        where = f" / {self.model}" if self.model else ""
        load = f" / {self.in_flight} in flight per worker" if self.in_flight else ""
        return f"{self.workload}{where} / {self.policy} / {self.workers} workers{load}"

    @property
    def group(self) -> tuple[str, str, int, int | None]:
        """The cells compared with each other: same model, workload, cluster and load."""
        return (self.model, self.workload, self.workers, self.in_flight)


@dataclass
class BenchSpec:
    workloads: Sequence[str] = ("swe",)
    policies: Sequence[str] = ("vllm-rr", "vllm-sticky", "agentrt")
    workers: Sequence[int] = (8,)
    programs: int = 200
    seed: int = 0
    trace: str | None = None
    oversub_multiple: float = 2.0
    """`oversub` workload: total context over cluster KV capacity."""
    concurrency_per_worker: int | Sequence[int] = 16
    """Closed loop: programs in flight per worker (the cell's concurrency scales with it);
    several values sweep the load, each a row group of its own."""
    sim: dict[str, Any] = field(default_factory=dict)
    """Other SimConfig fields shared by every cell (model, gpu, tp, arrival, ...)."""
    tenants: int = 1
    """Split the programs among this many tenants of different loads (see
    `tenant_shares`); 1 leaves them as generated."""
    models: Sequence[tuple[str, int]] = ()
    """(model, tensor-parallel size) pairs, each a row group of its own; empty: the
    model and tp of `sim` only."""
    programs_per_worker: int | None = None
    """Generate this many programs per worker of each cluster size (instead of
    `programs`), so every cluster size sees the same load per worker."""
    kv_oversub: float | None = None
    """Closed loop: size the programs in flight so their live contexts are this many
    times the cluster's KV capacity (mean prompt of the workload's LLM calls),
    instead of `concurrency_per_worker`."""
    size_history: str | None = None
    """Cells whose queue is `gittins` start warm from this file of finished programs
    (`runtime.core.prediction.history`), each from a copy of its own, so every such
    cell starts from the same data; None: they start cold."""
    size_history_out: str | None = None
    """Where each `gittins` cell's history goes (the copy of `size_history`, or an empty
    file, with the cell's finished programs added): a run that starts another warm;
    None: nothing kept."""


def load_programs(workload: str, spec: BenchSpec, workers: int) -> list[ProgramSpec]:
    """The cell's programs. `oversub` sizes itself: unique-prefix sessions whose
    contexts add up to `oversub_multiple` x the cluster's KV capacity."""
    if workload == "trace":
        return load_trace(spec.trace)
    if workload == "oversub":
        capacity = workers * kv_capacity_tokens(spec)
        context = 32_000
        n = math.ceil(spec.oversub_multiple * capacity / context)
        return generate(workload, n, spec.seed, context_tokens=context)
    n = spec.programs if spec.programs_per_worker is None else spec.programs_per_worker * workers
    return generate(workload, n, spec.seed)


def mean_call_prompt_tokens(programs: Sequence[ProgramSpec]) -> float:
    """The prompt of an LLM call, averaged over every call of `programs`: shared prefix,
    the turns before it (inputs and replies; since the last compaction) and its own
    input (`ProgramSpec.step_prompts`)."""
    total = calls = 0
    for program in programs:
        for prompts in program.step_prompts().values():
            total += sum(p.tokens for p in prompts)
            calls += len(prompts)
    if not calls:
        raise ValueError("the workload has no LLM calls to size KV oversubscription by")
    return total / calls


def oversub_concurrency(spec: BenchSpec, programs: Sequence[ProgramSpec], workers: int) -> int:
    """Programs in flight whose live contexts are `kv_oversub` x the cluster's KV."""
    capacity = workers * kv_capacity_tokens(spec)
    return max(1, round(spec.kv_oversub * capacity / mean_call_prompt_tokens(programs)))


def tenant_shares(n: int) -> list[float]:
    """Each tenant's share of the programs: 60% / 30% / 10% for three tenants, halving
    from one tenant to the next otherwise."""
    if n == 3:
        return [0.6, 0.3, 0.1]
    weights = [0.5 ** i for i in range(n)]
    return [w / sum(weights) for w in weights]


def assign_tenants(programs: list[ProgramSpec], n: int, seed: int) -> list[ProgramSpec]:
    """The programs split among tenants t0..t{n-1} by `tenant_shares` (exact counts,
    shuffled by `seed` so each tenant's programs spread over the run)."""
    if n <= 1:
        return programs
    shares = tenant_shares(n)
    counts = [int(round(s * len(programs))) for s in shares]
    counts[0] += len(programs) - sum(counts)
    labels = np.repeat(np.arange(n), counts)
    np.random.default_rng(seed).shuffle(labels)
    return [replace(p, tenant=f"t{int(t)}") for p, t in zip(programs, labels)]


def kv_capacity_tokens(spec: BenchSpec) -> int:
    """KV tokens one worker of this benchmark (with `spec.sim`'s model) holds."""
    defaults = SimConfig(**spec.sim)
    if defaults.kv_blocks is not None:
        return defaults.kv_blocks * defaults.block_size
    return PerfModel(defaults.model, defaults.gpu, defaults.tp).kv_capacity_tokens()


def run_bench(spec: BenchSpec, progress=None) -> list[Cell]:
    """Run every cell; `progress(cell)` is called after each."""
    workloads = ["trace"] if spec.trace else list(spec.workloads)
    models = list(spec.models) or [(spec.sim.get("model", SimConfig().model),
                                    spec.sim.get("tp", 1))]
    label = len(models) > 1
    loads = concurrency_loads(spec)
    cells = []
    for model, tp in models:
        mspec = replace(spec, sim={**spec.sim, "model": model, "tp": tp})
        for workload in workloads:
            for workers in spec.workers:
                programs = assign_tenants(load_programs(workload, mspec, workers),
                                          spec.tenants, spec.seed)
                for load in loads:
                    concurrency = (oversub_concurrency(mspec, programs, workers)
                                   if spec.kv_oversub else load * workers)
                    for policy in spec.policies:
                        cell = Cell(workload, policy, workers, None,  # the result, below
                                    f"{model}/tp{tp}" if label else "",
                                    load if len(loads) > 1 else None)
                        settings = policy_set(policy)
                        if settings["queue"] == "gittins" and spec.size_history_out:
                            settings["queue_options"] = {
                                **settings.get("queue_options", {}),
                                "history": str(_cell_history(spec, cell))}
                        config = SimConfig(**{"concurrency": concurrency, **mspec.sim,
                                              **settings, "workers": workers,
                                              "seed": spec.seed,
                                              **_workload_overrides(workload, programs)})
                        cell.result = Simulation(programs, config).run()
                        cells.append(cell)
                        if progress is not None:
                            progress(cell)
    return cells


def _cell_history(spec: BenchSpec, cell: Cell) -> Path:
    """The cell's own size history file in `spec.size_history_out`: a copy of
    `spec.size_history` (or nothing: it starts cold), which the cell adds to."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{cell.name} seed {spec.seed}").strip("-")
    path = Path(spec.size_history_out) / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.size_history:
        shutil.copyfile(spec.size_history, path)
    else:
        path.unlink(missing_ok=True)
    return path


def check_size_history(spec: BenchSpec) -> int:
    """Read `spec.size_history` before any cell runs: how many finished programs it
    holds. Raises FileNotFoundError when it is missing (a warm start was asked for,
    so starting cold would be a silent mistake) and SizeHistoryError when it is not
    a size history."""
    if not spec.size_history:
        return 0
    if not Path(spec.size_history).is_file():
        raise FileNotFoundError(
            f"size history {spec.size_history} does not exist: give a file an earlier "
            "bench run wrote (<out>/size-history/*.jsonl) or leave --size-history out to "
            "start cold")
    if not spec.size_history_out:
        raise ValueError("a size history needs somewhere to put each cell's copy "
                         "(size_history_out)")
    history = SizeHistory(spec.size_history)
    history.close()
    return len(history.records)


def concurrency_loads(spec: BenchSpec) -> list[int]:
    """The closed-loop loads (programs in flight per worker) a run sweeps."""
    value = spec.concurrency_per_worker
    loads = [value] if isinstance(value, int) else list(value)
    if not loads or any(n < 1 for n in loads):
        raise ValueError(f"programs in flight per worker must be at least 1, got {loads}")
    if spec.kv_oversub and len(loads) > 1:
        raise ValueError("--kv-oversub sizes the load itself; give one --concurrency with it")
    return loads


def _workload_overrides(workload: str, programs: list[ProgramSpec]) -> dict[str, Any]:
    if workload == "trace":
        return {"arrival": "trace"}
    if workload == "oversub":  # every session at once: that is the point of it
        return {"arrival": "closed", "concurrency": len(programs), "ramp_s": 0.0}
    return {}


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
