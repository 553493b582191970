"""Using a step's result as if it were known at build time raises GraphUsageError with
the way to express it in the graph."""

from __future__ import annotations

import pytest

from agentrt.programs import GraphUsageError, StepHandle, program, step


@step
def plan(ctx, goal):
    return goal


def misuse(action):
    @program
    def wiring():
        action(plan("goal"))

    return wiring


PREFIX = "the result of step 'plan' is not known while the program graph is being built, so "
SUFFIX = "; pass it as an argument to another @step and "


@pytest.mark.parametrize(
    ("action", "what", "fix"),
    [
        (lambda h: bool(h), "testing it with `if`", "branch on it there"),
        (lambda h: 1 if h else 0, "testing it with `if`", "branch on it there"),
        (lambda h: not h, "testing it with `if`", "branch on it there"),
        (lambda h: [x for x in h], "iterating, indexing, len() or `in`", "index, measure or loop over it there"),
        (lambda h: len(h), "iterating, indexing, len() or `in`", "index, measure or loop over it there"),
        (lambda h: h["key"], "iterating, indexing, len() or `in`", "index, measure or loop over it there"),
        (lambda h: "x" in h, "iterating, indexing, len() or `in`", "index, measure or loop over it there"),
        (lambda h: str(h), "str(), an f-string or format()", "format it there"),
        (lambda h: f"plan: {h}", "str(), an f-string or format()", "format it there"),
        (lambda h: "{}".format(h), "str(), an f-string or format()", "format it there"),
        (lambda h: h + 1, "arithmetic or a number conversion", "compute with it there"),
        (lambda h: 2 * h, "arithmetic or a number conversion", "compute with it there"),
        (lambda h: -h, "arithmetic or a number conversion", "compute with it there"),
        (lambda h: int(h), "arithmetic or a number conversion", "compute with it there"),
        (lambda h: h == "done", "comparing it", "compare it there"),
        (lambda h: h < 3, "comparing it", "compare it there"),
        (lambda h: h.text, "reading .text", "read the attribute there"),
        (lambda h: h(), "calling it", "call it there"),
    ],
)
def test_misuse_says_what_to_do_instead(action, what, fix):
    with pytest.raises(GraphUsageError) as info:
        misuse(action).build()
    message = str(info.value)
    assert message.startswith(PREFIX + what)
    assert message.endswith(SUFFIX + fix) or (SUFFIX + fix + " (") in message


def test_handles_hash_by_identity_and_repr_safely():
    seen = {}

    @program
    def wiring():
        first, second = plan("a"), plan("b")
        seen.update({first: 1, second: 2})
        return [first, second]

    graph = wiring.build()
    assert sorted(seen.values()) == [1, 2]
    assert [repr(h) for h in graph.outputs] == ["StepHandle('plan')", "StepHandle('plan#2')"]
    assert all(isinstance(h, StepHandle) for h in seen)


def test_private_attributes_raise_attribute_error():
    @program
    def wiring():
        return plan("a")

    handle = wiring.build().outputs
    assert not hasattr(handle, "__array__")
    with pytest.raises(AttributeError):
        handle._private
