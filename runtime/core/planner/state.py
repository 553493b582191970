"""What a planner is asked and what it answers.

`ProgramState` is the executor's view of one program in flight; the executor owns and
mutates it, a planner only reads it. `Plan` is the answer: an option per ready subtask to
dispatch now (ready subtasks left out wait for the next call), or `stop` with a reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from agentrt.runtime.core.planner.model import Option, PlanningProblem


@dataclass(slots=True)
class Running:
    """A subtask's attempt in flight: its option and when its calls were dispatched."""

    option: Option
    started_at: float


@dataclass(slots=True)
class ProgramState:
    problem: PlanningProblem
    budget_usd: float
    deadline: float
    """Absolute time (same clock as `now`) by which every subtask must have passed."""
    now: float = 0.0
    spent_usd: float = 0.0
    """Settled spend of finished calls."""
    reserved_usd: float = 0.0
    """Worst-case cost of calls in flight, held by the ledger until they settle."""
    done: set[str] = field(default_factory=set)
    running: dict[str, Running] = field(default_factory=dict)

    @property
    def left_usd(self) -> float:
        """What the program may still spend, counting calls in flight at actual cost."""
        return self.budget_usd - self.spent_usd

    @property
    def free_usd(self) -> float:
        """What a new reservation may take now."""
        return self.budget_usd - self.spent_usd - self.reserved_usd

    @property
    def time_left(self) -> float:
        return self.deadline - self.now

    def ready(self) -> list[str]:
        """Subtasks not done and not running whose dependencies are done, in the
        problem's topological order."""
        p = self.problem
        return [sid for sid, deps in zip(p.ids, p.deps)
                if sid not in self.done and sid not in self.running
                and all(p.ids[d] in self.done for d in deps)]

    def remaining(self) -> list[int]:
        """Indices of subtasks not done, in topological order."""
        return [i for i, sid in enumerate(self.problem.ids) if sid not in self.done]


@dataclass(frozen=True, slots=True)
class Plan:
    """`choices`: subtask id -> option to dispatch now. `score`: the planner's estimate
    of the probability that the program finishes within budget and deadline (nan when
    it does not estimate one). `stop`: give the program up now, `reason` says why."""

    choices: dict[str, Option]
    score: float = math.nan
    reason: str = ""
    stop: bool = False


class Planner(Protocol):
    """Chooses (model, k) for ready subtasks.

    `reset()` forgets per-program state; the executor calls it before each program.
    `plan(state, rng)` is called whenever `state.ready()` is not empty: at the start and
    after every observed outcome. It must not mutate `state`, may keep per-program state
    (open-loop planners plan once), draws randomness only from `rng`, and returns options
    whose k does not exceed the subtask's max_samples. An option whose worst case the
    ledger cannot reserve is dispatched with fewer samples, or not at all.
    """

    name: str

    def reset(self) -> None: ...

    def plan(self, state: ProgramState, rng: np.random.Generator) -> Plan: ...
