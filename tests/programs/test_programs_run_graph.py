"""run_graph: ready nodes run concurrently, results flow to successors, the first
failure cancels the rest."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentrt.programs import GraphCycleError, ProgramGraph, StepNode, ToolArgumentsError, program, run_graph, step, tool

TIMEOUT_S = 2.0  # only reached if the code under test is broken


@tool
def count_words(text: str) -> int:
    return len(text.split())


@step
def source(ctx, name):
    return name


@step
def combine(ctx, *parts, sep="+"):
    return parts


def make_runner(bodies: dict[str, Any]):
    """run_node that awaits ``bodies[node.name](*args, **kwargs)``, or calls the tool."""

    async def run_node(node: StepNode, args: tuple, kwargs: dict) -> Any:
        if node.kind == "tool":
            return node.target.fn(**kwargs)
        return await bodies[node.name](*args, **kwargs)

    return run_node


def run(graph: ProgramGraph, bodies: dict[str, Any]):
    return asyncio.run(asyncio.wait_for(run_graph(graph, make_runner(bodies)), TIMEOUT_S))


@program
def fan_in():
    return combine(source("a"), source("b"))


def test_independent_steps_overlap():
    """Each source waits until the other has started: this finishes only if both run
    at the same time."""
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def source_body(name):
        started[name].set()
        await started["b" if name == "a" else "a"].wait()
        return name.upper()

    async def combine_body(*parts, sep="+"):
        return sep.join(parts)

    outcome = run(fan_in.build(), {"source": source_body, "combine": combine_body})
    assert outcome.status == "succeeded"
    assert outcome.results == {"source": "A", "source#2": "B", "combine": "A+B"}
    assert outcome.outputs == "A+B"
    assert (outcome.failed_node, outcome.error) == (None, None)


def test_failure_cancels_running_nodes_and_names_the_failing_node():
    cancelled = asyncio.Event()
    b_started = asyncio.Event()

    async def source_body(name):
        if name == "a":
            await b_started.wait()
            raise RuntimeError("model refused")
        b_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def combine_body(*parts, sep="+"):
        raise AssertionError("must not start after a failure")

    outcome = run(fan_in.build(), {"source": source_body, "combine": combine_body})
    assert outcome.status == "failed"
    assert (outcome.failed_node, outcome.error) == ("source", "RuntimeError: model refused")
    assert isinstance(outcome.exception, RuntimeError)
    assert cancelled.is_set() and outcome.results == {} and outcome.outputs is None


def test_results_feed_successors_including_nested_handles():
    @program
    def nested():
        a = source("one two")
        b = source("three")
        words = count_words(a)
        return combine([a, {"b": (b,)}], words, sep={"n": words})

    async def source_body(name):
        return name

    async def combine_body(*parts, sep):
        return {"parts": parts, "sep": sep}

    outcome = run(nested.build(), {"source": source_body, "combine": combine_body})
    assert outcome.results["count_words"] == 2
    assert outcome.outputs == {"parts": (["one two", {"b": ("three",)}], 2), "sep": {"n": 2}}


def test_tool_arguments_from_steps_are_validated_when_the_node_runs():
    @program
    def bad_text():
        return count_words(source("x"))

    async def source_body(name):
        return 42  # count_words wants a str

    outcome = run(bad_text.build(), {"source": source_body})
    assert (outcome.status, outcome.failed_node) == ("failed", "count_words")
    assert isinstance(outcome.exception, ToolArgumentsError)
    assert "Argument 'text': input should be a valid string, got 42." in outcome.error


def test_a_node_cancelled_from_inside_reports_cancelled():
    async def source_body(name):
        raise asyncio.CancelledError

    outcome = run(fan_in.build(), {"source": source_body, "combine": None})
    assert (outcome.status, outcome.failed_node) == ("cancelled", "source")


def test_cancelling_run_graph_cancels_running_nodes_then_propagates():
    cancelled: list[str] = []
    both_started = asyncio.Semaphore(0)

    async def source_body(name):
        both_started.release()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async def main():
        task = asyncio.create_task(run_graph(fan_in.build(), make_runner({"source": source_body})))
        await both_started.acquire()
        await both_started.acquire()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), TIMEOUT_S))
    assert sorted(cancelled) == ["a", "b"]


def test_a_cyclic_graph_is_rejected_before_running():
    graph = ProgramGraph()
    graph.add_node(StepNode("a", "a", "step", None))
    graph.add_node(StepNode("b", "b", "step", None, deps=("a",)))
    graph.add_dependency("b", "a")
    with pytest.raises(GraphCycleError, match="a -> b -> a"):
        run(graph, {})


def test_empty_graph_succeeds_with_literal_outputs():
    graph = ProgramGraph()
    graph.outputs = {"answer": 42}
    outcome = run(graph, {})
    assert (outcome.status, outcome.outputs, outcome.results) == ("succeeded", {"answer": 42}, {})


@program
def mutates_after_binding():
    """A list passed to a step, then given that step's own result (and a later one's):
    without a snapshot at binding, `first` would depend on itself."""
    parts = ["x"]
    first = combine(parts)
    parts.append(first)
    second = combine(parts)
    parts.append(second)
    return combine(first, second)


async def echo(*parts, sep="+"):
    return list(parts)


def test_a_container_mutated_after_binding_changes_neither_graph_nor_arguments():
    graph = mutates_after_binding.build()
    graph.validate()
    first, second, last = (n.node_id for n in graph.nodes)
    assert [n.deps for n in graph.nodes] == [(), (first,), (first, second)]
    outcome = run(graph, {"combine": echo})
    assert outcome.status == "succeeded", outcome.error
    # each step received its list as it was when the step was called
    assert outcome.outputs == [[["x"]], [["x", [["x"]]]]]
