"""Planning workloads: tasks split into verified subtasks, with hidden per-model behaviour.

A planning task is a DAG of subtasks. Each subtask is solved by sampling a model and
checking the sample with a verifier (unit tests for code, a proof checker for proofs).
For every (subtask, model) the task carries two descriptions of one sample's behaviour:

    prior  what a planner is told: a noisy success estimate, a length estimate and how
           far off each may be (`success_uncertainty`, `length_uncertainty`)
    truth  what actually happens (success probability, output-length distribution);
           only an evaluation harness reads it

Generators (ALGORITHMS.md section 5):

- codeflow:   function-level subproblems of a programming task in a dependency tree (a
              function depends on its helpers): about 2.2 subtasks and depth about 1.9
              per task, unit-test verifiers
- proofflow:  proof-step DAGs: lemmas that use one or two earlier lemmas, a final theorem
              that uses every unused lemma; proof-checker verifiers

Success follows a logistic ability model: the told estimate is logit p0 = skill(model) -
difficulty(subtask) + noise(subtask, model), and the truth deviates from it by
`prior_noise` on the logit scale (so the told value is the best guess, not a biased one;
passed on to planners as `PlanTask.success_uncertainty`); the true length median deviates from the told one by a log-normal factor
(`length_noise`, passed on to planners as `PlanTask.length_uncertainty`). All randomness
comes from the seed. This module depends on nothing else of ours.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """How a model behaves on these workloads: ability on the logit scale and how long
    its answers are relative to a subtask's base length."""

    name: str
    skill: float
    verbosity: float


# Names match runtime.config.DEFAULT_PRICES where a price exists; "frontier" stands for an
# expensive hosted model (its price and latency are set by the harness).
# Spread so that on CodeFlow the mean true success per sample is about 0.25 / 0.55 / 0.8
# and, at the harness's prices, each model is the cheapest way to a pass on some
# subtasks (8B on about 70%, 70B on about 28%, frontier on the hardest 1-2%).
DEFAULT_PROFILES: tuple[ModelProfile, ...] = (
    ModelProfile("llama-3.1-8b", skill=-1.2, verbosity=1.0),
    ModelProfile("llama-3.1-70b", skill=0.8, verbosity=0.9),
    ModelProfile("frontier", skill=2.8, verbosity=0.8),
)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One sample of one model on one subtask: success probability and a log-normal
    output length (median tokens, sigma of the log)."""

    p: float
    len_median: float
    len_sigma: float


@dataclass(slots=True)
class PlanSubtask:
    subtask_id: str
    deps: tuple[str, ...]
    prompt_tokens: int
    max_tokens: int
    """Output cap of one sample; a budget ledger reserves a call's cost at this length."""
    verifier: str
    max_samples: int
    prior: dict[str, Behaviour]
    truth: dict[str, Behaviour]
    """Hidden: only an evaluation harness may read it."""


@dataclass(slots=True)
class PlanTask:
    task_id: str
    family: str
    subtasks: list[PlanSubtask]
    prior_strength: float = 4.0
    """Pseudo-observations the prior success estimates are worth."""
    length_uncertainty: float = 0.3
    """Standard deviation of log(told median / true median) of the prior lengths."""
    success_uncertainty: float | None = None
    """Standard deviation of logit(true p) - logit(told p). When given, each prior is the
    Beta with the mean and variance that this error implies (see
    `runtime.core.planner.estimates.logit_normal_beta`) instead of the told p worth
    `prior_strength` samples."""
    meta: dict = field(default_factory=dict)

    def depth(self) -> int:
        """Subtasks on the longest dependency chain."""
        level: dict[str, int] = {}
        for s in self.subtasks:  # generators list dependencies first
            level[s.subtask_id] = 1 + max((level[d] for d in s.deps), default=0)
        return max(level.values())


def told_the_truth(task: PlanTask) -> PlanTask:
    """A copy of `task` whose priors are its hidden truth, stated as exact (success rates
    worth 10,000 samples, length medians with no error). For evaluation only: a planner
    given this knows what no planner can, so its score bounds what better estimates
    could add."""
    subtasks = [replace(s, prior={m: Behaviour(b.p, b.len_median, b.len_sigma)
                                  for m, b in s.truth.items()})
                for s in task.subtasks]
    return replace(task, subtasks=subtasks, prior_strength=10_000.0,
                   length_uncertainty=0.0, success_uncertainty=None)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _behaviours(rng: np.random.Generator, difficulty: float, base_len: float,
                len_sigma: float, profiles: Sequence[ModelProfile], prior_noise: float,
                length_noise: float) -> tuple[dict[str, Behaviour], dict[str, Behaviour]]:
    prior, truth = {}, {}
    for prof in profiles:
        # The told values are the best estimate; the truth deviates from them.
        logit = prof.skill - difficulty + 0.4 * rng.standard_normal()
        told = base_len * prof.verbosity * float(np.exp(0.15 * rng.standard_normal()))
        prior[prof.name] = Behaviour(float(np.clip(_sigmoid(logit), 0.02, 0.98)), told,
                                     len_sigma)
        p_true = _sigmoid(logit + prior_noise * rng.standard_normal())
        median = told * float(np.exp(length_noise * rng.standard_normal()))
        truth[prof.name] = Behaviour(float(np.clip(p_true, 0.01, 0.97)), median, len_sigma)
    return prior, truth


def _tree_parents(rng: np.random.Generator, n: int) -> list[int]:
    """Parent of each node 1..n-1 (node 0 is the task's top-level function). Most helpers
    hang off the top-level function, the rest off another helper: depth about 1.9."""
    parents = [-1]
    for i in range(1, n):
        parents.append(0 if i == 1 or rng.random() < 0.55 else int(rng.integers(1, i)))
    return parents


def codeflow(n: int, seed: int = 0, *, profiles: Sequence[ModelProfile] = DEFAULT_PROFILES,
             prior_noise: float = 0.8, length_noise: float = 0.3,
             difficulty: tuple[float, float] = (0.5, 1.6)) -> list[PlanTask]:
    """Programming tasks split into functions: 1-5 functions (mean about 2.2), a function
    depends on the helpers it calls, each checked by its unit tests. `difficulty` is the
    (mean, standard deviation) of a subtask's difficulty on the logit scale;
    `prior_noise` and `length_noise` are how far the truth strays from what planners
    are told (logit scale; log of the length median)."""
    rng = np.random.default_rng(seed)
    tasks = []
    for t in range(n):
        size = int(rng.choice([1, 2, 3, 4, 5], p=[0.30, 0.35, 0.20, 0.10, 0.05]))
        parents = _tree_parents(rng, size)
        subtasks: list[PlanSubtask] = []
        for i in reversed(range(size)):  # helpers first, the top-level function last
            deps = tuple(f"f{j}" for j in range(size) if parents[j] == i)
            hardness = float(rng.normal(*difficulty))
            base_len = float(np.clip(400 * np.exp(0.5 * rng.standard_normal()), 80, 2000))
            prior, truth = _behaviours(rng, hardness, base_len, 0.45, profiles,
                                       prior_noise, length_noise)
            prompt = int(1200 + 500 * len(deps) + 1500 * np.exp(0.4 * rng.standard_normal()))
            subtasks.append(PlanSubtask(f"f{i}", deps, prompt, int(4 * base_len),
                                        "unit_tests", 8, prior, truth))
        tasks.append(PlanTask(f"codeflow-{t:05d}", "codeflow", subtasks,
                              length_uncertainty=length_noise,
                              success_uncertainty=prior_noise))
    return tasks


def proofflow(n: int, seed: int = 0, *, profiles: Sequence[ModelProfile] = DEFAULT_PROFILES,
              prior_noise: float = 0.8, length_noise: float = 0.3,
              difficulty: tuple[float, float] = (0.9, 1.6)) -> list[PlanTask]:
    """Proofs split into steps: 2-6 lemmas, each using one or two earlier lemmas with
    probability 0.6, then the theorem, which uses every lemma nothing else used. Steps
    are harder and their lengths vary more than CodeFlow's; a proof checker verifies.
    Parameters as for `codeflow`."""
    rng = np.random.default_rng(seed)
    tasks = []
    for t in range(n):
        lemmas = int(rng.integers(2, 7))
        deps_of: list[tuple[str, ...]] = []
        for i in range(lemmas):
            k = 0 if i == 0 or rng.random() > 0.6 else int(rng.integers(1, min(i, 2) + 1))
            deps_of.append(tuple(f"l{j}" for j in sorted(rng.choice(i, k, replace=False))))
        used = {d for deps in deps_of for d in deps}
        deps_of.append(tuple(f"l{i}" for i in range(lemmas) if f"l{i}" not in used))
        subtasks = []
        for i, deps in enumerate(deps_of):
            name = "thm" if i == lemmas else f"l{i}"
            hardness = float(rng.normal(*difficulty))
            base_len = float(np.clip(250 * np.exp(0.5 * rng.standard_normal()), 60, 1500))
            prior, truth = _behaviours(rng, hardness, base_len, 0.6, profiles,
                                       prior_noise, length_noise)
            prompt = int(600 + 400 * len(deps) + 800 * np.exp(0.4 * rng.standard_normal()))
            subtasks.append(PlanSubtask(name, deps, prompt, int(4 * base_len),
                                        "proof_checker", 8, prior, truth))
        tasks.append(PlanTask(f"proofflow-{t:05d}", "proofflow", subtasks,
                              length_uncertainty=length_noise,
                              success_uncertainty=prior_noise))
    return tasks


PLANNING_WORKLOADS: dict[str, Callable[..., list[PlanTask]]] = {
    "codeflow": codeflow,
    "proofflow": proofflow,
}


def generate_planning(name: str, n: int, seed: int = 0, **kwargs) -> list[PlanTask]:
    """`n` tasks of the named planning workload. Raises ValueError for an unknown name."""
    if name not in PLANNING_WORKLOADS:
        raise ValueError(f"unknown planning workload {name!r}; valid: "
                         f"{sorted(PLANNING_WORKLOADS)}")
    return PLANNING_WORKLOADS[name](n, seed, **kwargs)
