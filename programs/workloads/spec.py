"""Program traces: what a simulated (or replayed) agent program does, in token counts.

A trace describes each step of a program as turns. Turn k appends `input_tokens` to
the step's conversation (the first turn's are the initial prompt after any shared
prefix; later turns' are the previous tool's result and new instructions), then the
model answers with `output_tokens`; when `tool` is set the reply is a call to that
tool, which takes `tool_duration` seconds before the next turn.

    step context:  [shared prefix][turn1 input][out1][turn2 input = tool1 result][out2]...
                    ^ same blocks for every step with the same prefix_id

These are plain slotted dataclasses (the simulator walks thousands of them); the
JSON-lines loader in `programs.workloads.trace` validates user files into them.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TurnSpec:
    input_tokens: int
    output_tokens: int
    tool: str | None = None
    tool_duration: float = 0.0


@dataclass(slots=True)
class StepSpec:
    step_id: str
    turns: list[TurnSpec]
    deps: tuple[str, ...] = ()
    prefix_id: str | None = None
    """Identity of a prefix shared with other steps (system prompt, repository map)."""
    prefix_tokens: int = 0
    kind: str = "agent"
    """Step kind, for policies that learn transitions between kinds of steps."""

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    def context_tokens(self) -> int:
        """Tokens in the conversation after its last reply."""
        return self.prefix_tokens + sum(t.input_tokens + t.output_tokens for t in self.turns)


@dataclass(slots=True)
class ProgramSpec:
    program_id: str
    steps: list[StepSpec]
    arrival: float = 0.0
    tenant: str = "default"
    agent: str = "agent"
    """Agent type (a workload family), for per-type statistics."""
    meta: dict = field(default_factory=dict)

    def step(self, step_id: str) -> StepSpec:
        for s in self.steps:
            if s.step_id == step_id:
                return s
        raise KeyError(f"program {self.program_id!r} has no step {step_id!r}")

    @property
    def num_calls(self) -> int:
        return sum(s.num_turns for s in self.steps)

    def ordered_steps(self) -> list[StepSpec]:
        """The steps with each one after its dependencies, otherwise in listed order
        (the earliest-listed step whose dependencies are placed comes next). Drivers
        start steps that become ready together in this order. Raises ValueError on a
        dependency cycle or an unknown dependency."""
        placed: dict[str, StepSpec] = {}
        left = list(self.steps)
        while left:
            ready = next((s for s in left if all(d in placed for d in s.deps)), None)
            if ready is None:
                raise ValueError(f"program {self.program_id!r}: steps "
                                 f"{[s.step_id for s in left]} wait on unknown steps or "
                                 "on each other (a cycle)")
            placed[ready.step_id] = ready
            left.remove(ready)
        return list(placed.values())
