"""The `agentrt bench` command: options, the run, the outputs."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from agentrt.runtime.bench.harness import (
    BenchSpec, check_size_history, peak_memory_mb, run_bench,
)
from agentrt.runtime.bench.planning import add_planning_options, run_planning_command
from agentrt.runtime.bench.policies import policy_set
from agentrt.runtime.bench.report import markdown_table, write_outputs


def add_bench_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", default="swe",
                        help="comma-separated generators: swe, remote, bfcl, dag, oversub, "
                        "longhorizon")
    parser.add_argument("--trace", help="replay a JSON-lines program trace instead")
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--programs-per-worker", type=int,
                        help="instead of --programs: this many programs per worker of each "
                        "cluster size (the same load per worker at every size)")
    parser.add_argument("--policies", default="vllm-rr,vllm-sticky,agentrt",
                        help="comma-separated policy sets")
    parser.add_argument("--workers", default="8", help="comma-separated cluster sizes")
    parser.add_argument("--model", default="llama-3.1-8b",
                        help="comma-separated models, each paired with its --tp")
    parser.add_argument("--gpu", default="h100")
    parser.add_argument("--tp", default="1",
                        help="comma-separated tensor-parallel sizes, one per --model "
                        "(or one for all)")
    parser.add_argument("--kv-blocks", type=int, help="KV capacity per worker in blocks")
    parser.add_argument("--arrival", default="closed", choices=["closed", "poisson"])
    parser.add_argument("--concurrency", default="16",
                        help="closed loop: programs in flight per worker (default 16); "
                        "comma-separated values sweep the load")
    parser.add_argument("--kv-oversub", type=float,
                        help="closed loop, instead of --concurrency: programs in flight "
                        "whose live contexts are this many times the cluster's KV "
                        "capacity (per model)")
    parser.add_argument("--rate", type=float, help="poisson: programs per second")
    parser.add_argument("--tenants", type=int, default=1,
                        help="split the programs among tenants of different loads "
                        "(3: 60%%/30%%/10%%); SLO attainment is reported per tenant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench", help="where result.json, table.md "
                        "and the plots go")
    parser.add_argument("--size-history", metavar="FILE",
                        help="policy sets with the Gittins queue start warm from this file "
                        "of finished programs, written by an earlier run to "
                        "<out>/size-history/ (each cell from a copy of it); without it "
                        "they start cold")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--check-integrity", action="store_true",
                        help="verify every engine's KV accounting at the end of each cell")
    add_planning_options(parser)  # --workload codeflow,proofflow: the planner grid


def run_bench_command(args: argparse.Namespace) -> int:
    """`agentrt bench`: run the matrix, print the table, write the outputs. Exit status
    2 on bad input."""
    if (status := run_planning_command(args)) is not None:
        return status  # --workload codeflow,proofflow: the planner grid
    try:
        spec = _bench_spec(args)
        what = ("the trace's programs" if spec.trace else
                f"{spec.programs_per_worker} programs per worker" if spec.programs_per_worker
                else f"{spec.programs} programs")
        print(f"simulating {what}: {', '.join(spec.policies)} on "
              f"{', '.join(map(str, spec.workers))} simulated {args.gpu} workers ("
              f"{', '.join(f'{m}, TP{tp}' for m, tp in spec.models)})", file=sys.stderr)
        if spec.size_history:
            print(f"the Gittins queue starts from {check_size_history(spec)} finished "
                  f"programs in {spec.size_history}", file=sys.stderr)
        started = time.perf_counter()
        cells = run_bench(spec, progress=lambda c: print(
            f"  {c.name}: {c.result.wall_time_s:.1f}s, {c.result.events} events",
            file=sys.stderr))
    except (ValueError, FileNotFoundError, ValidationError) as exc:
        print(f"agentrt: {exc}", file=sys.stderr)
        return 2
    facts = {"wall_time_s": time.perf_counter() - started, "peak_memory_mb": peak_memory_mb(),
             "note": "simulated GPU workers (calibrated model), not GPU measurements"}
    paths = write_outputs(cells, facts, Path(args.out), plots=not args.no_plots)
    print(markdown_table(cells))
    print(f"\nbench wall time {facts['wall_time_s']:.1f}s, peak memory "
          f"{facts['peak_memory_mb']:.0f} MB (simulation, one core)")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _bench_spec(args: argparse.Namespace) -> BenchSpec:
    policies = [p for p in args.policies.split(",") if p]
    for name in policies:
        policy_set(name)  # unknown names fail here, listing the valid ones
    workers = [int(w) for w in args.workers.split(",") if w]
    try:
        loads = [int(c) for c in str(args.concurrency).split(",") if c]
    except ValueError:
        raise ValueError("--concurrency takes comma-separated integers (programs in flight "
                         f"per worker), got {args.concurrency!r}") from None
    models = _models(args.model, args.tp)
    if args.kv_oversub is not None and (args.kv_oversub <= 0 or args.arrival != "closed"):
        raise ValueError("--kv-oversub needs a positive multiple and --arrival closed")
    if args.programs_per_worker is not None and args.programs_per_worker < 1:
        raise ValueError("--programs-per-worker must be at least 1")
    sim: dict = {"model": models[0][0], "gpu": args.gpu, "tp": models[0][1],
                 "arrival": args.arrival, "check_integrity": args.check_integrity}
    if args.kv_blocks:
        sim["kv_blocks"] = args.kv_blocks
    if args.rate:
        sim["rate"] = args.rate
    return BenchSpec(workloads=[w for w in args.workload.split(",") if w], policies=policies,
                     workers=workers, programs=args.programs, seed=args.seed,
                     trace=args.trace, sim=sim,
                     concurrency_per_worker=loads if len(loads) > 1 else loads[0],
                     tenants=args.tenants, models=models,
                     programs_per_worker=args.programs_per_worker, kv_oversub=args.kv_oversub,
                     size_history=args.size_history,
                     size_history_out=str(Path(args.out) / "size-history"))


def _models(model: str, tp: str) -> list[tuple[str, int]]:
    """--model and --tp as (model, tp) pairs: one tp for every model, or one each."""
    names = [m for m in model.split(",") if m]
    try:
        sizes = [int(t) for t in tp.split(",") if t]
    except ValueError:
        raise ValueError(f"--tp takes comma-separated integers, got {tp!r}") from None
    if not names or not sizes:
        raise ValueError("--model and --tp need at least one value each")
    if len(sizes) == 1:
        sizes *= len(names)
    if len(sizes) != len(names):
        raise ValueError(f"--tp gives {len(sizes)} sizes for {len(names)} models; give one "
                         "size for all or one per model, in the same order")
    return list(zip(names, sizes))
