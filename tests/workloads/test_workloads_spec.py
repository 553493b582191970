import pytest

from agentrt.programs.workloads import ProgramSpec, StepSpec, TurnSpec


def program(*steps: tuple[str, tuple[str, ...]]) -> ProgramSpec:
    return ProgramSpec("p", [StepSpec(sid, [TurnSpec(10, 5)], deps=deps) for sid, deps in steps])


def test_steps_come_after_their_dependencies_and_otherwise_in_listed_order():
    spec = program(("join", ("b", "a")), ("b", ("root",)), ("root", ()), ("a", ("root",)))
    assert [s.step_id for s in spec.ordered_steps()] == ["root", "b", "a", "join"]


def test_steps_already_in_dependency_order_keep_it():
    spec = program(("a", ()), ("b", ()), ("c", ("a",)))
    assert [s.step_id for s in spec.ordered_steps()] == ["a", "b", "c"]


@pytest.mark.parametrize("steps", [[("a", ("b",)), ("b", ("a",))], [("a", ("ghost",))]])
def test_cycles_and_unknown_dependencies_are_refused(steps):
    with pytest.raises(ValueError, match="wait on unknown steps or on each other"):
        program(*steps).ordered_steps()
