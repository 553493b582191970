"""The planner of one running program: admission, a choice per attempt, outcomes.

    admit() ──▶ rejected (estimate, reason)  or  admitted
    step ready: choose(step) ──plan──▶ (model, k) ──▶ the step's k forks run, verified
                   ▲                                             │
                   └──── replan ◀── observe(step, verdicts, lengths) (Beta, lengths)

The session owns the planner's `ProgramState` and keeps it in step with the program's
`BudgetLedger` (settled and reserved spend) and the wall clock before every plan. A plan
is made for every ready planned step, but only the asking step's choice is used; a step
the plan leaves out waits for the next outcome (and is given up when nothing is in
flight). The ledger, not the planner, guards the budget: the sampler reserves each
call's worst case before it dispatches anything.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from agentrt.runtime.core.budget import BudgetLedger
from agentrt.runtime.core.planner import (
    Option, Plan, Planner, PlanningProblem, ProgramState, Running,
)

NO_LIMIT_USD = 1e6
"""Budget the planner plans against when the program has no USD budget."""
NO_DEADLINE_S = 1e6
"""Time left the planner plans against when the program has no deadline."""


class PlanStopped(RuntimeError):
    """The planner gave the program up; the message is its reason."""

    def __init__(self, reason: str, estimate: float | None = None) -> None:
        super().__init__(reason)
        self.estimate = estimate


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    estimate: float | None
    """The planner's estimated success probability (None when it gives none)."""
    reason: str


@dataclass(frozen=True, slots=True)
class StepPlan:
    """What `ctx.plan` shows: the option of the step's latest attempt and the
    planner's estimate of the program's success probability when it chose it."""

    model: str
    k: int
    attempt: int
    estimate: float | None
    reason: str


class PortfolioSession:
    """One program's planning. Not thread-safe: used from the runner's event loop."""

    def __init__(self, problem: PlanningProblem, planner: Planner, ledger: BudgetLedger,
                 budget_usd: float | None, deadline: float | None,
                 clock: Callable[[], float], rng: np.random.Generator) -> None:
        self.problem, self.planner, self.ledger = problem, planner, ledger
        self.clock, self.rng = clock, rng
        limit = budget_usd if budget_usd is not None else NO_LIMIT_USD
        end = deadline if deadline is not None else clock() + NO_DEADLINE_S
        self.state = ProgramState(problem, limit, end, now=clock())
        self.attempts: dict[str, int] = {}
        self.plan_seconds: list[float] = []
        self._changed = asyncio.Event()
        planner.reset()

    # -- admission -------------------------------------------------------------------
    def admit(self, min_success: float) -> Admission:
        """Plan once for the start of the program and judge it: rejected when the
        planner stops, its estimate is below `min_success`, or even the cheapest
        sample of every planned step is expected to cost more than the budget."""
        cheapest = self._cheapest_expected_usd()
        if cheapest > self.state.budget_usd:
            return Admission(False, 0.0, (
                f"the cheapest plan (one sample of the cheapest candidate per step) is "
                f"expected to cost ${cheapest:.5f}, more than the ${self.state.budget_usd:.5f}"
                f" budget; raise budget_usd or declare cheaper candidates"))
        plan = self._plan()
        estimate = None if math.isnan(plan.score) else plan.score
        if plan.stop:
            return Admission(False, estimate, f"the {self.planner.name} planner gives up at "
                                              f"admission: {plan.reason}")
        if estimate is not None and estimate < min_success:
            return Admission(False, estimate, (
                f"estimated success probability {estimate:.1%} is below the admission "
                f"threshold {min_success:.1%} (RuntimeConfig.admission_min_success); raise "
                "the budget or the deadline"))
        return Admission(True, estimate, plan.reason)

    def _cheapest_expected_usd(self) -> float:
        stats = self.problem.stats()
        cost = np.where(stats.valid, stats.exp_cost, np.inf)
        p = stats.p_success
        usable = np.where(p > 1e-3, cost, np.inf)  # candidates of the step only
        return float(usable.min(axis=1).sum())

    # -- choices -------------------------------------------------------------------------
    async def choose(self, step_id: str) -> StepPlan:
        """The option for the next attempt of `step_id`; waits for an outcome while the
        plan leaves the step out. Raises PlanStopped when the planner gives up, or
        leaves the step out with nothing in flight."""
        while True:
            plan = self._plan()
            estimate = None if math.isnan(plan.score) else plan.score
            if plan.stop:
                raise PlanStopped(f"the {self.planner.name} planner stopped: {plan.reason}",
                                  estimate)
            option = plan.choices.get(step_id)
            if option is not None:
                option = self._declared(step_id, option)
                attempt = self.attempts.get(step_id, 0)
                return StepPlan(option.model, option.k, attempt, estimate, plan.reason)
            if not self.state.running:
                raise PlanStopped(f"the {self.planner.name} planner chose nothing for step "
                                  f"{step_id!r} and nothing is in flight: {plan.reason}",
                                  estimate)
            await self.outcome()

    async def outcome(self) -> None:
        """Return at the next observed outcome (or abandoned attempt)."""
        self._changed.clear()
        await self._changed.wait()

    def dispatched(self, step_id: str, model: str, k: int) -> None:
        """An attempt of `step_id` with k samples of `model` is in flight."""
        self.attempts[step_id] = self.attempts.get(step_id, 0) + 1
        self.state.running[step_id] = Running(Option(model, k), self.clock())
        self._sync()

    def observe(self, step_id: str, model: str, verdicts: list[bool],
                lengths: list[int]) -> None:
        """The attempt's verified samples: update the estimates; a pass makes the step
        done. Wakes steps waiting for a choice."""
        passed = sum(verdicts)
        self.problem.observe(step_id, model, passed, len(verdicts) - passed, lengths)
        self.state.running.pop(step_id, None)
        if passed:
            self.state.done.add(step_id)
        self._sync()
        self._changed.set()

    def abandoned(self, step_id: str) -> None:
        """An attempt ended without outcomes (cancelled, or nothing reservable)."""
        self.state.running.pop(step_id, None)
        self._changed.set()

    def finished(self, step_id: str) -> None:
        """The step returned: whatever it did, it needs no more samples."""
        if step_id in self.problem.index:
            self.state.done.add(step_id)
            self.state.running.pop(step_id, None)
            self._changed.set()

    # -- internals -------------------------------------------------------------------
    def _plan(self) -> Plan:
        self._sync()
        t0 = time.perf_counter()
        plan = self.planner.plan(self.state, self.rng)
        self.plan_seconds.append(time.perf_counter() - t0)  # the planner's own latency
        return plan

    def _sync(self) -> None:
        state, led = self.state, self.ledger
        state.now = self.clock()
        state.spent_usd, state.reserved_usd = led.spent_usd, led.reserved_usd

    def _declared(self, step_id: str, option: Option) -> Option:
        """The plan's option if the step declared its model; else (a rule planner that
        ignores priors) the step's most likely candidate at the same k."""
        s = self.problem.index[step_id]
        p = self.problem.success.mean()[s]
        m = self.problem.model_index[option.model]
        if p[m] > 1e-3:
            return option
        return Option(self.problem.models[int(np.argmax(p))], option.k)
