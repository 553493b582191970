"""``ToolSpec``: the validated, frozen description of one tool."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentrt.toolmgr.executor_options import RayTaskOptions, SandboxLimits

TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
"""Identifier-like names that every OpenAI-compatible server accepts."""

ExecutorName = Literal["inline", "thread", "subprocess", "ray"]


class ToolSpec(BaseModel):
    """What the runtime needs to know about a tool, independent of its Python function.

    Built by ``RegisteredTool.from_function`` from a function's signature and docstring;
    keyword overrides (``timeout_s=5``) are validated here, and a bad value is reported
    with the field name and the value that was given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    """Name the model calls the tool by: a letter or underscore, then up to 63 letters,
    digits, underscores or hyphens."""

    description: str = ""
    """Shown to the model; defaults to the first paragraph of the function's docstring."""

    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    """JSON schema of the arguments object (derived from the function signature)."""

    timeout_s: float = Field(default=60.0, gt=0)
    """Seconds after which a call is abandoned and reported as a timed-out error result."""

    executor: ExecutorName = "thread"
    """How the function runs (see ``toolmgr.executors``): ``thread`` in a worker thread
    (the default; a thread cannot be killed, so a timed-out call is abandoned, not
    stopped); ``subprocess`` in a sandboxed child process that is killed with its whole
    process tree on timeout or cancellation; ``ray`` as a Ray task with resources of its
    own; ``inline`` in the event loop, which declares the function non-blocking: the
    runtime cannot interrupt it, only detect and report that it blocked."""

    sandbox: SandboxLimits | None = None
    """Limits of the child process; only with ``executor="subprocess"`` (``None``
    there means the defaults of ``SandboxLimits``)."""

    ray: RayTaskOptions | None = None
    """Resources of each Ray task; only with ``executor="ray"`` (``None`` there means
    the defaults of ``RayTaskOptions``)."""

    resources: dict[str, str] = Field(default_factory=dict)
    """Per-program resources the runtime hands to the function: parameter name ->
    resource pool name (filled from ``@tool(resources=...)``; not in ``parameters``)."""

    duration_prior_s: float | None = Field(default=None, gt=0)
    """Prior mean duration in seconds, used by the duration model until enough calls
    have been observed. ``None`` means no prior: the global duration CDF stands in."""

    returns_json: bool = True
    """Whether the output is JSON-able data (``False``: the output is plain text)."""

    side_effects: bool = False
    """The tool changes the world (sends mail, charges a card, writes a database): with
    the runtime's journal on, a call never runs twice for the same idempotency key
    (program, step, turn, call id). Its journaled result is returned instead, and a
    call that may have run without its result being recorded (a crash between the two)
    is refused rather than run again (see docs/journal.md)."""

    idempotent: bool = False
    """Running a side-effecting call twice does no harm (it sets, not adds): a call
    that may have run without its result being recorded is run again on resume
    instead of being refused. Only meaningful with ``side_effects=True``."""

    @model_validator(mode="after")
    def _options_match_executor(self) -> ToolSpec:
        for option, owner in (("sandbox", "subprocess"), ("ray", "ray")):
            if getattr(self, option) is not None and self.executor != owner:
                raise ValueError(
                    f"{option}=... applies to executor={owner!r} only, but this tool has "
                    f"executor={self.executor!r}; set executor={owner!r} or drop {option}")
        return self

    @model_validator(mode="after")
    def _idempotent_needs_side_effects(self) -> ToolSpec:
        if self.idempotent and not self.side_effects:
            raise ValueError(
                "idempotent=True says that running a side-effecting call twice is safe, but "
                "this tool has side_effects=False; set side_effects=True or drop idempotent")
        return self

    def sandbox_limits(self) -> SandboxLimits:
        """The subprocess limits in force: the declared ones or the defaults."""
        return self.sandbox if self.sandbox is not None else SandboxLimits()

    def ray_options(self) -> RayTaskOptions:
        """The Ray task options in force: the declared ones or the defaults."""
        return self.ray if self.ray is not None else RayTaskOptions()
