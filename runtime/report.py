"""The end-of-run summary: what happened to every program, in figures."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentrt.runtime.results import ProgramResult


@dataclass(slots=True)
class RunReport:
    results: list[ProgramResult]
    wall_time_s: float
    trace_path: Path | None
    time_scale: float
    workers: list[dict[str, Any]] = field(default_factory=list)
    cluster: str = ""
    run_id: str = ""
    journal: str | None = None
    """Where the run journaled (None: journal off)."""
    unfinished: list[str] = field(default_factory=list)
    """Programs a stop signal left unfinished (not in `results`)."""
    stopped_by: str | None = None
    """SIGINT or SIGTERM when a signal stopped the run; None when it ran to its end."""
    results_path: Path | None = None
    """results.jsonl, once written (the CLI writes it)."""

    @property
    def done(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> list[ProgramResult]:
        return [r for r in self.results if not r.ok]

    def completion_times(self) -> np.ndarray:
        return np.array([r.completion_time for r in self.results if r.ok], dtype=float)

    def totals(self) -> dict[str, float]:
        keys = ("llm_calls", "prompt_tokens", "cached_tokens", "prefilled_tokens",
                "output_tokens", "tool_calls", "tool_errors", "tool_time_s", "queue_wait_s")
        return {k: sum(getattr(r, k) for r in self.results) for k in keys}

    def lines(self) -> list[str]:
        t = self.totals()
        jct = self.completion_times()
        statuses: dict[str, int] = {}
        for r in self.results:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        gpu = sum(w.get("gpu_time_s", 0.0) for w in self.workers)
        prompt = max(1, int(t["prompt_tokens"]))
        out = [
            f"programs      {self.done} done, {len(self.results) - self.done} failed  "
            f"({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))})",
            _jct_line(jct),
            f"LLM calls     {int(t['llm_calls'])}  output tokens {int(t['output_tokens'])}  "
            f"queue wait {t['queue_wait_s']:.2f}s total",
            f"prompt tokens {int(t['prompt_tokens'])}: {int(t['prefilled_tokens'])} prefilled, "
            f"{int(t['cached_tokens'])} from cache ({100 * t['cached_tokens'] / prompt:.1f}%)",
            f"tool calls    {int(t['tool_calls'])} ({int(t['tool_errors'])} errors), "
            f"tool time {t['tool_time_s']:.2f}s",
            f"cluster       {self.cluster}",
            *self._engine_lines(gpu),
            *self._journal_lines(),
            f"trace         {self.trace_path}",
        ]
        if self.results_path is not None:
            out.append(f"results       {self.results_path}")
        for r in self.failed[:5]:
            out.append(f"  {r.program_id}: {r.status}: {r.error}")
        return out

    def _journal_lines(self) -> list[str]:
        lines = []
        if self.stopped_by is not None:
            lines.append(f"stopped       by {self.stopped_by}: {len(self.results)} programs "
                         f"finished, {len(self.unfinished)} not finished")
        if self.journal is None:
            return lines
        lines.append(f"journal       {self.journal}")
        replayed = [r for r in self.results if r.from_journal]
        resumed = [r for r in self.results if r.attempt > 1 and not r.from_journal]
        if replayed or resumed:
            steps = sum(len(r.steps_replayed) for r in resumed)
            rerun = sum(len(r.steps_rerun) for r in resumed)
            tools = sum(r.tool_calls_replayed for r in resumed)
            lines.append(f"resumed       {len(replayed)} programs done before (from the "
                         f"journal), {len(resumed)} resumed: {steps} steps from the journal, "
                         f"{rerun} re-run, {tools} tool calls from the journal")
        errors = [r for r in self.results if r.journal_error]
        if errors:
            lines.append(f"journal error {len(errors)} outcomes not journaled: "
                         f"{errors[0].journal_error}")
        return lines

    def _engine_lines(self, gpu: float) -> list[str]:
        """What the figures above are: measured on real servers, or simulated."""
        kinds = {w.get("engine", "SimulatedEngine") for w in self.workers}
        simulated = [w for w in self.workers if w.get("engine", "SimulatedEngine")
                     in ("SimulatedEngine", "LatencyEngine")]
        lines = []
        if kinds & {"OpenAIEngine"}:
            servers = sum(w.get("engine") == "OpenAIEngine" for w in self.workers)
            lines.append(f"measured      tokens, cached tokens and times of the calls on "
                         f"{servers} real server(s) are what the servers reported; run wall "
                         f"time {self.wall_time_s:.1f}s")
        if simulated:
            lines.append(f"GPU time      {gpu:.2f}s simulated across {len(simulated)} "
                         f"workers (simulated GPU, not a measurement; wall = GPU time x "
                         f"{self.time_scale:g}); run wall time {self.wall_time_s:.1f}s")
        if kinds == {"InlineEngine"}:
            lines.append(f"engines       inline (replies at once, nothing modeled); run wall "
                         f"time {self.wall_time_s:.1f}s")
        return lines

    def print(self) -> None:
        print("\n".join(["", "== agentrt run summary =="] + self.lines()))


def _jct_line(jct: np.ndarray) -> str:
    if jct.size == 0:
        return "job completion time: no program finished"
    p50, p99 = np.percentile(jct, [50, 99])
    return (f"job completion time mean {jct.mean():.2f}s  p50 {p50:.2f}s  p99 {p99:.2f}s")

