"""Building a program graph: nodes in call order, edges from data, deterministic orders."""

from __future__ import annotations

import pytest

from agentrt.programs import GraphUsageError, ProgramGraph, StepHandle, StepNode, program, step, tool


@tool
def search(query: str, k: int = 3) -> list[str]:
    """Search the web."""
    return [query] * k


@step(tools=[search], model="small")
def research(ctx, topic):
    return topic


@step(max_tokens=256)
def join(ctx, left, right, notes=None):
    return [left, right, notes]


def make_program():
    @program(name="fan_in")
    def fan_in(topic):
        left = research(topic)
        right = research(topic + " (second opinion)")
        return join(left, right)

    return fan_in


WEIGHTS = {"research": 2.0, "research#2": 5.0, "join": 1.0}


def test_two_independent_steps_and_a_join():
    graph = make_program().build("ants")
    assert [n.node_id for n in graph.nodes] == ["research", "research#2", "join"]
    assert graph.deps("join") == ("research", "research#2")
    assert graph.successors("research") == ("join",)
    assert graph.topological_order() == ["research", "research#2", "join"]
    assert isinstance(graph.outputs, StepHandle) and graph.outputs.node_id == "join"


def test_ready_sets_follow_completion():
    graph = make_program().build("ants")
    assert graph.ready(done=set(), running=set()) == ["research", "research#2"]
    assert graph.ready(done=set(), running={"research"}) == ["research#2"]
    assert graph.ready(done={"research"}, running={"research#2"}) == []
    assert graph.ready(done={"research", "research#2"}, running=set()) == ["join"]
    assert graph.ready(done={"research", "research#2", "join"}, running=set()) == []


def test_critical_path_is_the_heaviest_chain():
    graph = make_program().build("ants")
    assert graph.critical_path_length(lambda node: WEIGHTS[node.node_id]) == 6.0
    assert ProgramGraph().critical_path_length(lambda node: 1.0) == 0.0


def test_nodes_record_step_options_and_arguments_as_written():
    graph = make_program().build("ants")
    first, second, joined = graph.nodes
    assert (first.kind, first.tools, first.model, first.max_tokens) == ("step", ("search",), "small", 1024)
    assert first.args == ("ants",) and first.kwargs == {}
    assert second.args == ("ants (second opinion)",)
    assert joined.target is join and joined.max_tokens == 256
    assert [h.node_id for h in joined.args] == ["research", "research#2"]


def test_ids_are_stable_across_builds():
    fan_in = make_program()
    assert [n.node_id for n in fan_in.build("a").nodes] == [n.node_id for n in fan_in.build("b").nodes]


def test_handles_nested_in_containers_are_dependencies():
    @program
    def nested():
        a = research("a")
        b = research("b")
        return join([a, {"x": (b,)}], right=None, notes={"again": a})

    graph = nested.build()
    assert graph.deps("join") == ("research", "research#2")
    assert graph.node("join").deps == ("research", "research#2")


def test_tool_calls_become_tool_nodes_with_named_arguments():
    @program
    def lookup():
        topic = research("bees")
        return search(topic, k=5)

    graph = lookup.build()
    node = graph.node("search")
    assert (node.kind, node.args, node.deps, node.target) == ("tool", (), ("research",), search)
    assert node.kwargs["k"] == 5 and node.kwargs["query"].node_id == "research"


def test_outputs_may_be_containers_or_literals():
    @program
    def many():
        return {"a": research("a"), "n": 1}

    @program
    def constant():
        return 42

    assert many.build().outputs["n"] == 1
    assert constant.build().outputs == 42 and len(constant.build()) == 0


def test_resolve_substitutes_results_recursively():
    graph = make_program().build("ants")
    results = {"research": "R1", "research#2": "R2"}
    assert graph.resolve_call("join", results) == (("R1", "R2"), {})
    value = [graph.node("join").args[0], {"k": (graph.node("join").args[1], 3)}]
    assert graph.resolve(value, results) == ["R1", {"k": ("R2", 3)}]
    with pytest.raises(KeyError, match="no result for step 'research#2' yet"):
        graph.resolve_call("join", {"research": "R1"})


def test_explicit_dependencies_and_lookups():
    graph = ProgramGraph("trace")
    for node_id in ("a", "b", "c"):
        graph.add_node(StepNode(node_id, node_id, "step", None))
    graph.add_dependency("a", "c")
    graph.add_dependency("b", "c")
    assert graph.topological_order() == ["a", "b", "c"]
    assert graph.node("c").deps == ("a", "b")
    with pytest.raises(KeyError, match="no node 'z' in graph 'trace'; nodes: a, b, c"):
        graph.node("z")
    with pytest.raises(GraphUsageError, match="already in the graph"):
        graph.add_node(StepNode("a", "a", "step", None))
    assert graph.new_node_id("a") == "a#2"


def test_topological_order_breaks_ties_by_insertion_not_by_name():
    graph = ProgramGraph()
    for node_id in ("zeta", "alpha", "mid"):
        graph.add_node(StepNode(node_id, node_id, "step", None))
    graph.add_dependency("alpha", "mid")
    assert graph.topological_order() == ["zeta", "alpha", "mid"]


def test_tools_lists_every_tool_the_graph_uses_once_in_first_use_order():
    @tool
    def fetch(url: str) -> str:
        return url

    @program
    def mixed():
        page = fetch("http://x")
        return research(page), search("q")

    assert mixed.build().tools() == [fetch, search]
