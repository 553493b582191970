"""``ToolResult``: the outcome of one tool call, success or failure, with its timings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# ``error.type`` values that are not exception class names (OpenTelemetry's semantic
# conventions ask for a low-cardinality identifier: a class name or a short code).
TIMEOUT = "timeout"
CANCELLED = "cancelled"
BLOCKED_LOOP = "blocked_event_loop"


def exception_type(exc: BaseException) -> str:
    """``error.type`` for an exception: its class name, qualified by its module unless
    it is a builtin (OpenTelemetry's convention for ``error.type``)."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


@dataclass(slots=True)
class ToolTimings:
    """Where a call's time went, in seconds of the caller's clock.

    ``resource_wait_s`` and ``prepare_wait_s`` are the parts of the call spent blocked
    on its per-program resources (waiting for a pool slot; waiting for a preparation
    that was still running); ``prepare_s`` is how long those preparations took in all,
    most of which normally overlapped with earlier work of the program; ``run_s`` is
    the executor's part, start to end of the function. ``blocked_loop_s`` is the
    longest stretch the tool's code held the event loop without yielding (wall
    seconds; see ``loop_guard``): 0 for code that ran off the loop.
    """

    resource_wait_s: float = 0.0
    prepare_wait_s: float = 0.0
    prepare_s: float = 0.0
    run_s: float = 0.0
    blocked_loop_s: float = 0.0


@dataclass(slots=True)
class SandboxReport:
    """What a subprocess tool's sandbox did get: the child's pid, whether it ran in a
    network namespace of its own (``None``: unknown, the child ended before saying),
    and how or why not (``detail``)."""

    pid: int
    network_isolated: bool | None
    detail: str


@dataclass(slots=True)
class ToolResult:
    """What one tool call produced.

    Exactly one of ``output`` (when ``ok``) and ``error`` (when not ``ok``) is meaningful.
    ``started_at`` is on the clock the caller passed to ``ToolManager.call`` and
    ``duration_s`` is the difference between two readings of that clock: the whole call
    as its caller waited for it, resource waits included (``timings`` breaks it down).
    Validation failures and unknown tools have ``duration_s == 0.0``.
    """

    call_id: str
    name: str
    ok: bool
    output: Any = None
    """The function's return value (JSON-able data or text) when ``ok``; when
    ``truncated``, the first bytes of its JSON text and a marker saying so."""
    error: str | None = None
    """``"<ExceptionType>: <message>"`` or a sentence saying what went wrong and how to fix it."""
    started_at: float = 0.0
    duration_s: float = 0.0
    error_type: str | None = None
    """``error.type`` in OpenTelemetry's terms when not ``ok``: an exception class name
    (``UnknownToolError``, ``ValueError``, ``mymod.Oops``) or ``timeout``/``cancelled``."""
    executor: str = ""
    """The executor that ran the call (empty when it was rejected before running)."""
    warnings: list[str] = field(default_factory=list)
    """Problems that did not fail the call, e.g. an inline tool that blocked the loop or
    a sandbox without network isolation."""
    truncated: bool = False
    """Whether ``output`` was cut to the size cap (see ``ToolManagerSettings``)."""
    output_bytes: int | None = None
    """The full output's size in bytes of UTF-8 text, when it was truncated."""
    timings: ToolTimings = field(default_factory=ToolTimings)
    sandbox: SandboxReport | None = None
    """Set for ``subprocess`` calls that started a child."""

    @classmethod
    def failure(
        cls, call_id: str, name: str, error: str, started_at: float = 0.0,
        duration_s: float = 0.0, error_type: str | None = None,
    ) -> ToolResult:
        return cls(call_id, name, False, None, error, started_at, duration_s,
                   error_type=error_type or "_OTHER")

    def content(self) -> str:
        """Text for the tool message: the output (``json.dumps`` unless it is a ``str``)
        or ``"ERROR: <error>"``. Never raises: values JSON cannot encode are written
        with ``str()``."""
        if not self.ok:
            return f"ERROR: {self.error}"
        return output_text(self.output)

    def to_message(self) -> dict[str, str]:
        """The OpenAI chat message that reports this result to the model."""
        return {"role": "tool", "tool_call_id": self.call_id, "content": self.content()}

    def span_attributes(self) -> dict[str, Any]:
        """Attributes for the call's ``execute_tool`` span: the executor, the timings,
        truncation, warnings, the sandbox's isolation and, on failure, ``error.type``."""
        t = self.timings
        attributes: dict[str, Any] = {
            "agentrt.tool.executor": self.executor,
            "agentrt.tool.duration_s": self.duration_s,
            "agentrt.tool.run_s": t.run_s,
            "agentrt.tool.resource_wait_s": t.resource_wait_s,
            "agentrt.tool.prepare_wait_s": t.prepare_wait_s,
            "agentrt.tool.prepare_s": t.prepare_s,
            "agentrt.tool.blocked_loop_s": t.blocked_loop_s,
            "agentrt.tool.truncated": self.truncated,
        }
        if self.output_bytes is not None:
            attributes["agentrt.tool.output_bytes"] = self.output_bytes
        if self.warnings:
            attributes["agentrt.tool.warnings"] = list(self.warnings)
        if self.sandbox is not None:
            if self.sandbox.network_isolated is not None:
                attributes["agentrt.sandbox.network_isolated"] = self.sandbox.network_isolated
            attributes["agentrt.sandbox.detail"] = self.sandbox.detail
        if not self.ok:
            attributes["error.type"] = self.error_type or "_OTHER"
        return attributes


def output_text(output: Any) -> str:
    """The text a model sees for ``output``: itself if a ``str``, else its JSON."""
    if isinstance(output, str):
        return output
    return json.dumps(output, default=str, ensure_ascii=False)
