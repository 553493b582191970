"""``run_graph``: run a program graph's nodes with asyncio, each as soon as its
dependencies have results.

How a node runs is the caller's business (``run_node``): the runtime runs step bodies
with a step context and tools under the tool manager; tests pass plain coroutines.
This module only orders, starts, collects and cancels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agentrt.programs.graph import ProgramGraph, StepNode

RunNode = Callable[[StepNode, tuple[Any, ...], dict[str, Any]], Awaitable[Any]]
GraphStatus = Literal["succeeded", "failed", "cancelled"]


@dataclass(slots=True)
class GraphOutcome:
    """How a graph run ended.

    ``succeeded``: every node has a result and ``outputs`` is ``graph.outputs`` with
    handles replaced by results. ``failed``: ``failed_node`` raised ``exception``
    (``error`` is ``"<Type>: <message>"``); nodes still running were cancelled and
    ``results`` holds those that finished. ``cancelled``: a node's own run was cancelled
    (not by ``run_graph``); ``failed_node`` names it. ``outputs`` is ``None`` unless
    succeeded.
    """

    status: GraphStatus
    results: dict[str, Any] = field(default_factory=dict)
    failed_node: str | None = None
    error: str | None = None
    outputs: Any = None
    exception: BaseException | None = None


async def run_graph(graph: ProgramGraph, run_node: RunNode) -> GraphOutcome:
    """Run every node of ``graph`` (validated first) with ``run_node(node, args, kwargs)``.

    Arguments reach ``run_node`` with handles replaced by results (also inside nested
    containers); a tool node's resolved arguments are checked against its schema first
    (a ``ToolArgumentsError`` fails that node). Independent nodes run concurrently.
    On the first failure no new node starts and running ones are cancelled and awaited.
    If the task running ``run_graph`` is cancelled, running nodes are cancelled and
    awaited, then ``CancelledError`` propagates. Raises ``GraphCycleError`` (and the
    other ``validate`` errors) before running anything.
    """
    graph.validate()
    results: dict[str, Any] = {}
    running: dict[asyncio.Task[Any], str] = {}
    order = {node.node_id: index for index, node in enumerate(graph.nodes)}
    try:
        while True:
            for node_id in graph.ready(results, set(running.values())):
                task = asyncio.create_task(_run_one(graph, node_id, results, run_node))
                running[task] = node_id
            if not running:
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            failure = _collect(finished, running, results, order)
            if failure is not None:
                await _cancel_all(running)
                failure.results = results
                return failure
    except asyncio.CancelledError:
        await _cancel_all(running)
        raise
    outputs = graph.resolve(graph.outputs, results)
    return GraphOutcome("succeeded", results, outputs=outputs)


async def _run_one(
    graph: ProgramGraph, node_id: str, results: dict[str, Any], run_node: RunNode
) -> Any:
    node = graph.node(node_id)
    call = graph.resolve_call(node_id, results)
    registered = getattr(node.target, "registered", None)
    if node.kind == "tool" and registered is not None:
        registered.validate_args(call.kwargs)
    return await run_node(node, call.args, call.kwargs)


def _collect(
    finished: set[asyncio.Task[Any]],
    running: dict[asyncio.Task[Any], str],
    results: dict[str, Any],
    order: dict[str, int],
) -> GraphOutcome | None:
    """Move finished tasks out of ``running`` and their results into ``results``; return
    the first failure in insertion order (deterministic when several finish together)."""
    failure: GraphOutcome | None = None
    for task in sorted(finished, key=lambda t: order[running[t]]):
        node_id = running.pop(task)
        if task.cancelled():
            error = "CancelledError: the node's run was cancelled"
            outcome = GraphOutcome("cancelled", failed_node=node_id, error=error)
        elif (exc := task.exception()) is not None:
            error = f"{type(exc).__name__}: {exc}"
            outcome = GraphOutcome("failed", failed_node=node_id, error=error, exception=exc)
        else:
            results[node_id] = task.result()
            continue
        failure = failure or outcome
    return failure


async def _cancel_all(running: dict[asyncio.Task[Any], str]) -> None:
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    running.clear()
