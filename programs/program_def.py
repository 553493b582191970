"""``@program``: a plain function that wires steps and tools into a ``ProgramGraph``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field

from agentrt.programs.build import building
from agentrt.programs.errors import GraphUsageError
from agentrt.programs.graph import ProgramGraph


class ProgramOptions(BaseModel):
    """Options given to ``@program(...)``: identity, limits and ownership."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str = Field(min_length=1)
    """Program name (defaults to the function's name); also the graph's name."""

    budget_tokens: int | None = Field(default=None, gt=0)
    """Most tokens (prompt + completion, all steps) one run may use; ``None``: no cap."""

    budget_usd: float | None = Field(default=None, gt=0)
    """Most US dollars one run may cost; ``None``: no cap."""

    deadline_s: float | None = Field(default=None, gt=0)
    """Seconds from arrival by which a run must finish; ``None``: no deadline."""

    tenant: str = Field(default="default", min_length=1)
    """Who the run is accounted to, for fair queueing and budgets."""


class ProgramDef:
    """A ``@program`` function and its options. ``build(...)`` (or calling it) runs the
    function once under a build context and returns the validated ``ProgramGraph``.

    Steps and tools called during the build become nodes in call order; the function's
    return value (a handle, a list/tuple/dict of handles, or a literal) becomes
    ``graph.outputs``. Raises the ``programs.errors`` error describing the first problem.
    """

    def __init__(self, fn: Callable[..., Any], options: ProgramOptions) -> None:
        self.fn = fn
        self.options = options
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.options.name

    def __repr__(self) -> str:
        return f"ProgramDef({self.name!r})"

    def build(self, *args: Any, **kwargs: Any) -> ProgramGraph:
        """Run the program function with these arguments and return its checked graph."""
        graph = ProgramGraph(self.name)
        with building(graph):
            graph.outputs = self.fn(*args, **kwargs)
        graph.validate()
        return graph

    __call__ = build


@overload
def program(fn: Callable[..., Any], /) -> ProgramDef: ...
@overload
def program(
    *,
    name: str | None = None,
    budget_tokens: int | None = None,
    budget_usd: float | None = None,
    deadline_s: float | None = None,
    tenant: str = "default",
) -> Callable[[Callable[..., Any]], ProgramDef]: ...


def program(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    budget_tokens: int | None = None,
    budget_usd: float | None = None,
    deadline_s: float | None = None,
    tenant: str = "default",
) -> ProgramDef | Callable[[Callable[..., Any]], ProgramDef]:
    """Declare a program: ``@program`` or ``@program(budget_usd=0.5, deadline_s=60)``.

    The function must be a plain ``def``: it only wires steps together, once, at build
    time. Bad option values raise pydantic's ``ValidationError`` naming the field.
    """

    def decorate(f: Callable[..., Any]) -> ProgramDef:
        if inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f):
            raise GraphUsageError(
                f"program {f.__name__!r} is async; a @program function only wires steps "
                "together while the graph is built, so make it a plain `def` (put async "
                "work inside @step functions)"
            )
        options = ProgramOptions(
            name=name or f.__name__,
            budget_tokens=budget_tokens,
            budget_usd=budget_usd,
            deadline_s=deadline_s,
            tenant=tenant,
        )
        return ProgramDef(f, options)

    return decorate(fn) if fn is not None else decorate
