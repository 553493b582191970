"""Vectorised Monte-Carlo rollouts of the rest of a program, with common random numbers.

One plan call draws, once, everything a rollout can need (`RolloutTables`): for each
remaining subtask r, attempt a, option o and rollout n, whether the attempt passes, what
it costs and how long it takes:

    outcomes[r, a, o, n] = (passed: any of the k samples passes,
                            cost:   sum over the k samples,
                            time:   max over the k samples)

The k samples of option (m, k) are the first k of the same 8 draws, success uses the same
uniforms for every model, and p (and the error of the length median) is one posterior
draw per (subtask, model, rollout). So every candidate plan, and every option inside one,
is compared on the same draws (common random numbers): a difference in score is a
difference of plans, not of luck.

`simulate` then walks the remaining subtasks in topological order with arrays over
(candidate C, rollout N): a subtask starts when its dependencies finish, its attempts
run until one passes (a failed subtask is retried), and a rollout dies when it cannot
reserve an attempt's worst case or passes the deadline. Attempt 0 of a candidate's
subtasks uses the candidate's option; every other attempt asks `GreedyRollout`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agentrt.runtime.core.planner.estimates import QUANTILES
from agentrt.runtime.core.planner.model import PlanningProblem
from agentrt.runtime.core.planner.state import ProgramState


@dataclass(slots=True)
class RolloutTables:
    """outcomes[r, a, o, n] = (passed 0/1, cost, time) of attempt a of row r under
    option o in rollout n; option index -1 (the last) is "no attempt": failed, free,
    instant."""

    rows: np.ndarray  # problem index of each remaining subtask, topological order
    outcomes: np.ndarray  # (R, A, O + 1, N, 3)
    n: int

    def gather(self, r: int, o: np.ndarray, attempt: int) -> np.ndarray:
        """(C, N, 3) outcomes of attempt `attempt` of row r under options o (C, N).
        Attempts beyond the table reuse it with the rollouts rotated, so a rollout does
        not see its own earlier draws again."""
        attempts = self.outcomes.shape[1]
        a, lap = attempt % attempts, attempt // attempts
        n_idx = np.arange(self.n)
        if lap:
            n_idx = (n_idx + lap * 7919) % self.n
        flat = self.outcomes[r, a].reshape(-1, 3)  # row o * N + n
        return flat.take(np.where(o < 0, flat.shape[0] // self.n - 1, o) * self.n + n_idx,
                         axis=0)


def build_tables(problem: PlanningProblem, rows: np.ndarray, rng: np.random.Generator,
                 n: int, attempts: int) -> RolloutTables:
    """Draw every outcome the rollouts may read (see the module docstring)."""
    ks = problem.ks
    R, M, J = len(rows), len(problem.models), int(ks.max())
    p = problem.success.sample(rng, rows, n)  # (R, M, N)
    u = rng.random((R, 1, attempts, J, n), dtype=np.float32)
    qi = rng.integers(0, QUANTILES, (R, 1, attempts, J, n))
    base = (np.arange(R)[:, None] * M + np.arange(M)[None, :]) * QUANTILES  # (R, M)
    table = problem.lengths.table[rows].astype(np.float32).ravel()
    lens = table[base[:, :, None, None, None] + qi]
    scale = np.exp(problem.lengths.scale_sigma[rows][:, :, None]
                   * rng.standard_normal((R, M, n), dtype=np.float32))  # median error
    lens = np.minimum(lens * scale[:, :, None, None, :],
                      problem.max_tokens[rows][:, None, None, None, None])
    succ = u < p[:, :, None, None, :]  # (R, M, A, J, N)
    call = (problem.prompt[rows, None] * problem.price_in[None, :])[:, :, None, None, None]
    cost = call + lens * problem.price_out[None, :, None, None, None]
    time = (problem.prefill[rows][:, :, None, None, None]
            + lens * problem.tpot[rows][:, :, None, None, None])
    at = ks - 1  # sample index at which an option of k samples is complete
    out = np.zeros((R, attempts, M * len(ks) + 1, n, 3), dtype=np.float32)
    for i, x in enumerate((np.logical_or.accumulate(succ, axis=3),
                           np.cumsum(cost, axis=3), np.maximum.accumulate(time, axis=3))):
        # (R, M, A, J, N) -> (R, A, M, K, N) -> (R, A, O, N)
        out[:, :, :-1, :, i] = x[:, :, :, at].transpose(0, 2, 1, 3, 4).reshape(
            R, attempts, -1, n)
    return RolloutTables(rows=rows, outcomes=out, n=n)


def repeat_score(p_success, exp_cost, exp_time, budget_share, time_share, whole=True):
    """How well option(s) do when repeated within a budget share and a time share:
    n = min(budget share / cost, time share / time) attempts fit, and they all fail
    with probability (1 - P)^n, so the score n * -log(1 - P) orders options by their
    chance to pass within the shares. With `whole`, n is rounded down to whole
    attempts. With time to spare this buys the cheapest success (one sample, retries),
    with money to spare the fastest (parallel samples). Broadcasts."""
    n = np.minimum(budget_share / exp_cost, time_share / exp_time)
    if whole:
        n = np.floor(n)
    return n * -np.log1p(-np.minimum(p_success, 1 - 1e-12))


class GreedyRollout:
    """The cheap policy that finishes rollouts. For each attempt it takes the option
    with the best `repeat_score` for even splits of what is left: the budget left over
    the subtasks left, the time left over the longest chain left (ties: the cheaper).
    When no option fits a whole attempt into the shares, the best fractional score.
    Options whose worst case cannot be reserved, or whose expected time overruns the
    time left, are out; with none left it returns -1 (the rollout dies).

    The decision depends on (budget left, time left) only, so it is tabulated per
    subtask on a log grid, evaluated at each cell's lower corner (what it picks can
    always be reserved and fits in time); a choice is then two logs and a lookup:

        table[r][budget cell, time cell] -> option, -1 for none (cell 0: below the
                                            cheapest worst case / the fastest option)
    """

    GRID = 32

    def __init__(self, problem: PlanningProblem, rows: np.ndarray) -> None:
        st = problem.stats()
        n_left, depth_left = len(rows) - np.arange(len(rows)), _depth_left(problem, rows)
        self.tables, self.axes = [], []
        for r, s in enumerate(rows):
            opts = _pareto(st.p_success[s], st.exp_cost[s], st.exp_time[s],
                           st.worst_cost[s], st.valid[s])
            p, ec, et, wc = (x[s, opts] for x in (st.p_success, st.exp_cost, st.exp_time,
                                                    st.worst_cost))
            b_axis = _LogAxis(wc.min(), max(wc.max(), n_left[r] * ec.max()) * 64, self.GRID)
            t_axis = _LogAxis(et.min(), depth_left[r] * et.max() * 64, self.GRID)
            b, t = b_axis.edges[:, None, None], t_axis.edges[None, :, None]
            b_share, t_share = b / n_left[r], t / depth_left[r]
            whole = repeat_score(p, ec, et, b_share, t_share)
            score = np.where(whole.max(-1, keepdims=True) > 0, whole,
                             repeat_score(p, ec, et, b_share, t_share, whole=False))
            score = np.where((wc <= b) & (et <= t), score, -1.0)
            best = score.argmax(-1)  # options are sorted by cost: ties go to the cheapest
            table = np.full((self.GRID + 1, self.GRID + 1), -1)  # row/column 0: below lo
            table[1:, 1:] = np.where(score.max(-1) >= 0, opts[best], -1)
            self.tables.append(table.ravel())
            self.axes.append((b_axis, t_axis))

    def choose(self, r: int, budget_left: np.ndarray, time_left: np.ndarray) -> np.ndarray:
        """Option per rollout (same shape as the inputs), -1 where none is feasible."""
        b_axis, t_axis = self.axes[r]
        cell = b_axis.cell(budget_left) * (t_axis.cells + 1) + t_axis.cell(time_left)
        return self.tables[r].take(cell)


class _LogAxis:
    """Geometric cells from `lo`: cell(x) = 1 + floor(log(x / lo) / step), clipped to
    [0, cells]; 0 holds every value below `lo`."""

    def __init__(self, lo: float, hi: float, cells: int) -> None:
        self.lo = max(float(lo), 1e-12)  # a free or instant option still gets cells
        self.step = np.log(max(hi, self.lo * 1.0001) / self.lo) / (cells - 1)
        self.cells = cells
        self.edges = self.lo * np.exp(self.step * np.arange(cells))
        self._offset, self._scale = 1.0 - np.log(self.lo) / self.step, 1.0 / self.step

    def cell(self, x: np.ndarray) -> np.ndarray:
        # Every x below `lo` lands in cell 0, so clamp there: a floor below float32's
        # range (1e-300) would round to 0 for float32 inputs and warn in log.
        c = np.log(np.maximum(x, 0.5 * self.lo))
        c *= self._scale
        c += self._offset
        # truncation is floor for c >= 0; anything below 0 lands in cell 0
        return np.minimum(np.maximum(c, 0.0), self.cells).astype(np.intp)


def _pareto(p, ec, et, wc, valid) -> np.ndarray:
    """Valid options no other option beats on success, cost, time and worst case,
    sorted by expected cost."""
    idx = np.flatnonzero(valid)
    x = np.stack([-p[idx], ec[idx], et[idx], wc[idx]], axis=1)  # lower is better
    no_worse = (x[:, None, :] <= x[None, :, :]).all(-1)  # [j, i]: j no worse than i
    better = (x[:, None, :] < x[None, :, :]).any(-1)
    keep = idx[~(no_worse & better).any(0)]
    return keep[np.lexsort((-p[keep], ec[keep]))]


def _depth_left(problem: PlanningProblem, rows: np.ndarray) -> np.ndarray:
    """Subtasks on the longest chain from each remaining subtask to the end."""
    local = {int(s): r for r, s in enumerate(rows)}
    depth = np.ones(len(rows))
    for r in reversed(range(len(rows))):
        for d in problem.deps[rows[r]]:
            if d in local:
                depth[local[d]] = max(depth[local[d]], depth[r] + 1)
    return depth


@dataclass(frozen=True, slots=True)
class Rollouts:
    """What the rollouts of each candidate did, both (C, N)."""

    finished: np.ndarray
    """True where every remaining subtask passed within the budget left and in time."""
    passed: np.ndarray
    """Remaining subtasks that passed before the rollout finished or died: how far a
    rollout got, which still ranks candidates when none of them finishes."""


def simulate(problem: PlanningProblem, state: ProgramState, tables: RolloutTables,
             policy: GreedyRollout, first: np.ndarray, *, sticky: bool = False,
             max_attempts: int = 16) -> np.ndarray:
    """Which rollouts finish, per candidate: `rollout(...).finished`."""
    return rollout(problem, state, tables, policy, first, sticky=sticky,
                   max_attempts=max_attempts).finished


def rollout(problem: PlanningProblem, state: ProgramState, tables: RolloutTables,
            policy: GreedyRollout, first: np.ndarray, *, sticky: bool = False,
            max_attempts: int = 16) -> Rollouts:
    """Run the rollouts of every candidate. `first` (C, R) gives the option of each
    row's next attempt (-1: ask the policy); with `sticky` it is used for every attempt
    (an open-loop plan). Subtasks in flight finish their current attempt first. A
    subtask still failing after `max_attempts` fails the rollout. Pure."""
    (C, R), N = first.shape, tables.n
    left, deadline, now = state.left_usd, state.deadline, state.now
    worst = np.concatenate([problem.stats().worst_cost[tables.rows], np.zeros((R, 1))],
                           axis=1)  # option -1 costs nothing
    local = {int(s): r for r, s in enumerate(tables.rows)}
    cost, alive = np.zeros((C, N)), np.ones((C, N), dtype=bool)
    progress = np.zeros((C, N))
    finish: list[np.ndarray] = []
    for r, s in enumerate(tables.rows):
        deps = [finish[local[d]] for d in problem.deps[s] if d in local]
        clock = np.maximum.reduce([np.full((C, N), now), *deps])
        running = state.running.get(problem.ids[s])
        passed, active = np.zeros((C, N), dtype=bool), alive.copy()
        fixed = first[:, r:r + 1]
        for a in range(max_attempts):
            if a == 0 and running is not None:
                g = tables.gather(r, np.full((C, N), problem.option_index(running.option)), a)
                clock = np.maximum(running.started_at + g[..., 2], now)
            else:
                o = policy.choose(r, left - cost, deadline - clock)
                if a == 0 or sticky:
                    o = np.where(fixed >= 0, fixed, o)
                active &= (o >= 0) & (cost + worst[r][o] <= left)
                g = tables.gather(r, o, a)
                clock = np.where(active, clock + g[..., 2], clock)
            cost = np.where(active, cost + g[..., 1], cost)
            ok = active & (g[..., 0] > 0)
            passed |= ok
            active &= ~ok & (clock <= deadline)
            if not active.any():
                break
        alive &= passed & (clock <= deadline)
        progress += alive
        if not alive.any():
            break
        finish.append(clock)
    return Rollouts(alive, progress)
