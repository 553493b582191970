"""``@step``: one conversation of an agent (LLM turns and tool calls) in a program."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field

from agentrt.programs.build import current_builder
from agentrt.programs.choices import Candidate, check_choices
from agentrt.programs.errors import GraphUsageError, UndeclaredToolError
from agentrt.programs.handle import StepHandle
from agentrt.programs.tool_def import Tool
from agentrt.toolmgr.spec import TOOL_NAME_PATTERN

_CTX = object()  # stands in for the step context when checking a call's arguments


class StepOptions(BaseModel):
    """Options given to ``@step(...)``, validated once at decoration time."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    """Step name, used for node ids (``plan``, ``plan#2``) and in traces."""

    tools: tuple[str, ...] = ()
    """Names of the tools the step may call, in declaration order."""

    model: str | None = None
    """Preferred model; ``None`` lets the planner choose."""

    max_tokens: int = Field(default=1024, gt=0)
    """Default cap on output tokens per LLM turn of this step."""

    candidates: tuple[Candidate, ...] = ()
    """Models the planner may sample for this step, with priors; empty: no planning."""

    max_samples: int = Field(default=1, ge=1)
    """Most parallel samples the planner may draw in one attempt."""

    verifier: str | None = None
    """Name of the ``@tool`` that says whether a sample passed."""

    prompt_tokens: int = Field(default=1000, gt=0)
    """Expected prompt length of one sample, for planning (the budget ledger reserves
    the actual prompt)."""

    @property
    def planned(self) -> bool:
        """Whether the planner chooses this step's model and samples."""
        return bool(self.candidates)


class Step:
    """A step function ``def f(ctx, *args, **kwargs)`` (or ``async def``) and its options.

    Calling a ``Step`` is only meaningful inside a ``@program`` function: it adds a
    step node and returns a ``StepHandle``. Elsewhere it raises ``GraphUsageError``;
    call ``.fn(ctx, ...)`` to run the body directly (e.g. in a test with a fake context).
    """

    def __init__(
        self, fn: Callable[..., Any], tools: tuple[Tool, ...], options: StepOptions,
        verifier: Tool | None = None,
    ) -> None:
        self.fn = fn
        self.tools = tools
        self.options = options
        self.verifier = verifier
        self._signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def __repr__(self) -> str:
        return f"Step({self.name!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> StepHandle:
        builder = current_builder()
        if builder is None:
            raise GraphUsageError(
                f"step {self.name!r} was called outside a program build; call it inside a "
                "@program function (which records it as a node of the program graph), or "
                f"call {self.name}.fn(ctx, ...) to run its body directly"
            )
        try:
            bound = self._signature.bind(_CTX, *args, **kwargs)
        except TypeError as exc:
            raise GraphUsageError(
                f"step {self.name!r} cannot be called with these arguments ({exc}); match "
                "its signature, leaving out the first parameter (the step context)"
            ) from None
        arguments = _without_context(bound.arguments)
        builder.check_arguments(self.name, arguments)
        opts = self.options
        return builder.add(
            opts.name, "step", self, args, dict(kwargs),
            tools=opts.tools, model=opts.model, max_tokens=opts.max_tokens,
        )


def _without_context(arguments: dict[str, Any]) -> dict[str, Any]:
    """The bound arguments minus the context placeholder (first, maybe inside *args)."""
    first, rest = next(iter(arguments.items())), dict(arguments)
    name, value = first
    if value is _CTX:
        del rest[name]
    else:  # def f(*args): the placeholder is args[0]
        rest[name] = value[1:]
    return rest


def _check_tools(step_name: str, tools: Sequence[Any]) -> tuple[Tool, ...]:
    if isinstance(tools, (str, Tool)) or callable(tools):
        tools = [tools]
    for entry in tools:
        if not isinstance(entry, Tool):
            shown = getattr(entry, "__name__", None) or repr(entry)
            raise UndeclaredToolError(
                f"step {step_name!r} lists {shown} in tools=, but it is a "
                f"{type(entry).__name__}, not a @tool; decorate it with @agentrt.tool "
                "(programs.tool) and list the decorated object"
            )
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UndeclaredToolError(
            f"step {step_name!r} lists more than one tool named {', '.join(duplicates)}; "
            "give each tool a distinct name (@tool(name=...))"
        )
    return tuple(tools)


def _check_signature(step_name: str, fn: Callable[..., Any]) -> None:
    params = list(inspect.signature(fn).parameters.values())
    takes_ctx = params and params[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    )
    if not takes_ctx:
        raise GraphUsageError(
            f"step {step_name!r} must take the step context as its first positional "
            f"parameter: def {fn.__name__}(ctx, ...)"
        )


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(
    *,
    tools: Sequence[Tool] = (),
    model: str | None = None,
    max_tokens: int = 1024,
    name: str | None = None,
    candidates: Sequence[Candidate | Mapping[str, Any] | tuple] | None = None,
    max_samples: int | None = None,
    verifier: Tool | None = None,
    prompt_tokens: int = 1000,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    tools: Sequence[Tool] = (),
    model: str | None = None,
    max_tokens: int = 1024,
    name: str | None = None,
    candidates: Sequence[Candidate | Mapping[str, Any] | tuple] | None = None,
    max_samples: int | None = None,
    verifier: Tool | None = None,
    prompt_tokens: int = 1000,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Declare a step: ``@step`` or ``@step(tools=[search], model="small")``.

    Declared choices (``programs.choices``): ``candidates`` lists the models the
    planner may sample (``Candidate(model, p=..., output_tokens=...)``), ``max_samples``
    caps the parallel samples of one attempt (default 4 with candidates), ``verifier``
    is the ``@tool`` that checks a sample, and ``prompt_tokens`` the expected prompt
    length the planner prices. The body draws samples with ``ctx.sample(messages)``.

    Raises ``UndeclaredToolError`` when ``tools`` holds anything but ``@tool`` objects,
    ``GraphUsageError`` when the function does not take the context first,
    ``ChoiceDeclarationError`` for bad declared choices, and pydantic's
    ``ValidationError`` for a bad option value.
    """

    def decorate(f: Callable[..., Any]) -> Step:
        step_name = name or f.__name__
        declared = _check_tools(step_name, tools)
        _check_signature(step_name, f)
        choices = check_choices(step_name, candidates, max_samples, verifier, max_tokens)
        tool_names = tuple(t.name for t in declared)
        options = StepOptions(
            name=step_name, tools=tool_names, model=model, max_tokens=max_tokens,
            candidates=choices.candidates, max_samples=choices.max_samples,
            verifier=choices.verifier.name if choices.verifier else None,
            prompt_tokens=prompt_tokens,
        )
        return Step(f, declared, options, choices.verifier)

    return decorate(fn) if fn is not None else decorate
