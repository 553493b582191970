"""``@tool``: a plain function that the model (or a program) can call by name."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, overload

from agentrt.programs.build import GraphBuilder, current_builder
from agentrt.programs.handle import StepHandle
from agentrt.programs.values import contains_handle
from agentrt.toolmgr.errors import ToolArgumentsError
from agentrt.toolmgr.executor_options import RayTaskOptions, SandboxLimits
from agentrt.toolmgr.registry import RegisteredTool
from agentrt.toolmgr.resource_pools import ResourcePool
from agentrt.toolmgr.spec import ExecutorName, ToolSpec


class Tool:
    """A function described as a tool (``.spec``, ``.registered``) that stays callable.

    Outside a program build, calling it calls the function (so tools are testable as
    plain functions). Inside a ``@program`` build, calling it adds a tool node to the
    graph and returns a ``StepHandle``: literal arguments are checked against the
    tool's schema right away (``ToolArgumentsError``), arguments that are results of
    other steps when the node runs.
    """

    def __init__(self, registered: RegisteredTool) -> None:
        self.registered = registered
        self.fn = registered.fn
        # What a program passes: parameters filled by resource pools are the runtime's.
        signature = inspect.signature(registered.fn)
        self._signature = signature.replace(parameters=[
            p for p in signature.parameters.values() if p.name not in registered.resources])
        functools.update_wrapper(self, registered.fn)

    @property
    def spec(self) -> ToolSpec:
        return self.registered.spec

    @property
    def name(self) -> str:
        return self.registered.spec.name

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        return self._bind(builder, args, kwargs)

    def _bind(
        self, builder: GraphBuilder, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepHandle:
        try:
            arguments = dict(self._signature.bind_partial(*args, **kwargs).arguments)
        except TypeError as exc:
            raise ToolArgumentsError(self.name, [f"{exc}."]) from None
        builder.check_arguments(self.name, arguments)
        deferred = {name for name, value in arguments.items() if contains_handle(value)}
        self.registered.validate_args(arguments, defer=deferred)
        return builder.add(self.name, "tool", self, (), arguments)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    timeout_s: float = 60.0,
    executor: ExecutorName = "thread",
    duration_prior_s: float | None = None,
    description: str | None = None,
    sandbox: SandboxLimits | dict[str, Any] | None = None,
    ray: RayTaskOptions | dict[str, Any] | None = None,
    resources: Mapping[str, ResourcePool] | None = None,
    side_effects: bool = False,
    idempotent: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    timeout_s: float = 60.0,
    executor: ExecutorName = "thread",
    duration_prior_s: float | None = None,
    description: str | None = None,
    sandbox: SandboxLimits | dict[str, Any] | None = None,
    ray: RayTaskOptions | dict[str, Any] | None = None,
    resources: Mapping[str, ResourcePool] | None = None,
    side_effects: bool = False,
    idempotent: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Declare a tool: ``@tool`` or ``@tool(timeout_s=5, executor="subprocess")``.

    ``name`` defaults to the function's name and ``description`` to the first
    paragraph of its docstring; parameters come from the signature. ``executor``
    says how it runs (``thread``, ``subprocess``, ``ray``, ``inline``: see
    docs/tools.md); ``sandbox`` (subprocess) and ``ray`` (ray) are its options;
    ``resources`` maps parameters to per-program ``ResourcePool``s that the runtime
    fills. ``side_effects=True`` declares that a call changes the world: with the
    runtime's journal it never runs twice for the same call (``idempotent=True``: it
    may, when a crash left it unknown whether it ran; docs/journal.md). Bad options raise pydantic's ``ValidationError`` naming the field and the
    value.
    """

    def decorate(f: Callable[..., Any]) -> Tool:
        registered = RegisteredTool.from_function(
            f,
            name=name,
            timeout_s=timeout_s,
            executor=executor,
            duration_prior_s=duration_prior_s,
            description=description,
            sandbox=sandbox,
            ray=ray,
            resources=resources,
            side_effects=side_effects or None,
            idempotent=idempotent or None,
        )
        return Tool(registered)

    return decorate(fn) if fn is not None else decorate
