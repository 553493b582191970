"""Each validation error: what triggers it and what its message tells the user."""

from __future__ import annotations

import socket

import pydantic
import pytest

from agentrt.programs import (
    ArgumentSerializationError,
    GraphCycleError,
    GraphUsageError,
    ProgramGraph,
    ProgramValidationError,
    StepNode,
    ToolArgumentsError,
    UndeclaredToolError,
    UnknownToolError,
    program,
    step,
    tool,
)
from agentrt.toolmgr import ToolRegistry


@tool
def search(query: str, k: int = 3) -> list[str]:
    return [query] * k


@step
def plan(ctx, goal):
    return goal


def make_chain(*node_ids: str) -> ProgramGraph:
    graph = ProgramGraph("chain")
    for node_id in node_ids:
        graph.add_node(StepNode(node_id, node_id, "step", None))
    for upstream, downstream in zip(node_ids, node_ids[1:]):
        graph.add_dependency(upstream, downstream)
    return graph


def test_cycle_names_its_nodes_in_order():
    graph = make_chain("a", "b", "c")
    graph.add_dependency("c", "a")
    with pytest.raises(GraphCycleError) as info:
        graph.validate()
    assert info.value.cycle == ("a", "b", "c")
    assert "program graph has a cycle: a -> b -> c -> a" in str(info.value)
    with pytest.raises(GraphCycleError):
        graph.topological_order()


def test_errors_share_a_value_error_base():
    for error in (GraphCycleError, UndeclaredToolError, GraphUsageError, ArgumentSerializationError):
        assert issubclass(error, ProgramValidationError) and issubclass(error, ValueError)
    assert issubclass(UnknownToolError, ValueError) and issubclass(ToolArgumentsError, ValueError)


def test_unknown_tool_against_a_registry():
    @step(tools=[search])
    def research(ctx, topic):
        return topic

    @program
    def uses_search():
        return research("x")

    graph = uses_search.build()  # without a registry, declared @tool objects suffice
    registry = ToolRegistry()  # a registry is a collection of names
    registry.register(lambda path: path, name="read_file")
    with pytest.raises(UnknownToolError, match="unknown tool 'search'; known tools: read_file"):
        graph.validate(registry)
    registry.add(search.registered)
    graph.validate(registry)


@pytest.mark.parametrize("entry", [lambda q: q, "search", 42])
def test_undeclared_tool_in_step_tools(entry):
    with pytest.raises(UndeclaredToolError, match=r"not a @tool; decorate it with @agentrt.tool"):
        step(tools=[search, entry])(lambda ctx: None)


def test_two_tools_with_one_name():
    other = tool(name="search")(lambda query: query)
    with pytest.raises(UndeclaredToolError, match="more than one tool named search"):
        step(tools=[search, other])(lambda ctx: None)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: search(query=3), "Argument 'query': input should be a valid string, got 3."),
        (lambda: search(k=2), "Argument 'query' is required but missing."),
        (lambda: search("q", limit=2), "unexpected keyword argument 'limit'"),
        (lambda: search("q", "many"), "Argument 'k': input should be a valid integer"),
    ],
)
def test_tool_literal_arguments_are_checked_at_build_time(call, expected):
    @program
    def bad():
        return call()

    with pytest.raises(ToolArgumentsError, match="tool 'search' rejected its arguments") as info:
        bad.build()
    assert expected in str(info.value)


def test_tool_arguments_from_steps_are_checked_later():
    @program
    def deferred():
        return search(plan("goal"), k=1)

    assert deferred.build().node("search").deps == ("plan",)


@pytest.mark.parametrize(
    ("value", "where", "what"),
    [
        (socket.socket, "goal", "a type"),
        ({"host": object()}, "goal['host']", "a object"),
        ([1, {2: "x"}], "goal[1]", "a dict with a int key (2)"),
        ({1.5}, "goal", "a set"),
    ],
)
def test_non_serialisable_argument_names_step_argument_and_type(value, where, what):
    @program
    def bad():
        return plan(value)

    with pytest.raises(ArgumentSerializationError) as info:
        bad.build()
    assert f"step 'plan': argument `{where}` is {what}, which cannot be serialised" in str(info.value)


def test_non_serialisable_return_value():
    @program
    def bad():
        return {"sock": object()}

    with pytest.raises(ArgumentSerializationError, match="argument `return value"):
        bad.build()


def test_step_called_with_wrong_arguments():
    @program
    def bad():
        return plan()

    with pytest.raises(GraphUsageError, match="missing a required argument: 'goal'"):
        bad.build()


def test_step_must_take_the_context_first():
    with pytest.raises(GraphUsageError, match=r"first positional parameter: def no_ctx\(ctx, ...\)"):

        @step
        def no_ctx(*, goal):
            return goal


def test_options_are_validated_with_field_names():
    with pytest.raises(pydantic.ValidationError, match="budget_usd"):
        program(budget_usd=-1)(lambda: None)
    with pytest.raises(pydantic.ValidationError, match="max_tokens"):
        step(max_tokens=0)(lambda ctx: None)
    with pytest.raises(pydantic.ValidationError, match="timeout_s"):
        tool(timeout_s=0)(lambda: None)


def test_async_program_function_is_rejected():
    with pytest.raises(GraphUsageError, match="make it a plain `def`"):

        @program
        async def wiring():
            return None


def test_programs_do_not_nest():
    @program
    def inner():
        return plan("x")

    @program
    def outer():
        return inner()

    with pytest.raises(GraphUsageError, match="programs do not nest"):
        outer.build()


def test_handles_cannot_leak_into_another_build():
    leaked = []

    @program
    def first():
        leaked.append(plan("x"))

    @program
    def second():
        return plan(leaked[0])

    first.build()
    with pytest.raises(GraphUsageError, match="from another program build"):
        second.build()
