"""Run one program under a planner on a virtual clock, paying through a budget ledger.

    plan ready subtasks -> reserve each call's worst case -> dispatch the k samples
         ^                                                    |
         |            observe (Beta update, lengths) <- settle actual usage <- finish

A subtask's k samples start together and finish with the slowest; then every sample's
verdict and length are observed, the calls are settled, and the planner replans. Before a
call is dispatched the ledger reserves its worst case (the prompt plus max_tokens of
output); a call that cannot be reserved is not made, so the k actually dispatched may be
smaller than the plan's (rounded down to an option's k), and spend never exceeds the
budget.
The program fails when an attempt would finish after the deadline (the work is
cancelled), when nothing can be dispatched or is in flight (budget), or when the planner
stops it. Outcomes come from a `World`; the planner's own latency is measured with
time.perf_counter around each call.
"""
from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from agentrt.runtime.core.budget import BudgetExhausted, BudgetLedger, Reservation
from agentrt.runtime.core.planner.model import Option, PlanningProblem
from agentrt.runtime.core.planner.state import Plan, Planner, ProgramState, Running

RESERVE_MARGIN_USD = 1e-9
"""Headroom a reservation leaves, so float rounding in the ledger's sums cannot tip
spend over the budget."""


def reserve_samples(ledger: BudgetLedger, model: str, prompt_tokens: int, max_tokens: int,
                    k: int, ks: Sequence[int], worst_usd: float) -> list[Reservation]:
    """Reserve up to `k` calls of `model` at their full worst case (prompt + max_tokens,
    never shortened; `worst_usd` each), leaving RESERVE_MARGIN_USD of the USD budget;
    keep the largest count that is one of the options' `ks` and cancel the rest."""
    held: list[Reservation] = []
    for _ in range(k):
        if ledger.usd_limit is not None and (
                ledger.usd_limit - ledger.spent_usd - ledger.reserved_usd - worst_usd
                < RESERVE_MARGIN_USD):
            break
        try:
            r = ledger.reserve(model, prompt_tokens, max_tokens)
        except BudgetExhausted:
            break
        if r.max_tokens < max_tokens:  # a token budget would cut the sample short
            ledger.cancel(r)
            break
        held.append(r)
    keep = max((int(x) for x in ks if x <= len(held)), default=0)
    for r in held[keep:]:
        ledger.cancel(r)
    return held[:keep]


class World(Protocol):
    """Where sample outcomes come from (the hidden truth in a benchmark)."""

    def sample(self, sid: str, model: str, attempt: int, j: int) -> tuple[bool, int]:
        """(passed the verifier, output tokens) of sample j of attempt `attempt`."""
        ...


@dataclass(slots=True)
class ProgramOutcome:
    status: str
    """success | deadline | budget | stopped"""
    reason: str
    spent_usd: float
    budget_usd: float
    makespan: float
    done: list[str]
    """Subtasks that passed, in the order they passed."""
    total: int
    plan_seconds: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "success"


@dataclass(slots=True)
class _Attempt:
    sid: str
    model: str
    reservations: list[Reservation]
    passed: list[bool]
    lengths: list[int]


class Executor:
    """One program, start to end. `run` may be called once."""

    def __init__(self, problem: PlanningProblem, planner: Planner, budget_usd: float,
                 deadline_s: float, world: World, rng: np.random.Generator) -> None:
        self.problem, self.planner, self.world, self.rng = problem, planner, world, rng
        self.state = ProgramState(problem, budget_usd, deadline_s)
        self.ledger = BudgetLedger(usd_limit=budget_usd,
                                   prices={c.name: c.price for c in problem.cards})
        self.events: list[tuple[float, int, _Attempt]] = []
        self.attempts: dict[str, int] = {}
        self.plan_seconds: list[float] = []
        self.done: list[str] = []
        self._dispatched = 0  # tie-break for events finishing at the same time

    def run(self) -> ProgramOutcome:
        self.planner.reset()
        state = self.state
        while len(state.done) < len(self.problem.ids):
            if state.ready():
                plan = self._plan()
                if plan.stop:
                    return self._end("stopped", plan.reason)
                for sid, option in plan.choices.items():
                    self._dispatch(sid, option)
            if not self.events:
                return self._end("budget", f"no call for {state.ready()} can be reserved "
                                           f"within the ${state.free_usd:.6f} left")
            finish, _, attempt = heapq.heappop(self.events)
            if finish > state.deadline:
                return self._end("deadline", f"{attempt.sid} would finish at {finish:.1f} s,"
                                             f" after the {state.deadline:.1f} s deadline")
            state.now = finish
            self._complete(attempt)
        return self._end("success", "every subtask passed")

    def _plan(self) -> Plan:
        t0 = time.perf_counter()
        plan = self.planner.plan(self.state, self.rng)
        self.plan_seconds.append(time.perf_counter() - t0)
        ready = set(self.state.ready())
        wrong = sorted(set(plan.choices) - ready)
        if wrong:
            raise ValueError(f"planner {self.planner.name!r} chose {wrong}, which are not "
                             f"ready (ready: {sorted(ready)}); plan only state.ready()")
        return plan

    def _dispatch(self, sid: str, option: Option) -> None:
        s, m = self.problem.index[sid], self.problem.model_index[option.model]
        reservations = self._reserve(s, m, option.k)
        if not reservations:
            return  # stays ready; the planner is asked again after the next outcome
        a = self.attempts.get(sid, 0)
        self.attempts[sid] = a + 1
        draws = [self.world.sample(sid, option.model, a, j) for j in range(len(reservations))]
        lengths = [n for _, n in draws]
        p = self.problem
        finish = self.state.now + max(p.prefill[s, m] + n * p.tpot[s, m] for n in lengths)
        attempt = _Attempt(sid, option.model, reservations, [ok for ok, _ in draws], lengths)
        self._dispatched += 1
        heapq.heappush(self.events, (finish, self._dispatched, attempt))
        self.state.running[sid] = Running(Option(option.model, len(reservations)),
                                          self.state.now)
        self.state.reserved_usd = self.ledger.reserved_usd

    def _reserve(self, s: int, m: int, k: int) -> list[Reservation]:
        """Reserve up to k calls at their worst case; keep the largest count that is
        an option's k."""
        p = self.problem
        return reserve_samples(self.ledger, p.models[m], int(p.prompt[s]), int(p.max_tokens[s]),
                               k, p.ks, p.call_worst_usd(s, m))

    def _complete(self, attempt: _Attempt) -> None:
        led, state = self.ledger, self.state
        for r, n in zip(attempt.reservations, attempt.lengths):
            led.settle(r, r.prompt_tokens, n)
        assert led.spent_usd <= led.usd_limit, (led.spent_usd, led.usd_limit)
        state.spent_usd, state.reserved_usd = led.spent_usd, led.reserved_usd
        passed = sum(attempt.passed)
        self.problem.observe(attempt.sid, attempt.model, passed,
                             len(attempt.passed) - passed, attempt.lengths)
        del state.running[attempt.sid]
        if passed:
            state.done.add(attempt.sid)
            self.done.append(attempt.sid)

    def _end(self, status: str, reason: str) -> ProgramOutcome:
        return ProgramOutcome(status, reason, self.ledger.spent_usd, self.state.budget_usd,
                              self.state.now, list(self.done), len(self.problem.ids),
                              self.plan_seconds)
