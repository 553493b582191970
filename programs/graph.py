"""``ProgramGraph``: the inert DAG of steps and tool calls that a ``@program`` builds.

Building records nodes in call order; that insertion order is the tie-breaker for every
ordered answer (``nodes``, ``deps``, ``successors``, ``ready``, ``topological_order``), so
the same program always yields the same orders and ids.

    plan ──► search ──► join          edges point from a dependency to its user;
      └────► search#2 ───┘            repeated names get "#2", "#3", ... suffixes
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import networkx as nx

from agentrt.programs.errors import GraphCycleError, GraphUsageError
from agentrt.programs.values import check_serializable, iter_handles, substitute
from agentrt.toolmgr.errors import UnknownToolError

NodeKind = Literal["step", "tool"]


@dataclass(slots=True)
class StepNode:
    """One node: a call of a ``@step`` (kind "step") or a ``@tool`` (kind "tool").

    ``args``/``kwargs`` hold literals and ``StepHandle``s exactly as written in the
    program (for tool nodes, every argument is in ``kwargs`` by parameter name, and
    ``args`` is empty). ``deps`` lists the nodes this one waits for, in insertion order:
    its data dependencies first, then any added with ``add_dependency``.
    """

    node_id: str
    name: str
    kind: NodeKind
    target: Any
    """The ``Step`` or ``Tool`` object that runs this node (``None`` for nodes loaded
    from a trace)."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    deps: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    """Tool names the step declared (empty for tool nodes)."""
    model: str | None = None
    max_tokens: int | None = None


class ResolvedCall(NamedTuple):
    """A node's arguments with every handle replaced by the producing node's result."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class ProgramGraph:
    """Nodes by id plus a ``networkx.DiGraph`` of their dependencies.

    Mutated only by ``add_node``, ``add_dependency`` and assigning ``outputs``; the
    query methods never mutate. ``add_dependency`` can create cycles (trace loaders use
    it); ``validate()`` and ``topological_order()`` report them as ``GraphCycleError``.
    """

    def __init__(self, name: str = "program") -> None:
        self.name = name
        self.outputs: Any = None
        """What the program returns: a literal, or handles (possibly nested in lists,
        tuples and dicts) to resolve with ``resolve(graph.outputs, results)``."""
        self._dag = nx.DiGraph()
        self._nodes: dict[str, StepNode] = {}
        self._index: dict[str, int] = {}

    def new_node_id(self, name: str) -> str:
        """The first free id among ``name``, ``name#2``, ``name#3``, ..."""
        if name not in self._nodes:
            return name
        suffix = 2
        while f"{name}#{suffix}" in self._nodes:
            suffix += 1
        return f"{name}#{suffix}"

    def add_node(self, node: StepNode) -> StepNode:
        """Add ``node`` and an edge from each of ``node.deps``, which must exist."""
        if node.node_id in self._nodes:
            raise GraphUsageError(
                f"node id {node.node_id!r} is already in the graph; get a fresh one "
                "from new_node_id()"
            )
        for dep in node.deps:
            self.node(dep)
        self._index[node.node_id] = len(self._index)
        self._nodes[node.node_id] = node
        self._dag.add_node(node.node_id)
        self._dag.add_edges_from((dep, node.node_id) for dep in node.deps)
        return node

    def add_dependency(self, upstream: str, downstream: str) -> None:
        """Make ``downstream`` wait for ``upstream``. Both must exist; may create a cycle."""
        node = self.node(downstream)
        self.node(upstream)
        if upstream not in node.deps:
            node.deps = (*node.deps, upstream)
        self._dag.add_edge(upstream, downstream)

    @property
    def nodes(self) -> list[StepNode]:
        """All nodes in insertion order."""
        return list(self._nodes.values())

    def node(self, node_id: str) -> StepNode:
        """The node ``node_id``; raises ``KeyError`` listing the ids that exist."""
        try:
            return self._nodes[node_id]
        except KeyError:
            known = ", ".join(self._nodes) or "(none)"
            raise KeyError(f"no node {node_id!r} in graph {self.name!r}; nodes: {known}") from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def deps(self, node_id: str) -> tuple[str, ...]:
        """The nodes ``node_id`` waits for, in insertion order."""
        self.node(node_id)
        return self._in_order(self._dag.predecessors(node_id))

    def successors(self, node_id: str) -> tuple[str, ...]:
        """The nodes waiting for ``node_id``, in insertion order."""
        self.node(node_id)
        return self._in_order(self._dag.successors(node_id))

    def _in_order(self, node_ids: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(node_ids, key=self._index.__getitem__))

    def topological_order(self) -> list[str]:
        """Every node after its dependencies; ties broken by insertion order."""
        try:
            return list(nx.lexicographical_topological_sort(self._dag, key=self._index.__getitem__))
        except nx.NetworkXUnfeasible:
            raise GraphCycleError(self._find_cycle()) from None

    def ready(self, done: Collection[str], running: Collection[str]) -> list[str]:
        """Nodes neither done nor running whose dependencies are all done, in insertion
        order."""
        return [
            node_id
            for node_id in self._nodes
            if node_id not in done
            and node_id not in running
            and all(dep in done for dep in self._dag.predecessors(node_id))
        ]

    def critical_path_length(self, weight: Callable[[StepNode], float]) -> float:
        """The largest sum of ``weight(node)`` along any dependency chain (0.0 if empty)."""
        finish: dict[str, float] = {}
        for node_id in self.topological_order():
            start = max((finish[dep] for dep in self._dag.predecessors(node_id)), default=0.0)
            finish[node_id] = start + weight(self._nodes[node_id])
        return max(finish.values(), default=0.0)

    def resolve(self, value: Any, results: Mapping[str, Any]) -> Any:
        """``value`` with handles (also nested in lists, tuples, dicts) replaced by
        ``results[node_id]``. Raises ``KeyError`` for a missing result."""
        return substitute(value, results)

    def resolve_call(self, node_id: str, results: Mapping[str, Any]) -> ResolvedCall:
        """The arguments to run ``node_id`` with, once its dependencies have results."""
        node = self.node(node_id)
        return ResolvedCall(
            args=substitute(node.args, results), kwargs=substitute(node.kwargs, results)
        )

    def validate(self, tool_names: Collection[str] | None = None) -> None:
        """Check the whole graph; raises the first problem found.

        - ``GraphCycleError`` naming the nodes of a cycle;
        - ``GraphUsageError`` for a handle from another graph, or to a node not here;
        - ``ArgumentSerializationError`` for arguments or outputs msgpack cannot carry;
        - ``UnknownToolError`` (when ``tool_names`` is given, e.g. a registry's names)
          for a tool node or a declared step tool that is not among them.
        """
        self.topological_order()
        for node in self._nodes.values():
            for index, value in enumerate(node.args):
                self._check_value(node.node_id, value, f"args[{index}]")
            for name, value in node.kwargs.items():
                self._check_value(node.node_id, value, name)
            if tool_names is not None:
                _check_tools(node, tool_names)
        self._check_value("(outputs)", self.outputs, "return value")

    def tools(self) -> list[Any]:
        """The ``@tool`` objects the graph uses (tool nodes, tools declared by steps and
        their verifiers), one per name, in first-use order; nodes without a target contribute none."""
        found: dict[str, Any] = {}
        for node in self._nodes.values():
            if node.target is None:
                continue
            used = (node.target,) if node.kind == "tool" else _step_tools(node.target)
            for used_tool in used:
                found.setdefault(used_tool.name, used_tool)
        return list(found.values())

    def _check_value(self, owner: str, value: Any, where: str) -> None:
        check_serializable(value, owner, where)
        for handle in iter_handles(value):
            if not handle.belongs_to(self) or handle.node_id not in self._nodes:
                raise GraphUsageError(
                    f"{owner!r} uses the result of step {handle.node_id!r} from another "
                    f"program build; results can only be passed within the @program "
                    "function that produced them"
                )

    def _find_cycle(self) -> list[str]:
        edges = nx.find_cycle(self._dag, source=list(self._nodes))
        return [upstream for upstream, _ in edges]

    @property
    def dag(self) -> nx.DiGraph:
        """A read-only view of the dependency graph (node ids only)."""
        return self._dag.copy(as_view=True)


def _step_tools(step: Any) -> tuple[Any, ...]:
    """The tools a step declared, then its verifier (if any)."""
    verifier = getattr(step, "verifier", None)
    return (*getattr(step, "tools", ()), *((verifier,) if verifier is not None else ()))


def _check_tools(node: StepNode, tool_names: Collection[str]) -> None:
    wanted = (node.name,) if node.kind == "tool" else node.tools
    for name in wanted:
        if name not in tool_names:
            raise UnknownToolError(name, tool_names)
