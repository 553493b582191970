"""Errors raised by the tool manager.

Both are ``ValueError`` subclasses so callers can catch them broadly. ``programs`` raises
them unchanged when a program refers to an unknown tool or passes bad literal arguments
to one (``toolmgr`` must not import ``programs``, so they cannot share a base class).
"""

from __future__ import annotations

from collections.abc import Iterable


class UnknownToolError(ValueError):
    """A tool name that no registry entry answers to.

    Attributes:
        name: the name that was asked for.
        known: the registered names, sorted.
    """

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        listed = ", ".join(self.known) if self.known else "(none registered)"
        super().__init__(
            f"unknown tool {name!r}; known tools: {listed}. "
            "Fix the name or register the tool first (ToolRegistry.register(fn) or @tool)."
        )


class ToolArgumentsError(ValueError):
    """Arguments that do not match a tool's parameter schema.

    Attributes:
        tool: the tool's name.
        problems: one readable sentence per problem, in the order pydantic reported them.
    """

    def __init__(self, tool: str, problems: Iterable[str]) -> None:
        self.tool = tool
        self.problems = tuple(problems)
        super().__init__(
            f"tool {tool!r} rejected its arguments: " + " ".join(self.problems)
            + " Fix the call to match the tool's parameters."
        )
