"""A worker removed and one added mid-run: no program is lost, and only the sessions
that must move do (those homed on the removed worker; with DualMap, also those whose
key now falls to the new worker on a ring)."""
from __future__ import annotations

import pytest

from agentrt.programs.workloads import generate
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.driver import Simulation

CHANGES = [(60.0, "remove", "w3"), (90.0, "add", "w8")]


def run_with_changes(programs, **config):
    """The run and each session's dispatches as (time, worker); with DualMap, each
    session's candidate workers at its dispatches are in `sim.candidates`."""
    sim = Simulation(programs, SimConfig(workers=8, concurrency=48,
                                         worker_changes=CHANGES, **config))
    dispatches: dict[str, list[tuple[float, str]]] = {}
    sim.candidates = {}
    take, router = sim.scheduler.take, sim.scheduler.router

    def recording_take(worker_id, now):
        out = take(worker_id, now)
        for request in out:
            dispatches.setdefault(request.session_id, []).append((now, worker_id))
            if hasattr(router, "candidates"):
                sim.candidates.setdefault(request.session_id, set()).update(
                    router.candidates(request))
        return out

    sim.scheduler.take = recording_take
    return sim, sim.run(), dispatches


def moved_sessions(dispatches):
    return {s for s, d in dispatches.items() if len({w for _, w in d}) > 1}


@pytest.mark.parametrize("stealing", [False, True])
def test_sticky_moves_only_the_removed_workers_sessions(stealing):
    programs = generate("swe", 60, seed=3)
    sim, result, dispatches = run_with_changes(programs, router="sticky")
    assert result.unfinished == 0 and len(result.jct) == len(programs)
    assert sorted(sim.engines) == [f"w{i}" for i in (0, 1, 2, 4, 5, 6, 7, 8)]
    moved = moved_sessions(dispatches)
    on_removed = {s for s, d in dispatches.items()
                  if any(w == "w3" and t < 60.0 for t, w in d)}
    assert moved <= on_removed
    assert 0 < len(moved) <= len(on_removed)
    assert all(w != "w3" for d in dispatches.values() for t, w in d if t > 60.0)
    if stealing:  # stealing may move more, but never loses a program
        _, result, _ = run_with_changes(programs, router="sticky", stealing=True)
        assert result.unfinished == 0


def test_dualmap_remaps_only_sessions_of_the_changed_workers():
    programs = generate("swe", 60, seed=3)
    # an SLO nothing breaks, and no stealing (which moves sessions whatever the
    # router says): sessions move only when their candidate pair changes, i.e. when
    # the removed or the added worker is, or was, one of the pair
    sim, result, dispatches = run_with_changes(programs, router="dualmap", stealing=False,
                                               router_options={"ttft_slo_s": 1e9})
    assert result.unfinished == 0 and len(result.jct) == len(programs)
    moved = moved_sessions(dispatches)
    touched = {s for s in moved if sim.candidates[s] & {"w3", "w8"}}
    assert moved == touched
    alive_at_add = {s for s, d in dispatches.items()
                    if d[0][0] < 90.0 < d[-1][0]}
    onto_new = {s for s in moved if any(w == "w8" for _, w in dispatches[s])
                and not any(w == "w3" for _, w in dispatches[s])}
    # about 1/9 of the live keys: those whose home candidate the new worker replaced
    assert len(onto_new) <= 0.2 * len(alive_at_add)
    assert len(moved) <= 0.3 * len(dispatches)


def test_no_program_is_lost_when_in_flight_calls_restart():
    programs = generate("dag", 30, seed=5)
    changes = [(20.0, "remove", "w0"), (25.0, "remove", "w1"), (40.0, "add", "w0")]
    sim = Simulation(programs, SimConfig(workers=3, concurrency=30, worker_changes=changes,
                                         queue="atlas", stealing=True))
    result = sim.run()
    assert result.unfinished == 0 and len(result.jct) == len(programs)
    assert sim.rerouted > 0


def test_a_scenario_that_removes_the_last_worker_of_a_model_is_refused_by_name():
    programs = generate("swe", 4, seed=3)
    sim = Simulation(programs, SimConfig(workers=1, concurrency=4,
                                         worker_changes=[(5.0, "remove", "w0")]))
    with pytest.raises(ValueError, match="removes 'w0', the last worker serving model"):
        sim.run()
