"""``ToolManagerSettings``: the knobs of tool execution that are not per tool."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ToolManagerSettings(BaseModel):
    """Validated settings of a ``ToolManager``; a bad value is reported with the option's
    name, the value given and what is valid."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    max_result_bytes: int | None = Field(default=64 * 1024, ge=256)
    """Cap on a result's text (its output as JSON, or its error) handed to the model, in
    bytes of UTF-8; a longer one is cut and marked (``ToolResult.truncated``). ``None``:
    no cap. Calls made with ``max_result_bytes=None`` (a program's tool nodes, whose
    outputs are data for its steps) are never cut."""

    blocking_threshold_s: float = Field(default=0.1, gt=0)
    """How long tool code may hold the event loop at a stretch before its result and
    span report that it blocked (``ToolResult.warnings``)."""

    preparation: Literal["overlap", "before_start"] = "overlap"
    """``overlap``: a program's tool resources are prepared while it runs, and a call
    waits only for what is not ready yet. ``before_start``: all of them are prepared
    before the program's first step (what a runtime without asynchronous preparation
    does; kept for comparison)."""

    close_timeout_s: float = Field(default=30.0, gt=0)
    """How long closing a program may wait for its cancelled calls to end (a subprocess
    tool's tree is ended within its kill grace) and its resources to be cleaned up."""

    recent_programs: int = Field(default=10_000, ge=1)
    """How many closed programs are remembered, so a late call of one is refused."""
