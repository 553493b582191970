"""Benchmark outputs: a JSON result, a markdown table and PNG plots."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from agentrt.runtime.bench.harness import Cell

COLUMNS = [
    ("JCT mean s", "jct_mean", "{:.1f}"), ("p50", "jct_p50", "{:.1f}"),
    ("p95", "jct_p95", "{:.1f}"), ("p99", "jct_p99", "{:.1f}"),
    ("makespan s", "makespan", "{:.0f}"),
    ("calls/min", "throughput_calls_per_min", "{:.0f}"),
    ("KV hit", "kv_hit_rate", "{:.1%}"),
    ("re-prefilled Mtok", "reprefilled_tokens", "{:.2f}"),
    ("GPU busy", "gpu_busy_fraction", "{:.1%}"),
    ("queue wait s", "queue_wait_mean", "{:.3f}"),
    ("JCT/bound", "jct_over_lower_bound_mean", "{:.2f}"),
    ("JCT geomean s", "jct_geomean", "{:.1f}"),
    ("within SLO", "slo_attainment", "{:.1%}"),
    ("worst tenant in SLO", "slo_attainment_min_tenant", "{:.1%}"),
    ("slowdown spread", "slowdown_spread", "{:.3f}"),
]


def markdown_table(cells: Sequence[Cell]) -> str:
    """One row per cell; 'vs first' is the mean JCT of the first policy of the same
    model, workload, cluster and load divided by this row's (above 1 is faster), 'geo vs
    first' the same for the geometric mean."""
    models = any(cell.model for cell in cells)
    loads = any(cell.in_flight for cell in cells)
    head = [*(["model"] if models else []), "workload", "policy", "workers",
            *(["in flight/worker"] if loads else []),
            *[c[0] for c in COLUMNS], "vs first", "geo vs first", "sim wall s"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first: dict[tuple, tuple[float, float]] = {}
    for cell in cells:
        m = cell.result.metrics()
        base, geo = first.setdefault(cell.group, (m["jct_mean"], m["jct_geomean"]))
        values = [_fmt(fmt, m[key] / (1e6 if key == "reprefilled_tokens" else 1))
                  for _, key, fmt in COLUMNS]
        rows.append("| " + " | ".join([*([cell.model] if models else []), cell.workload,
                                        cell.policy, str(cell.workers),
                                        *([str(cell.in_flight)] if loads else []), *values,
                                        f"{base / m['jct_mean']:.2f}x",
                                        f"{geo / m['jct_geomean']:.2f}x",
                                        f"{cell.result.wall_time_s:.1f}"]) + " |")
    return "\n".join(rows)


def _fmt(fmt: str, value: float) -> str:
    return "n/a" if value != value else fmt.format(value)


def to_json(cells: Sequence[Cell], facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "facts": facts,
        "cells": [{"model": c.model, "workload": c.workload, "policy": c.policy,
                   "workers": c.workers, "in_flight_per_worker": c.in_flight,
                   "metrics": c.result.metrics(), "events": c.result.events,
                   "sim_wall_s": c.result.wall_time_s, "config": c.result.config}
                  for c in cells],
    }


def write_outputs(cells: Sequence[Cell], facts: dict[str, Any], out: Path,
                  plots: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "result.json", out / "table.md"]
    written[0].write_text(json.dumps(to_json(cells, facts), indent=2, sort_keys=True))
    written[1].write_text(markdown_table(cells) + "\n")
    if plots:
        written += write_plots(cells, out)
    return written


def write_plots(cells: Sequence[Cell], out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.group, []).append(cell)
    paths = []
    for (model, workload, workers, load), group in groups.items():
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
        for cell in group:
            r = cell.result
            jct = np.sort(r.jct)
            axes[0].plot(jct, np.arange(1, jct.size + 1) / max(1, jct.size), label=cell.policy)
            axes[1].plot(r.samples["time"], 100 * r.samples["kv_used"], label=cell.policy)
            t, rate = _throughput_series(r.requests["finished"])
            axes[2].plot(t, rate, label=cell.policy)
        _label(axes[0], "job completion time (s)", "fraction of programs", "JCT distribution")
        axes[0].set_xscale("log")
        _label(axes[1], "time (s)", "KV blocks in use (%)", "KV use over time")
        _label(axes[2], "time (s)", "LLM calls finished / min", "throughput")
        where = f"{model}, " if model else ""
        at = f", {load} programs in flight per worker" if load else ""
        fig.suptitle(f"{where}{workload}, {workers} simulated workers{at} (simulation)")
        fig.tight_layout()
        path = out / (f"{model.replace('/', '-') + '-' if model else ''}{workload}-"
                      f"{workers}w{f'-{load}c' if load else ''}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _throughput_series(finished: np.ndarray, bins: int = 60):
    if finished.size == 0:
        return np.array([]), np.array([])
    counts, edges = np.histogram(finished, bins=bins)
    width = edges[1] - edges[0]
    return (edges[:-1] + edges[1:]) / 2, counts * 60.0 / max(width, 1e-9)


def _label(ax, x: str, y: str, title: str) -> None:
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
