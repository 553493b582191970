"""Errors raised while building and validating a program graph.

All are ``ValueError`` subclasses. Each message says what is wrong and what to do.
``UnknownToolError`` and ``ToolArgumentsError`` come from ``toolmgr`` and are raised
unchanged (re-exported here so that ``programs.errors`` lists every error a build can
raise); they are ``ValueError`` subclasses but not ``ProgramValidationError`` ones.
"""

from __future__ import annotations

from agentrt.toolmgr.errors import ToolArgumentsError, UnknownToolError


class ProgramValidationError(ValueError):
    """Base class: the program cannot be turned into a valid graph."""


class GraphCycleError(ProgramValidationError):
    """The dependencies form a cycle; ``cycle`` lists its node ids in order."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = tuple(cycle)
        loop = " -> ".join([*cycle, cycle[0]]) if cycle else "?"
        super().__init__(
            f"program graph has a cycle: {loop}; a step cannot depend on its own result, "
            "so remove one of these dependencies"
        )


class UndeclaredToolError(ProgramValidationError):
    """A step lists something that is not a ``@tool``, or calls a tool it did not list."""


class GraphUsageError(ProgramValidationError):
    """A step result (a ``StepHandle``) or a decorated object was used in a way the
    program graph cannot express."""


class ArgumentSerializationError(ProgramValidationError):
    """A step or tool argument that cannot be serialised with msgpack."""


class ChoiceDeclarationError(ProgramValidationError):
    """A step's declared choices (candidate models, max_samples, verifier) are invalid,
    or name a model the runtime neither prices nor serves."""


__all__ = [
    "ArgumentSerializationError",
    "ChoiceDeclarationError",
    "GraphCycleError",
    "GraphUsageError",
    "ProgramValidationError",
    "ToolArgumentsError",
    "UndeclaredToolError",
    "UnknownToolError",
]
