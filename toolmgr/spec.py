"""``ToolSpec``: the validated, frozen description of one tool."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
"""Identifier-like names that every OpenAI-compatible server accepts."""


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

    executor: Literal["inline", "thread"] = "thread"
    """How the function runs: ``inline`` in the event loop (for async or very cheap
    functions), ``thread`` in a worker thread (for blocking functions)."""

    duration_prior_s: float | None = Field(default=None, gt=0)
    """Prior mean duration in seconds, used by the duration model until enough calls
    have been observed. ``None`` means no prior: the global duration CDF stands in."""

    returns_json: bool = True
    """Whether the output is JSON-able data (``False``: the output is plain text)."""
