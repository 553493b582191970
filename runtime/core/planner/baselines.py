"""Baseline planners (ALGORITHMS.md section 5), each a small strategy object.

    cheapest      the model with the lowest expected call cost (averaged over the
                  program's subtasks), one sample, always
    strongest     the model with the highest prior success, one sample, always
    fixed-k       the success-per-cost model at k = 1, sampled k times (default 4)
    greedy        per ready subtask, the best success per expected cost among options
                  that fit an even split of the budget left; replans on estimates
    open-loop-mc  Monte-Carlo search for one option per subtask at the start (coordinate
                  ascent on rollouts with the options held for retries too); never replans
    knapsack      at the start, maximise the product of subtask success probabilities
                  subject to total expected cost <= budget, options restricted to those
                  whose expected time fits an even split of the deadline over the longest
                  chain; never replans

Retries of a failed subtask use the same rule (or, for the planned-once ones, the same
option). None of them stops a program early.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from agentrt.runtime.core.planner.mcpp import MCPPConfig, shortlist
from agentrt.runtime.core.planner.model import PlanningProblem
from agentrt.runtime.core.planner.rollout import GreedyRollout, build_tables, simulate
from agentrt.runtime.core.planner.state import Plan, ProgramState


def _plan_each(state: ProgramState, choose) -> Plan:
    problem = state.problem
    return Plan({sid: problem.option(choose(problem.index[sid])) for sid in state.ready()})


def _k1(problem: PlanningProblem, m):
    """Option index of one sample of model(s) m."""
    return m * len(problem.ks)


class CheapestPlanner:
    name = "cheapest"

    def reset(self) -> None:
        pass

    def plan(self, state: ProgramState, rng: np.random.Generator) -> Plan:
        p = state.problem
        k1 = _k1(p, np.arange(len(p.models)))
        m = int(np.argmin(p.stats().exp_cost[:, k1].mean(axis=0)))
        return _plan_each(state, lambda s: _k1(p, m))


class StrongestPlanner:
    name = "strongest"

    def __init__(self) -> None:
        self._model: int | None = None

    def reset(self) -> None:
        self._model = None

    def plan(self, state: ProgramState, rng: np.random.Generator) -> Plan:
        p = state.problem
        if self._model is None:  # from the priors, before any observation
            self._model = int(np.argmax(p.success.mean().mean(axis=0)))
        return _plan_each(state, lambda s: _k1(p, self._model))


class FixedKPlanner:
    name = "fixed-k"

    def __init__(self, k: int = 4) -> None:
        self.k = k

    def reset(self) -> None:
        pass

    def plan(self, state: ProgramState, rng: np.random.Generator) -> Plan:
        p, st = state.problem, state.problem.stats()
        ki = int(np.flatnonzero(p.ks == self.k)[0])

        def choose(s: int) -> int:
            k1 = np.arange(len(p.models)) * len(p.ks)
            m = int(np.argmax(st.p_success[s, k1] / st.exp_cost[s, k1]))
            k = min(ki, int(np.searchsorted(p.ks, p.max_samples[s], side="right")) - 1)
            return m * len(p.ks) + k

        return _plan_each(state, choose)


class GreedyPlanner:
    name = "greedy"

    def reset(self) -> None:
        pass

    def plan(self, state: ProgramState, rng: np.random.Generator) -> Plan:
        st = state.problem.stats()
        share = max(state.left_usd, 0.0) / len(state.remaining())

        def choose(s: int) -> int:
            ok = st.valid[s] & (st.worst_cost[s] <= state.free_usd)
            fits = ok & (st.exp_cost[s] <= share)
            if not fits.any():
                return int(np.argmin(np.where(st.valid[s], st.worst_cost[s], np.inf)))
            ratio = np.where(fits, st.p_success[s] / st.exp_cost[s], -np.inf)
            return int(np.argmax(ratio))

        return _plan_each(state, choose)


class _PlannedOnce(ABC):
    """Plans one option per subtask at the first call and returns it ever after."""

    def __init__(self) -> None:
        self._assignment: np.ndarray | None = None

    def reset(self) -> None:
        self._assignment = None

    def plan(self, state: ProgramState, rng: np.random.Generator) -> Plan:
        if self._assignment is None:
            self._assignment = self.assign(state, rng)
        return _plan_each(state, lambda s: int(self._assignment[s]))

    @abstractmethod
    def assign(self, state: ProgramState, rng: np.random.Generator) -> np.ndarray:
        """The option index per subtask, chosen once for the whole program."""


class OpenLoopMCPlanner(_PlannedOnce):
    """Coordinate ascent over a static assignment, scored by sticky rollouts."""

    name = "open-loop-mc"

    def __init__(self, config: MCPPConfig | None = None, passes: int = 2) -> None:
        super().__init__()
        self.config = config or MCPPConfig()
        self.passes = passes

    def assign(self, state: ProgramState, rng: np.random.Generator) -> np.ndarray:
        cfg, problem = self.config, state.problem
        rows = np.asarray(state.remaining(), dtype=int)
        tables = build_tables(problem, rows, rng, cfg.rollouts, cfg.table_attempts)
        policy = GreedyRollout(problem, rows)
        options = [shortlist(state, problem.ids[s], cfg.top_m) for s in rows]
        current = np.array([o[0] if len(o) else _cheapest(problem, s)
                            for s, o in zip(rows, options)])
        for _ in range(self.passes):
            for r, opts in enumerate(options):
                if len(opts) < 2:
                    continue
                cands = np.repeat(current[None, :], len(opts), axis=0)
                cands[:, r] = opts
                scores = simulate(problem, state, tables, policy, cands, sticky=True,
                                  max_attempts=cfg.max_attempts).mean(axis=1)
                current[r] = opts[int(np.argmax(scores))]
        assignment = np.full(len(problem.ids), -1)
        assignment[rows] = current
        return assignment


class KnapsackPlanner(_PlannedOnce):
    """Multiple-choice knapsack by dynamic programming over `buckets` cost units."""

    name = "knapsack"

    def __init__(self, buckets: int = 200) -> None:
        super().__init__()
        self.buckets = buckets

    def assign(self, state: ProgramState, rng: np.random.Generator) -> np.ndarray:
        problem, st = state.problem, state.problem.stats()
        depth = _longest_chain(problem)
        unit = max(state.left_usd, 1e-12) / self.buckets
        best = np.full(self.buckets + 1, -np.inf)
        best[0] = 0.0
        picks: list[np.ndarray] = []
        for s in range(len(problem.ids)):
            opts = np.flatnonzero(st.valid[s] & (st.exp_time[s] <= state.time_left / depth))
            if not len(opts):
                opts = np.flatnonzero(st.valid[s])
            weight = np.ceil(st.exp_cost[s, opts] / unit).astype(int)
            gain = np.log(np.maximum(st.p_success[s, opts], 1e-12))
            nxt = np.full_like(best, -np.inf)
            pick = np.full(len(best), -1)
            for o, w, g in zip(opts, weight, gain):
                if w > self.buckets:
                    continue
                cand = np.full_like(best, -np.inf)
                cand[w:] = best[:len(best) - w] + g
                better = cand > nxt
                nxt[better], pick[better] = cand[better], o
            best = nxt
            picks.append(pick)
        if not np.isfinite(best).any():
            return np.array([_cheapest(problem, s) for s in range(len(problem.ids))])
        return _backtrack(st.exp_cost, picks, int(np.argmax(best)), unit)


def _backtrack(exp_cost: np.ndarray, picks: list[np.ndarray], g: int,
               unit: float) -> np.ndarray:
    """The option per subtask behind the DP's best total, walking the buckets back."""
    assignment = np.zeros(len(picks), dtype=int)
    for s in reversed(range(len(picks))):
        o = int(picks[s][g])
        assignment[s] = o
        g -= int(math.ceil(exp_cost[s, o] / unit))
    return assignment


def _cheapest(problem: PlanningProblem, s: int) -> int:
    st = problem.stats()
    return int(np.argmin(np.where(st.valid[s], st.worst_cost[s], np.inf)))


def _longest_chain(problem: PlanningProblem) -> int:
    level = []
    for deps in problem.deps:
        level.append(1 + max((level[d] for d in deps), default=0))
    return max(level)
