"""``ToolResult``: the outcome of one tool call, success or failure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class ToolResult:
    """What one tool call produced.

    Exactly one of ``output`` (when ``ok``) and ``error`` (when not ``ok``) is meaningful.
    ``started_at`` is on the clock the caller passed to ``ToolManager.call`` and
    ``duration_s`` is the difference between two readings of that clock; validation
    failures and unknown tools have ``duration_s == 0.0``.
    """

    call_id: str
    name: str
    ok: bool
    output: Any = None
    """The function's return value (JSON-able data or text) when ``ok``."""
    error: str | None = None
    """``"<ExceptionType>: <message>"`` or a sentence saying what went wrong and how to fix it."""
    started_at: float = 0.0
    duration_s: float = 0.0

    @classmethod
    def failure(
        cls, call_id: str, name: str, error: str, started_at: float = 0.0, duration_s: float = 0.0
    ) -> ToolResult:
        return cls(call_id, name, False, None, error, started_at, duration_s)

    def content(self) -> str:
        """Text for the tool message: the output (``json.dumps`` unless it is a ``str``)
        or ``"ERROR: <error>"``. Never raises: values JSON cannot encode are written
        with ``str()``."""
        if not self.ok:
            return f"ERROR: {self.error}"
        if isinstance(self.output, str):
            return self.output
        return json.dumps(self.output, default=str, ensure_ascii=False)

    def to_message(self) -> dict[str, str]:
        """The OpenAI chat message that reports this result to the model."""
        return {"role": "tool", "tool_call_id": self.call_id, "content": self.content()}
