"""What a simulation measured, and the summary figures the benchmark reports.

Raw records are kept as flat lists while running (cheap appends) and turned into
numpy arrays once, at the end.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

REQUEST_FIELDS = ("arrival", "first_scheduled", "finished", "prompt", "cached",
                  "prefilled", "reprefilled", "output", "preemptions")
PROGRAM_FIELDS = ("arrival", "finished", "lower_bound")
DEFAULT_SLO_FACTOR = 5.0  # SimConfig.slo_factor's default
SAMPLE_FIELDS = ("time", "kv_used", "kv_pinned", "kv_cached", "running", "waiting")


@dataclass
class Recorder:
    requests: dict[str, list[float]] = field(
        default_factory=lambda: {k: [] for k in REQUEST_FIELDS})
    programs: dict[str, list[float]] = field(
        default_factory=lambda: {k: [] for k in PROGRAM_FIELDS})
    program_ids: list[str] = field(default_factory=list)
    program_tenants: list[str] = field(default_factory=list)
    samples: dict[str, list[float]] = field(
        default_factory=lambda: {k: [] for k in SAMPLE_FIELDS})

    def request(self, **values: float) -> None:
        for key in REQUEST_FIELDS:
            self.requests[key].append(values[key])

    def program(self, program_id: str, tenant: str, **values: float) -> None:
        self.program_ids.append(program_id)
        self.program_tenants.append(tenant)
        for key in PROGRAM_FIELDS:
            self.programs[key].append(values[key])

    def sample(self, **values: float) -> None:
        for key in SAMPLE_FIELDS:
            self.samples[key].append(values[key])


@dataclass
class SimResult:
    """Arrays of per-request, per-program and sampled figures, plus run facts."""

    requests: dict[str, np.ndarray]
    programs: dict[str, np.ndarray]
    program_ids: list[str]
    program_tenants: list[str]
    samples: dict[str, np.ndarray]
    workers: int
    busy_time: float
    makespan: float
    wall_time_s: float
    events: int
    unfinished: int
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_recorder(cls, rec: Recorder, **facts: Any) -> "SimResult":
        arr = lambda d: {k: np.asarray(v, dtype=float) for k, v in d.items()}
        return cls(arr(rec.requests), arr(rec.programs), rec.program_ids,
                   rec.program_tenants, arr(rec.samples), **facts)

    @property
    def jct(self) -> np.ndarray:
        return self.programs["finished"] - self.programs["arrival"]

    def metrics(self) -> dict[str, float]:
        """The summary figures (seconds unless named otherwise)."""
        jct, req = self.jct, self.requests
        waits = req["first_scheduled"] - req["arrival"]
        ratio = jct / np.maximum(self.programs["lower_bound"], 1e-9)
        prompt = max(1.0, float(req["prompt"].sum()))
        q = lambda a, p: float(np.percentile(a, p)) if a.size else float("nan")
        return {
            "programs": float(jct.size), "unfinished": float(self.unfinished),
            "jct_mean": float(jct.mean()) if jct.size else float("nan"),
            "jct_geomean": float(np.exp(np.log(np.maximum(jct, 1e-9)).mean()))
            if jct.size else float("nan"),
            "jct_p50": q(jct, 50), "jct_p95": q(jct, 95), "jct_p99": q(jct, 99),
            "makespan": self.makespan,
            "throughput_calls_per_min": self.steady_throughput(),
            "kv_hit_rate": float(req["cached"].sum()) / prompt,
            "reprefilled_tokens": float(req["reprefilled"].sum()),
            "prefilled_tokens": float(req["prefilled"].sum()),
            "gpu_busy_fraction": self.busy_time / max(1e-9, self.makespan * self.workers),
            "queue_wait_mean": float(waits.mean()) if waits.size else float("nan"),
            "queue_wait_p99": q(waits, 99),
            "jct_over_lower_bound_mean": float(ratio.mean()) if ratio.size else float("nan"),
            "jct_over_lower_bound_p99": q(ratio, 99),
            "preemptions": float(req["preemptions"].sum()),
            **self.tenant_summary(),
        }

    def tenant_metrics(self) -> dict[str, dict[str, float]]:
        """Per tenant: programs, SLO attainment (the share of its programs whose JCT is
        at most `slo_factor` x their lower bound, i.e. a job-completion SLO relative to
        the isolated run) and mean slowdown (mean JCT / lower bound)."""
        factor = float(self.config.get("slo_factor", DEFAULT_SLO_FACTOR))
        ratio = self.jct / np.maximum(self.programs["lower_bound"], 1e-9)
        tenants = np.asarray(self.program_tenants, dtype=object)
        out = {}
        for tenant in sorted(set(self.program_tenants)):
            r = ratio[tenants == tenant]
            out[tenant] = {"programs": float(r.size),
                           "slo_attainment": float((r <= factor).mean()),
                           "slowdown_mean": float(r.mean())}
        return out

    def tenant_summary(self) -> dict[str, float]:
        """SLO attainment over all programs and for the worst tenant, and the slowdown
        spread: max / min over tenants of their mean slowdown (1.0 with one tenant)."""
        per = self.tenant_metrics()
        if not per:
            nan = float("nan")
            return {"slo_attainment": nan, "slo_attainment_min_tenant": nan,
                    "slowdown_spread": nan}
        factor = float(self.config.get("slo_factor", DEFAULT_SLO_FACTOR))
        ratio = self.jct / np.maximum(self.programs["lower_bound"], 1e-9)
        slowdowns = [t["slowdown_mean"] for t in per.values()]
        return {"slo_attainment": float((ratio <= factor).mean()),
                "slo_attainment_min_tenant": min(t["slo_attainment"] for t in per.values()),
                "slowdown_spread": max(slowdowns) / max(min(slowdowns), 1e-9)}

    def steady_throughput(self) -> float:
        """LLM calls finished per minute between the 10th and 90th percentile of finish
        times (leaving out ramp-up and drain)."""
        done = np.sort(self.requests["finished"])
        if done.size < 10:
            return float("nan")
        lo, hi = done[int(0.1 * done.size)], done[int(0.9 * done.size)]
        if hi <= lo:
            return float("nan")
        return 60.0 * (int(0.9 * done.size) - int(0.1 * done.size)) / (hi - lo)
