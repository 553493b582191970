"""What a finished program reports back to the driver."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentrt.runtime import wire

# Program end states.
SUCCEEDED = "succeeded"
FAILED = "failed"
BUDGET_EXHAUSTED = "budget_exhausted"
DEADLINE_MISSED = "deadline_missed"
CANCELLED = "cancelled"
REJECTED = "rejected"  # admission: the planner judged the program infeasible
STOPPED = "stopped"  # the planner gave the program up while it ran


@wire.register
@dataclass(slots=True)
class ProgramResult:
    program_id: str
    name: str
    tenant: str
    status: str
    arrival: float
    finished_at: float
    error: str | None = None
    failed_step: str | None = None
    outputs: Any = None
    steps_done: list[str] = field(default_factory=list)
    llm_calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    prefilled_tokens: int = 0
    output_tokens: int = 0
    queue_wait_s: float = 0.0
    tool_calls: int = 0
    tool_errors: int = 0
    tool_time_s: float = 0.0
    spent_usd: float = 0.0
    spans: list[dict[str, Any]] = field(default_factory=list)
    steps_cancelled: list[str] = field(default_factory=list)
    """Steps that were running when the deadline (or a failure) stopped the program."""
    success_estimate: float | None = None
    """The planner's estimated success probability at admission (planned programs)."""
    plan_seconds: list[float] = field(default_factory=list)
    """The planner's own latency, per plan call (planned programs)."""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Sampling attempts of planned steps: step, attempt, model, k, passed, workers,
    cached_tokens (per fork), estimate (the planner's, when it chose), seconds (wall
    time of the samples and their verification)."""

    @property
    def completion_time(self) -> float:
        return self.finished_at - self.arrival

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED
