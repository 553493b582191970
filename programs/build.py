"""The build context: which graph (if any) calls of steps and tools are being recorded
into.

A ``ContextVar`` holds the builder while a ``@program`` function runs, so calls made
from that function (and from helpers it calls) add nodes, and calls anywhere else do
not. Builds do not nest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from agentrt.programs.errors import GraphUsageError
from agentrt.programs.graph import NodeKind, ProgramGraph, StepNode
from agentrt.programs.handle import StepHandle
from agentrt.programs.values import check_serializable, iter_handles, snapshot

_CURRENT: ContextVar[GraphBuilder | None] = ContextVar("agentrt_program_build", default=None)


class GraphBuilder:
    """Adds one node per step or tool call to ``graph`` and hands back its handle."""

    def __init__(self, graph: ProgramGraph) -> None:
        self.graph = graph

    def add(
        self,
        name: str,
        kind: NodeKind,
        target: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        **node_fields: Any,
    ) -> StepHandle:
        """Record a call; ``node_fields`` are the remaining ``StepNode`` fields.

        Arguments must already have been checked (``check_arguments``); this adds the
        node with a snapshot of them (see ``values.snapshot``) and one dependency per
        distinct producing node, in argument order.
        """
        args, kwargs = snapshot(args), snapshot(kwargs)
        deps = dict.fromkeys(h.node_id for h in iter_handles((args, kwargs)))
        node_id = self.graph.new_node_id(name)
        node = StepNode(node_id, name, kind, target, args, kwargs, tuple(deps), **node_fields)
        self.graph.add_node(node)
        return StepHandle(node_id, name, self.graph)

    def check_arguments(self, name: str, arguments: dict[str, Any]) -> None:
        """Raise unless every argument (by parameter name) is serialisable data or a
        handle made in this build."""
        for param, value in arguments.items():
            check_serializable(value, name, param)
            for handle in iter_handles(value):
                self._check_handle(name, param, handle)

    def _check_handle(self, name: str, param: str, handle: StepHandle) -> None:
        if not handle.belongs_to(self.graph):
            raise GraphUsageError(
                f"step {name!r}: argument `{param}` is the result of step "
                f"{handle.node_id!r} from another program build; results can only be "
                "passed within the @program function that produced them"
            )


def current_builder() -> GraphBuilder | None:
    """The builder of the program being built in this context, or ``None``."""
    return _CURRENT.get()


@contextmanager
def building(graph: ProgramGraph) -> Iterator[GraphBuilder]:
    """Record step and tool calls into ``graph`` for the duration of the block."""
    outer = _CURRENT.get()
    if outer is not None:
        raise GraphUsageError(
            f"program {graph.name!r} was called while program {outer.graph.name!r} is "
            "being built; programs do not nest, so call the inner program's steps "
            "directly (or factor them into a plain helper function)"
        )
    token = _CURRENT.set(GraphBuilder(graph))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)
