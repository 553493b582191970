"""Monte-Carlo portfolio planning (ALGORITHMS.md section 5).

For the ready subtasks of a program, at every call:

    1. options (model, k in KS) per ready subtask whose worst case can be reserved now;
       keep the top M by a cheap score: success per unit cost, cost counted against an
       even split of the budget left (and time against an even split of the time left
       along the longest chain), see `shortlist`
    2. beam search over the ready set: extend each kept combination by each shortlisted
       option of the next ready subtask, keep the best `beam_width`
    3. score a combination by N vectorised rollouts of the rest of the program on common
       random numbers (rollout.py); the greedy rollout policy finishes each rollout and
       retries failed subtasks; score = fraction of rollouts that finish within budget
       and deadline. Of the final beam, take the cheapest combination whose score is
       within `tie_z` paired standard errors of the best
    4. dispatch the best; the executor feeds every verified sample back (Beta update,
       empirical lengths) and calls again: a replan after every observed outcome
    5. stop early, with the reason, when the best score is at most `min_score`, or at
       once, without rollouts, when even the fastest calls would miss the deadline
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agentrt.runtime.core.planner.rollout import GreedyRollout, build_tables, repeat_score, rollout
from agentrt.runtime.core.planner.state import Plan, ProgramState


@dataclass(frozen=True, slots=True)
class MCPPConfig:
    rollouts: int = 256
    """N: simulated executions per candidate."""
    top_m: int = 4
    """M: options kept per ready subtask."""
    beam_width: int = 4
    table_attempts: int = 2
    """Attempts per subtask drawn per plan call; later attempts reuse them rotated."""
    max_attempts: int = 16
    """Attempts per subtask a rollout tries before counting the subtask as failed."""
    tie_z: float = 1.0
    """Among candidates within tie_z paired standard errors of the best, the cheapest
    is taken: a difference the rollouts cannot resolve is not worth money."""
    min_score: float | None = 0.0
    """At or below this estimated success probability the planner stops the program
    (0: only when no rollout of any candidate finishes). None: never on the estimate;
    with no rollout finishing, the candidate whose rollouts pass the most subtasks is
    tried. Either way it stops when even the fastest calls miss the deadline
    (`out_of_reach`)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    first: np.ndarray  # (R,) option per remaining row, -1 = rollout policy
    score: float
    exp_cost: float
    progress: float = 0.0
    """Mean remaining subtasks passed per rollout: ranks candidates none of whose
    rollouts finishes."""


def shortlist(state: ProgramState, sid: str, top_m: int) -> np.ndarray:
    """Step 1: the top `top_m` options of ready subtask `sid` by the cheap score, best
    first, among those whose worst case fits the free budget (may be empty). The cheap
    score is the rollout policy's `repeat_score` (success per unit cost that fits an
    even split of the budget left, and of the time left along the longest chain),
    with fractional repeats so that options costlier than the split still rank."""
    problem = state.problem
    s, st = problem.index[sid], problem.stats()
    remaining = state.remaining()
    share_b = max(state.left_usd, 0.0) / len(remaining)
    share_t = max(state.time_left, 0.0) / _depth_from(problem, s, set(remaining))
    score = repeat_score(st.p_success[s], st.exp_cost[s], st.exp_time[s], share_b, share_t,
                         whole=False)
    idx = np.flatnonzero(st.valid[s] & (st.worst_cost[s] <= state.free_usd))
    order = np.lexsort((st.exp_cost[s, idx], -score[idx]))
    return idx[order[:top_m]]


def _cheapest_within_noise(beam: list[Candidate], wins: np.ndarray, z: float) -> Candidate:
    """The cheapest candidate whose score is within z paired standard errors of the
    best one (the rollouts are common to all candidates, so the per-rollout differences
    give the standard error of a difference)."""
    best = wins[0].astype(float)
    keep = []
    for cand, w in zip(beam, wins):
        diff = best - w
        se = diff.std() / np.sqrt(len(diff))
        if diff.mean() <= z * se:
            keep.append(cand)
    return min(keep, key=lambda c: c.exp_cost)


class MCPPPlanner:
    """Closed-loop Monte-Carlo portfolio planner; stateless between calls."""

    name = "mcpp"

    def __init__(self, config: MCPPConfig | None = None) -> None:
        self.config = config or MCPPConfig()

    def reset(self) -> None:
        pass

    def plan(self, state: ProgramState, rng: np.random.Generator) -> Plan:
        ready = state.ready()
        if not ready:
            return Plan({}, reason="nothing is ready")
        problem, cfg = state.problem, self.config
        hopeless = out_of_reach(state)
        if hopeless:
            return Plan({}, 0.0, stop=True, reason=hopeless)
        best = self.search(state, ready, rng)
        if best is None:
            if state.running:
                return Plan({}, reason="no option fits the free budget until calls in "
                                       "flight settle")
            return Plan({}, 0.0, stop=True, reason=(
                f"no option of {ready} can reserve its worst case within the "
                f"${state.free_usd:.5f} left"))
        if cfg.min_score is not None and best.score <= cfg.min_score:
            return Plan({}, best.score, stop=True, reason=(
                f"best plan finishes within ${state.left_usd:.5f} and "
                f"{state.time_left:.1f} s in {best.score:.1%} of {cfg.rollouts} rollouts "
                f"(<= {cfg.min_score:.0%})"))
        choices = {problem.ids[s]: problem.option(int(o))
                   for s, o in zip(self._rows(state), best.first) if o >= 0}
        return Plan(choices, best.score, reason=f"best of the beam over {len(ready)} "
                                                f"ready subtask(s)")

    def search(self, state: ProgramState, ready: list[str],
               rng: np.random.Generator) -> Candidate | None:
        """Steps 1-3: beam search over the ready set; None when no ready subtask has
        an option that can be reserved."""
        cfg, problem = self.config, state.problem
        rows = self._rows(state)
        local = {int(s): r for r, s in enumerate(rows)}
        tables = build_tables(problem, rows, rng, cfg.rollouts, cfg.table_attempts)
        policy = GreedyRollout(problem, rows)
        beam = [Candidate(np.full(len(rows), -1), 0.0, 0.0)]
        wins = np.zeros((1, cfg.rollouts), dtype=bool)
        for sid in ready:
            firsts, costs = self._extend(state, beam, rows, local[problem.index[sid]],
                                         shortlist(state, sid, cfg.top_m))
            if not firsts:
                continue  # nothing reservable for this subtask now: it waits
            result = rollout(problem, state, tables, policy, np.stack(firsts),
                             max_attempts=cfg.max_attempts)
            scores, progress = result.finished.mean(axis=1), result.passed.mean(axis=1)
            order = np.lexsort((costs, -progress, -scores))[:cfg.beam_width]
            beam = [Candidate(firsts[i], float(scores[i]), costs[i], float(progress[i]))
                    for i in order]
            wins = result.finished[order]
        if np.all(beam[0].first < 0):
            return None
        if beam[0].score == 0.0:
            return beam[0]  # no rollout finishes: the try that gets furthest
        return _cheapest_within_noise(beam, wins, cfg.tie_z)

    @staticmethod
    def _extend(state: ProgramState, beam: list[Candidate], rows: np.ndarray, r: int,
                options: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
        """Each beam entry with each option for row r whose worst case, with those of
        the entry's other choices, fits the free budget; and their expected costs."""
        st, s = state.problem.stats(), rows[r]
        firsts, costs = [], []
        for base in beam:
            chosen = base.first >= 0
            reserved = st.worst_cost[rows[chosen], base.first[chosen]].sum()
            for o in options:
                if reserved + st.worst_cost[s, o] <= state.free_usd:
                    first = base.first.copy()
                    first[r] = o
                    firsts.append(first)
                    costs.append(base.exp_cost + float(st.exp_cost[s, o]))
        return firsts, costs

    @staticmethod
    def _rows(state: ProgramState) -> np.ndarray:
        return np.asarray(state.remaining(), dtype=int)


def _depth_from(problem, s: int, remaining: set[int]) -> int:
    """Subtasks on the longest chain of remaining subtasks that starts at s."""
    children: dict[int, list[int]] = {}
    for i, deps in enumerate(problem.deps):
        for d in deps:
            children.setdefault(d, []).append(i)

    def depth(i: int) -> int:
        return 1 + max((depth(c) for c in children.get(i, ()) if c in remaining), default=0)

    return depth(s)


def out_of_reach(state: ProgramState) -> str:
    """Why the program cannot finish in time whatever happens, or "" when it still can:
    even one output token per call, with the fastest model on every remaining subtask,
    finishes after the deadline. (Money out of reach shows as no reservable option.)"""
    problem = state.problem
    fastest = (problem.prefill + problem.tpot).min(axis=1)
    finish: dict[int, float] = {}
    for s in state.remaining():
        running = state.running.get(problem.ids[s])
        start = max([state.now, *(finish[d] for d in problem.deps[s] if d in finish)])
        if running is not None:
            start = running.started_at
        finish[s] = max(start + fastest[s], state.now)
    end = max(finish.values(), default=state.now)
    if end > state.deadline:
        return (f"even the fastest calls need {end - state.now:.2f} s to finish the "
                f"remaining subtasks, with {max(0.0, state.deadline - state.now):.2f} s "
                "left before the deadline")
    return ""
