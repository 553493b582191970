"""Workload generators: look-alikes of the agent workloads the literature measures.

Each generator takes `n` (programs) and a seed and returns `ProgramSpec`s with arrival 0
(the simulator's arrival process sets arrivals). Shapes follow ALGORITHMS.md section 6:

- swe:         SWE-bench-style coding agents; ~11 turns (3-40), contexts from a few
               thousand tokens growing a few thousand a turn, tools of several kinds
               (fast shell 50 ms-1 s, test runs 2-60 s, occasional long builds), heavy
               tails; with per-program features correlated with length (`_swe_features`)
- bfcl:        BFCL-style function calling; ~6 turns, short contexts, fast tools
- remote:      SWE-shaped programs whose tools are remote services with heavy tails
               (p95 tens of seconds, p99 hundreds); no features
- dag:         workflows with parallel branches: plan -> k workers -> merge
- oversub:     sessions with unique prefixes (no sharing), sized by the caller to a
               multiple of the cluster's KV capacity
- longhorizon: long coding-agent sessions after published 2026 traffic (about 40
               calls, contexts to the model's window with compaction, heavy-tailed
               tools, human think time, subagents, per-program features); see
               `programs.workloads.longhorizon`

Distributions are documented at each draw; all randomness comes from the passed seed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from agentrt.programs.workloads.longhorizon import longhorizon
from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec

Generator = Callable[..., list[ProgramSpec]]


def _lognormal(rng: np.random.Generator, median: float, sigma: float) -> float:
    return float(median * np.exp(sigma * rng.standard_normal()))


def _turn_count(rng: np.random.Generator, mean: float, low: int, high: int) -> int:
    # Negative binomial around the mean (dispersion 3): a long right tail, as observed.
    r = 3.0
    p = r / (r + mean - low)
    return int(np.clip(low + rng.negative_binomial(r, p), low, high))


# -- tool mixes: (name, probability, duration sampler) ---------------------------------
def _swe_tool(rng: np.random.Generator) -> tuple[str, float]:
    u = rng.random()
    if u < 0.60:  # ls/cat/grep/edit: log-uniform 50 ms - 1 s
        return "shell", float(np.exp(rng.uniform(np.log(0.05), np.log(1.0))))
    if u < 0.95:  # test runs: median 8 s, clipped to 2-60 s
        return "run_tests", float(np.clip(_lognormal(rng, 8.0, 0.8), 2.0, 60.0))
    return "build", float(np.clip(_lognormal(rng, 90.0, 0.6), 30.0, 600.0))  # long ones


def _remote_tool(rng: np.random.Generator) -> tuple[str, float]:
    # Remote APIs / web search / sandboxes: median 2 s, sigma 1.8 -> p95 ~39 s, p99 ~130 s.
    name = ("web_search", "remote_exec", "api_call")[int(rng.integers(3))]
    return name, float(min(_lognormal(rng, 2.0, 1.8), 900.0))


def _fast_tool(rng: np.random.Generator) -> tuple[str, float]:
    return "function", float(np.exp(rng.uniform(np.log(0.05), np.log(0.5))))


def _agent_step(rng, step_id, turns, first_input, growth_median, output_median, tool,
                prefix_id, prefix_tokens, deps=(), kind="agent") -> StepSpec:
    specs = []
    for k in range(turns):
        last = k == turns - 1
        name, duration = (None, 0.0) if last else tool(rng)
        specs.append(TurnSpec(
            input_tokens=first_input if k == 0 else max(16, int(_lognormal(rng, growth_median, 0.7))),
            output_tokens=max(4, int(_lognormal(rng, output_median, 0.6))),
            tool=name, tool_duration=duration))
    return StepSpec(step_id, specs, tuple(deps), prefix_id, prefix_tokens, kind)


def swe(n: int, seed: int = 0, *, tool: Callable = _swe_tool, agent: str = "swe",
        features: bool = True) -> list[ProgramSpec]:
    """SWE-style coding agents: one long step each; with `features`, what a fleet logs
    about each (`_swe_features`)."""
    rng = np.random.default_rng(seed)
    # Features come from a stream of their own, so the programs are the same with or
    # without them.
    feature_rng = np.random.default_rng((seed, _FEATURE_STREAM))
    out = []
    for i in range(n):
        turns = _turn_count(rng, 11.0, 3, 40)
        first = int(rng.uniform(2000, 6000))  # issue text + repository map
        step = _agent_step(rng, "solve", turns, first, 1800.0, 200.0, tool,
                           prefix_id=f"{agent}-system", prefix_tokens=1500)
        logged = _swe_features(feature_rng, turns, first) if features else {}
        out.append(ProgramSpec(f"{agent}-{i:05d}", [step], agent=agent, features=logged))
    return out


_FEATURE_STREAM = 0xFEA7
# Task kinds from shortest to longest, and the standard-normal quantiles splitting them
# by share (15% / 15% / 35% / 25% / 10%, as in the longhorizon workload).
_KINDS = ("question", "test", "bugfix", "feature", "refactor")
_KIND_CUTS = (-1.036, -0.524, 0.385, 1.2816)


def _swe_features(rng: np.random.Generator, turns: int, first: int) -> dict:
    """What a fleet logs when the program starts, drawn after the program so the
    programs stay those of the generator without features. An assumption (published
    traces report that length varies with the task, not by how much): with z the
    program's standardised log length (log 11 turns, sd 0.45), the task kind is a
    quantile bin of 0.7 z + 0.71 noise and log(repository size) has correlation 0.5
    with z; `prompt_tokens` is the first turn's input. Together they explain about
    half of the variance of log(turns), as in the longhorizon workload."""
    z = (np.log(turns) - np.log(11.0)) / 0.45
    latent = 0.7 * z + 0.71 * rng.standard_normal()
    kind = _KINDS[int(np.searchsorted(_KIND_CUTS, latent))]
    repo = int(300_000 * np.exp(1.2 * (0.5 * z + 0.866 * rng.standard_normal())))
    return {"task_kind": kind, "repo_tokens": repo, "prompt_tokens": first}


def remote(n: int, seed: int = 0) -> list[ProgramSpec]:
    """SWE-shaped programs whose tools are heavy-tailed remote services."""
    return swe(n, seed, tool=_remote_tool, agent="remote", features=False)


def bfcl(n: int, seed: int = 0) -> list[ProgramSpec]:
    """Function-calling agents: short contexts, ~6 turns, fast tools."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        turns = _turn_count(rng, 6.0, 2, 16)
        step = _agent_step(rng, "call", turns, int(rng.uniform(300, 900)), 150.0, 60.0,
                           _fast_tool, prefix_id="bfcl-functions", prefix_tokens=1000)
        out.append(ProgramSpec(f"bfcl-{i:05d}", [step], agent="bfcl"))
    return out


def dag(n: int, seed: int = 0) -> list[ProgramSpec]:
    """plan -> k parallel workers (2-4) -> merge; each step a short agent loop."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(2, 5))
        plan = _agent_step(rng, "plan", 2, 1500, 800.0, 300.0, _swe_tool,
                           "dag-system", 1200, kind="plan")
        workers = [_agent_step(rng, f"work{j}", _turn_count(rng, 5.0, 2, 12), 1200, 1200.0,
                               200.0, _swe_tool, "dag-system", 1200, deps=("plan",),
                               kind="work") for j in range(k)]
        merge = _agent_step(rng, "merge", 2, 2000, 600.0, 300.0, _swe_tool, "dag-system",
                            1200, deps=tuple(w.step_id for w in workers), kind="merge")
        out.append(ProgramSpec(f"dag-{i:05d}", [plan, *workers, merge], agent="dag"))
    return out


def oversub(n: int, seed: int = 0, *, context_tokens: int = 32_000) -> list[ProgramSpec]:
    """Sessions with unique prefixes whose contexts reach about `context_tokens`; pick n
    so that n * context_tokens is the multiple of cluster KV capacity you want."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        turns = 8
        first = context_tokens // 2
        growth = (context_tokens - first - turns * 64) // (turns - 1)
        specs = [TurnSpec(first if k == 0 else growth, 64,
                          None if k == turns - 1 else "sleep",
                          0.0 if k == turns - 1 else float(rng.uniform(0.5, 4.0)))
                 for k in range(turns)]
        out.append(ProgramSpec(f"oversub-{i:05d}", [StepSpec("s", specs)], agent="oversub"))
    return out


GENERATORS: dict[str, Generator] = {
    "swe": swe, "remote": remote, "bfcl": bfcl, "dag": dag, "oversub": oversub,
    "longhorizon": longhorizon,
}


def generate(name: str, n: int, seed: int = 0, **kwargs) -> list[ProgramSpec]:
    """Programs from the named generator. Raises ValueError listing the valid names."""
    try:
        gen = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; valid: {sorted(GENERATORS)}") from None
    return gen(n, seed, **kwargs)
