import pytest

from agentrt.runtime.core.planner import Executor, Option, Plan
from tests.planner.builders import call_cost, make_problem, rng


class ScriptedWorld:
    """Samples pass when their global index is in `passes`; every sample is 200 tokens."""

    def __init__(self, passes=(0,), tokens=200):
        self.passes, self.tokens, self.calls = set(passes), tokens, []

    def sample(self, sid, model, attempt, j):
        self.calls.append((sid, model, attempt, j))
        return len(self.calls) - 1 in self.passes, self.tokens


class Always:
    """Plans `option` for every ready subtask (or a fixed dict of choices)."""

    name = "always"

    def __init__(self, option=Option("cheap", 1), choices=None):
        self.option, self.choices = option, choices

    def reset(self):
        pass

    def plan(self, state, rng):
        return Plan(self.choices or {sid: self.option for sid in state.ready()})


def run(problem, planner, world, budget=1.0, deadline=100.0):
    return Executor(problem, planner, budget, deadline, world, rng()).run()


def test_a_dag_runs_dependencies_first_and_charges_actual_usage():
    problem = make_problem({"a": (), "b": ("a",)})
    world = ScriptedWorld(passes=(1, 2))
    out = run(problem, Always(), world)
    assert out.ok and out.done == ["a", "b"]
    assert [c[:3] for c in world.calls] == [("a", "cheap", 0), ("a", "cheap", 1),
                                            ("b", "cheap", 0)]
    assert out.spent_usd == pytest.approx(3 * call_cost(problem, "cheap"))
    assert out.makespan == pytest.approx(3 * (0.1 + 200 * 0.010))


def test_parallel_samples_finish_with_the_slowest_and_each_is_observed():
    problem = make_problem()
    out = run(problem, Always(Option("cheap", 4)), ScriptedWorld(passes=(2,)))
    assert out.ok and out.makespan == pytest.approx(2.1)
    assert problem.success.alpha[0, 0] - 25.0 == pytest.approx(1)  # prior 0.5 x 50
    assert problem.success.beta[0, 0] - 25.0 == pytest.approx(3)


def test_a_call_that_cannot_be_reserved_is_not_made():
    problem = make_problem()
    worst = call_cost(problem, "cheap", 400)
    world = ScriptedWorld(passes=())
    out = run(problem, Always(), world, budget=worst * 0.999)
    assert out.status == "budget" and out.spent_usd == 0 and world.calls == []


def test_k_is_cut_to_what_the_budget_can_reserve():
    problem = make_problem()
    worst = call_cost(problem, "cheap", 400)
    world = ScriptedWorld(passes=(0,))
    out = run(problem, Always(Option("cheap", 8)), world, budget=3.5 * worst)
    assert out.ok and len(world.calls) == 2  # 3 fit; options have k in {1, 2, 4, 8}


def test_an_attempt_past_the_deadline_fails_the_program():
    out = run(make_problem(), Always(), ScriptedWorld(passes=(0,)), deadline=2.0)
    assert out.status == "deadline" and "after the 2.0 s deadline" in out.reason


def test_a_planner_that_stops_ends_the_program_with_its_reason():
    class Quits(Always):
        def plan(self, state, rng):
            return Plan({}, 0.0, "hopeless", stop=True)

    out = run(make_problem(), Quits(), ScriptedWorld())
    assert (out.status, out.reason) == ("stopped", "hopeless")


def test_choosing_a_subtask_that_is_not_ready_is_an_error():
    problem = make_problem({"a": (), "b": ("a",)})
    with pytest.raises(ValueError, match="chose \\['b'\\], which are not ready"):
        run(problem, Always(choices={"b": Option("cheap", 1)}), ScriptedWorld())


def test_plan_latency_is_measured_per_call():
    out = run(make_problem({"a": (), "b": ("a",)}), Always(), ScriptedWorld(passes=(0, 1)))
    assert len(out.plan_seconds) == 2 and all(t >= 0 for t in out.plan_seconds)
