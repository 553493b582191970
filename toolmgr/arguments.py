"""Argument models for tools: built from a function signature, errors made readable.

The model is what validates a call's JSON arguments; its ``model_json_schema()`` is the
``parameters`` schema the model sees, so the two can never disagree.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Collection
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict

from agentrt.toolmgr.errors import ToolArgumentsError

_ARGS_CONFIG = ConfigDict(extra="forbid", protected_namespaces=())
_MAX_INPUT_REPR = 80


def build_arguments_model(
    fn: Callable[..., Any], tool_name: str, injected: Collection[str] = ()
) -> type[BaseModel]:
    """Return a pydantic model with one field per parameter of ``fn``, except those in
    ``injected`` (filled by the runtime, e.g. a per-program workspace).

    Annotations become field types (missing ones become ``Any``), defaults stay defaults,
    and ``Annotated[..., Field(description=...)]`` carries descriptions into the schema.
    Raises ``TypeError`` for ``*args``, ``**kwargs`` and positional-only parameters,
    which a JSON arguments object cannot fill, and for an injected name that is not a
    parameter of ``fn``.
    """
    hints = typing.get_type_hints(fn, include_extras=True)
    params = inspect.signature(fn).parameters
    unknown = [name for name in injected if name not in params]
    if unknown:
        raise TypeError(
            f"tool {tool_name!r}: resources={unknown} name no parameter of its function "
            f"(parameters: {', '.join(params) or 'none'}); the resource's value is passed "
            "as the parameter of that name")
    fields: dict[str, Any] = {}
    for param in params.values():
        if param.name in injected:
            continue
        _check_parameter_kind(param, tool_name)
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model_name = "".join(part.capitalize() for part in tool_name.split("_")) + "Arguments"
    return pydantic.create_model(model_name, __config__=_ARGS_CONFIG, **fields)


def _check_parameter_kind(param: inspect.Parameter, tool_name: str) -> None:
    kind = param.kind
    if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        raise TypeError(
            f"tool {tool_name!r} takes {'*' if kind is param.VAR_POSITIONAL else '**'}"
            f"{param.name}; tools are called with a JSON object of named arguments, so "
            "declare each argument as a named parameter (use a list or dict parameter "
            "for variable-length input)."
        )
    if kind is inspect.Parameter.POSITIONAL_ONLY:
        raise TypeError(
            f"tool {tool_name!r} has positional-only parameter {param.name!r}; tools "
            "are called with named arguments, so remove the '/' from its signature."
        )


def parameters_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of ``model`` for the ``parameters`` field of a tool spec."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("properties", {})
    return schema


def validate_arguments(
    tool_name: str,
    model: type[BaseModel],
    args: Any,
    defer: Collection[str] = (),
) -> dict[str, Any]:
    """Validate ``args`` against ``model`` and return the validated values by name.

    Fields named in ``defer`` are not judged (their values are not known yet, e.g. the
    result of another step); every other problem is reported. Returns a new dict with
    defaults filled in and values coerced to their annotated types; when only deferred
    fields failed, returns a copy of ``args`` as given. Never mutates ``args``.
    Raises ``ToolArgumentsError``.
    """
    if not isinstance(args, dict):
        raise ToolArgumentsError(
            tool_name, [f"Arguments must be a JSON object, got {type(args).__name__}."]
        )
    try:
        validated = model.model_validate(args)
    except pydantic.ValidationError as exc:
        problems = [
            describe_error(err, model)
            for err in exc.errors()
            if not (err["loc"] and err["loc"][0] in defer)
        ]
        if problems:
            raise ToolArgumentsError(tool_name, problems) from None
        return dict(args)
    return {name: getattr(validated, name) for name in type(validated).model_fields}


def describe_error(err: Any, model: type[BaseModel]) -> str:
    """One sentence for one pydantic error dict, naming the argument and the problem."""
    where = ".".join(str(part) for part in err["loc"]) or "(arguments)"
    kind = err["type"]
    if kind == "missing":
        return f"Argument {where!r} is required but missing."
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields) or "none"
        return f"Argument {where!r} is not a parameter of this tool (parameters: {known})."
    shown = repr(err.get("input"))
    if len(shown) > _MAX_INPUT_REPR:
        shown = shown[: _MAX_INPUT_REPR - 3] + "..."
    message = err["msg"]
    message = message[0].lower() + message[1:] if message else message
    return f"Argument {where!r}: {message}, got {shown}."
