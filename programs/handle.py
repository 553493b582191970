"""``StepHandle``: the stand-in for a step's result while the graph is being built.

A handle only records *which* node will produce a value. The value does not exist yet,
so everything that would need it (truth tests, iteration, indexing, arithmetic,
comparison, formatting, attribute access) raises ``GraphUsageError`` saying how to
express the same thing in the graph: pass the handle to another ``@step``. Hashing is
by identity, so handles can be dict keys and set members.
"""

from __future__ import annotations

from typing import Any, NoReturn

from agentrt.programs.errors import GraphUsageError

# (dunder methods, what the user tried, what to do instead). Installed on StepHandle below.
_ARITHMETIC = " ".join(
    f"__{prefix}{op}__"
    for op in "add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or".split()
    for prefix in ("", "r", "i")
)
_GUARDS: tuple[tuple[str, str, str], ...] = (
    ("__bool__", "testing it with `if`, `and`/`or`/`not` or bool()",
     "branch on it there (an `if` in a @program function runs once, at build time)"),
    ("__iter__ __len__ __contains__ __getitem__ __reversed__",
     "iterating, indexing, len() or `in`", "index, measure or loop over it there"),
    ("__str__ __format__ __bytes__", "str(), an f-string or format()", "format it there"),
    ("__eq__ __ne__ __lt__ __le__ __gt__ __ge__", "comparing it", "compare it there"),
    (_ARITHMETIC + " __neg__ __pos__ __abs__ __invert__ __int__ __float__ __complex__ "
     "__index__ __round__ __trunc__ __floor__ __ceil__",
     "arithmetic or a number conversion", "compute with it there"),
    ("__call__", "calling it", "call it there"),
    ("__await__", "awaiting it",
     "use it there (a @program function is a plain `def`; its step calls are not awaited)"),
)


class StepHandle:
    """Refers to the node ``node_id`` of the graph being built; see the module doc.

    Attributes:
        node_id: the id of the node whose result this stands for (e.g. ``"plan#2"``).
        name: the step or tool name, for messages.
    """

    __slots__ = ("_graph", "name", "node_id")

    def __init__(self, node_id: str, name: str, graph: object) -> None:
        self.node_id = node_id
        self.name = name
        self._graph = graph

    def belongs_to(self, graph: object) -> bool:
        """Whether this handle was made while building ``graph``."""
        return self._graph is graph

    def __repr__(self) -> str:
        return f"StepHandle({self.node_id!r})"

    __hash__ = object.__hash__

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        self._misuse(f"reading .{attr}", "read the attribute there")

    def _misuse(self, what: str, fix: str) -> NoReturn:
        raise GraphUsageError(
            f"the result of step {self.node_id!r} is not known while the program graph is "
            f"being built, so {what} is not possible; pass it as an argument to another "
            f"@step and {fix}"
        )


def _make_guard(dunder: str, what: str, fix: str) -> Any:
    def guard(self: StepHandle, *args: Any) -> NoReturn:
        self._misuse(what, fix)

    guard.__name__ = dunder
    return guard


for _dunders, _what, _fix in _GUARDS:
    for _dunder in _dunders.split():
        setattr(StepHandle, _dunder, _make_guard(_dunder, _what, _fix))
