"""What the journal holds, as plain records: the key of a tool call, a journaled tool
call, a journaled program."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, order=True)
class ToolKey:
    """The idempotency key of one tool call: the program, the step (a tool node's own
    node id for a tool node), the step's turn when the call was made (LLM calls made so
    far by the step) and the call's id (the model's tool-call id, or one the step
    context numbers). A re-executed deterministic step makes the same calls under the
    same keys."""

    program_id: str
    step_id: str
    turn: int
    call_id: str

    def __str__(self) -> str:
        return f"{self.program_id}/{self.step_id}#turn{self.turn}/{self.call_id}"


@dataclass(frozen=True, slots=True)
class ToolRecord:
    """A journaled tool call: `done` with its packed result, or only started (the
    in-flight marker a side-effecting call writes before it runs)."""

    key: ToolKey
    tool: str
    digest: str
    """`arguments_digest` of the call's tool and arguments."""
    done: bool
    result: bytes | None = None


@dataclass(frozen=True, slots=True)
class ProgramRecord:
    """A journaled program: its inputs, its first attempt's trace, how many attempts
    started, and its outcome once it has a final one."""

    program_id: str
    name: str
    inputs: bytes
    first_trace_id: str | None
    first_span_id: str | None
    attempts: int
    status: str | None = None
    """The last attempt's status; None while no attempt ended."""
    final: bool = False
    """Whether `status` is the program's outcome (resume does not run it again); an
    attempt that ended on a call in doubt is not final."""
    outcome: bytes | None = None
    """The ProgramResult of the last attempt that ended (runtime.wire bytes)."""


def arguments_digest(tool: str, arguments: dict[str, Any] | str) -> str:
    """A fingerprint of a call's tool and arguments (JSON text or a dict): equal for
    the same call whatever the key order or spacing of its JSON."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass  # not JSON: the text itself is the fingerprint's input
    text = json.dumps([tool, arguments], sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
