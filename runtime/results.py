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
    attempt: int = 1
    """Which attempt of the program this is: 1, then one more per resume that ran it."""
    steps_replayed: list[str] = field(default_factory=list)
    """Steps an earlier attempt journaled: not executed again, their journaled results
    fed their successors (resumed programs)."""
    tool_calls_replayed: int = 0
    """Tool calls answered from the journal instead of running (resumed programs)."""
    from_journal: bool = False
    """The program's outcome was journaled by an earlier attempt and it did not run."""
    journal_error: str | None = None
    """Set when the journal could not record this program's outcome."""

    @property
    def steps_rerun(self) -> list[str]:
        """Steps a resumed attempt executed (attempt > 1): those the earlier attempts
        left unfinished or never reached."""
        if self.attempt <= 1 or self.from_journal:
            return []
        return sorted(set(self.steps_done) - set(self.steps_replayed))

    @property
    def completion_time(self) -> float:
        return self.finished_at - self.arrival

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED
