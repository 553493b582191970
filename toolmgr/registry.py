"""``ToolRegistry``: tools by name, their argument models, and their OpenAI schemas."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agentrt.toolmgr.arguments import build_arguments_model, parameters_schema, validate_arguments
from agentrt.toolmgr.errors import ToolArgumentsError, UnknownToolError
from agentrt.toolmgr.function_ref import check_nameable
from agentrt.toolmgr.resource_pools import ResourcePool
from agentrt.toolmgr.spec import ToolSpec


@dataclass(frozen=True, slots=True)
class RegisteredTool:
    """A tool's spec, its Python function, the model that validates its arguments, and
    the resource pools that fill some of its parameters (parameter name -> pool)."""

    spec: ToolSpec
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    resources: Mapping[str, ResourcePool] = field(default_factory=dict, hash=False)

    @classmethod
    def from_function(
        cls, fn: Callable[..., Any], resources: Mapping[str, ResourcePool] | None = None,
        **overrides: Any,
    ) -> RegisteredTool:
        """Describe ``fn`` as a tool.

        The name defaults to ``fn.__name__``, the description to the first paragraph of
        its docstring, ``parameters`` always comes from the signature, ``returns_json``
        is false when the return annotation is ``str``. ``resources`` maps parameters
        to ``ResourcePool``s: the runtime fills them per program and they are not in
        ``parameters``. ``overrides`` are any other ``ToolSpec`` fields
        (``timeout_s=5``, ``executor="subprocess"``); a bad one raises pydantic's
        ``ValidationError`` naming the field and the value. A ``subprocess`` tool's
        function must be nameable at module level (``SandboxTargetError`` otherwise).
        """
        if "parameters" in overrides:
            raise TypeError(
                "a tool's parameters come from its function signature; annotate the "
                "function's parameters instead of passing parameters=..."
            )
        resources = dict(resources or {})
        bad = {k: v for k, v in resources.items() if not isinstance(v, ResourcePool)}
        if bad:
            raise TypeError(f"resources= maps parameter names to ResourcePool objects "
                            f"(WorkspacePool, PortPool, SandboxPool); got {bad!r}")
        name = overrides.pop("name", None) or fn.__name__
        spec_fields: dict[str, Any] = {
            "name": name,
            "description": _first_paragraph(fn),
            "returns_json": inspect.signature(fn).return_annotation not in (str, "str"),
        }
        spec_fields.update({k: v for k, v in overrides.items() if v is not None})
        spec_fields["resources"] = {param: pool.name for param, pool in resources.items()}
        model = build_arguments_model(fn, name, injected=resources)
        spec = ToolSpec(parameters=parameters_schema(model), **spec_fields)
        if spec.executor == "subprocess":
            check_nameable(fn, name)
        return cls(spec=spec, fn=fn, args_model=model, resources=resources)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_async(self) -> bool:
        """Whether calling ``fn`` returns a coroutine to await."""
        return inspect.iscoroutinefunction(self.fn)

    def validate_args(self, args: Any, defer: Collection[str] = ()) -> dict[str, Any]:
        """Validated keyword arguments for ``fn``; see ``arguments.validate_arguments``.

        Raises ``ToolArgumentsError`` naming this tool, each bad field and its problem.
        """
        return validate_arguments(self.name, self.args_model, args, defer)

    def openai_tool(self) -> dict[str, Any]:
        """This tool in the OpenAI ``tools=[...]`` shape."""
        return {
            "type": "function",
            "function": {
                "name": self.spec.name,
                "description": self.spec.description,
                "parameters": self.spec.parameters,
            },
        }


def _first_paragraph(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


class ToolRegistry:
    """Tools by name, in registration order.

    Not thread-safe for concurrent registration; register tools at start-up, then read
    from anywhere. Names are unique: registering a second tool under a taken name raises
    ``ValueError`` (re-adding the very same ``RegisteredTool`` is a no-op).
    """

    def __init__(self, tools: Iterable[RegisteredTool] = ()) -> None:
        self._tools: dict[str, RegisteredTool] = {}
        for registered in tools:
            self.add(registered)

    def register(self, fn: Callable[..., Any], **spec_overrides: Any) -> RegisteredTool:
        """Describe ``fn`` as a tool (see ``RegisteredTool.from_function``) and add it."""
        registered = RegisteredTool.from_function(fn, **spec_overrides)
        self.add(registered)
        return registered

    def add(self, registered: RegisteredTool) -> RegisteredTool:
        """Add an already described tool; returns it. Raises ``ValueError`` on a clash."""
        existing = self._tools.get(registered.name)
        if existing is not None and existing is not registered:
            raise ValueError(
                f"a different tool named {registered.name!r} is already registered; "
                "give one of them another name (name=...)"
            )
        self._tools[registered.name] = registered
        return registered

    def get(self, name: str) -> RegisteredTool:
        """The tool called ``name``; raises ``UnknownToolError`` listing the known names."""
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name, self._tools) from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[str]:
        """Names in registration order (like a mapping's keys)."""
        return iter(self._tools)

    def tools(self) -> list[RegisteredTool]:
        """Registered tools in registration order."""
        return list(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def validate_args(self, name: str, args: Any) -> dict[str, Any]:
        """Validated keyword arguments for tool ``name``.

        Raises ``UnknownToolError`` for an unknown name and ``ToolArgumentsError`` (one
        sentence per problem, naming the field) for arguments that do not fit.
        """
        return self.get(name).validate_args(args)

    def openai_tools(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The OpenAI ``tools=[...]`` list for ``names`` (in that order; all when None).

        Raises ``UnknownToolError`` for a name that is not registered.
        """
        chosen = self._tools if names is None else names
        return [self.get(name).openai_tool() for name in chosen]


__all__ = ["RegisteredTool", "ToolArgumentsError", "ToolRegistry", "UnknownToolError"]
