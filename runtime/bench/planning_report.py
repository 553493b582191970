"""Outputs of the planner benchmark: a markdown table, a JSON result and a heat map.

    markdown(result)           per workload: completion probability +- se of every planner
                               at every (budget, deadline) point, MCPP minus the best
                               baseline of the point; the summary; latency; budget check
    to_json(result)            the same figures, machine-readable
    heatmap(result, path)      per workload: MCPP's completion probability and MCPP minus
                               the best baseline (percentage points) over the grid
    write_outputs(result, out) result.json, table.md and the heat map into `out`
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from agentrt.runtime.bench.planning import GridResult

HEATMAP = "planner_heatmap.png"


def latency_ms(result: GridResult) -> dict[str, tuple[float, float, int]]:
    """Per planner: (p50 ms, p99 ms, plan calls)."""
    return {n: (float(np.percentile(v, 50) * 1e3), float(np.percentile(v, 99) * 1e3), len(v))
            for n, v in result.plan_seconds.items() if v}


def latency_lines(result: GridResult) -> list[str]:
    out = ["| planner | plan p50 ms | plan p99 ms | plan calls |", "|---|---|---|---|"]
    out += [f"| {n} | {p50:.2f} | {p99:.2f} | {k} |"
            for n, (p50, p99, k) in latency_ms(result).items()]
    return out


def markdown(result: GridResult) -> str:
    spec, out = result.spec, []
    for w in spec.workloads:
        head = ["budget x", "deadline x", *spec.planners, "MCPP - best (paired se)", "best"]
        out += [f"### {w} (completion probability +- standard error, "
                f"{spec.programs} tasks per point)", "",
                "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for b, d in result.points:
            cells = ["{:.2f} +- {:.2f}".format(*result.completion(w, b, d, n))
                     for n in spec.planners]
            best = result.best_baseline(w, b, d)
            diff, se = result.paired(w, b, d, best)
            out.append(f"| {b:g} | {d:g} | " + " | ".join(cells)
                       + f" | {diff:+.3f} ({se:.3f}) | {best} |")
        s = result.summary(w)
        each = ", ".join(f"{n} {v:+.3f}" for n, v in s["mean_margin_over"].items())
        out += ["", f"{w}: over the {s['points_counted']} points where a planner exceeds "
                    f"5%, mean MCPP - best baseline {s['mean_margin_over_best']:+.3f}; "
                    f"MCPP - each baseline: {each}. Points where MCPP is below a baseline "
                    f"by more than 2 paired se: {s['below_baseline_by_2se'] or 'none'}", ""]
    out += latency_lines(result)
    out += ["", f"budget: {result.over_budget} of {result.programs_run} programs over budget; "
                f"largest spend / budget {result.max_spend_ratio:.4f}"]
    return "\n".join(out)


def heatmap(result: GridResult, path: Path) -> Path:
    """Per workload (columns): MCPP's completion probability (top) and MCPP minus the
    best baseline of each point (bottom), both in percentage points."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = result.spec
    fig, axes = plt.subplots(2, len(spec.workloads), figsize=(5 * len(spec.workloads), 8),
                             squeeze=False)
    for col, w in enumerate(spec.workloads):
        mcpp = np.array([[100 * result.completion(w, b, d, "mcpp")[0]
                          for d in spec.deadlines] for b in spec.budgets])
        margin = np.array([[100 * result.paired(w, b, d, result.best_baseline(w, b, d))[0]
                            for d in spec.deadlines] for b in spec.budgets])
        lim = max(5.0, float(np.abs(margin).max()))
        _panel(fig, axes[0, col], mcpp, spec, "viridis", 0, 100, f"{w}: MCPP completion (%)")
        _panel(fig, axes[1, col], margin, spec, "RdBu", -lim, lim,
               f"{w}: MCPP - best baseline (points)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _panel(fig, ax, grid: np.ndarray, spec, cmap: str, lo: float, hi: float,
           title: str) -> None:
    im = ax.imshow(grid, cmap=cmap, vmin=lo, vmax=hi, origin="lower")
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, f"{v:+.0f}" if lo < 0 else f"{v:.0f}", ha="center", va="center",
                fontsize=8, color="black" if lo < 0 else "white")
    ax.set_xticks(range(len(spec.deadlines)), [f"{d:g}" for d in spec.deadlines])
    ax.set_yticks(range(len(spec.budgets)), [f"{b:g}" for b in spec.budgets])
    ax.set(xlabel="deadline (x reference time)", ylabel="budget (x reference cost)",
           title=title)
    fig.colorbar(im, ax=ax)


def to_json(result: GridResult) -> dict:
    spec = result.spec
    return {
        "spec": {"workloads": list(spec.workloads), "planners": list(spec.planners),
                 "budgets": list(spec.budgets), "deadlines": list(spec.deadlines),
                 "programs": spec.programs, "seed": spec.seed, "rollouts": spec.rollouts,
                 "mcpp_told_truth": spec.mcpp_told_truth},
        "completion": [{"workload": w, "budget_x": b, "deadline_x": d, "planner": n,
                        "p": p, "se": se}
                       for (w, b, d, n) in result.ok
                       for p, se in [result.completion(w, b, d, n)]],
        "summary": {w: result.summary(w) for w in spec.workloads},
        "latency_ms": {n: {"p50": a, "p99": b, "calls": c}
                       for n, (a, b, c) in latency_ms(result).items()},
        "programs_run": result.programs_run, "over_budget": result.over_budget,
        "max_spend_ratio": result.max_spend_ratio,
        "wall_time_s": result.wall_time_s,
        "note": "outcomes are simulated from each task's hidden truth, not model calls",
    }


def write_outputs(result: GridResult, out: Path, plots: bool = True) -> list[Path]:
    """result.json, table.md and (with `plots`) the heat map into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "result.json", out / "table.md"]
    paths[0].write_text(json.dumps(to_json(result), indent=1))
    paths[1].write_text(markdown(result) + "\n")
    if plots:
        paths.append(heatmap(result, out / HEATMAP))
    return paths
