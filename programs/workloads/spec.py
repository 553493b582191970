"""Program traces: what a simulated (or replayed) agent program does, in token counts.

A trace describes each step of a program as turns. Turn k appends `input_tokens` to
the step's conversation (the first turn's are the initial prompt after any shared
prefix; later turns' are the previous tool's result, or a person's next request, and
new instructions), then the model answers with `output_tokens`. What follows the reply
is the turn's *pause* (`StepSpec.pause_after`), and every turn of a step is played:

    the reply calls a tool      the tool runs `tool_duration` seconds
    it spawns subagents         the steps in `spawns` start, each a fork of this
                                conversation; the next turn waits until all finish
    no tool, more turns follow  a *human turn*: the model answered in text and a person
                                replies after `think_s` seconds (pseudo-tool `HUMAN`)
    no tool, last turn          the step ends

    step context:  [shared prefix][turn1 input][out1][turn2 input = tool1 result][out2]...
                    ^ same blocks for every step with the same prefix_id

A turn with `summary_tokens` set was *compacted*: before its input, the conversation
restarts from the shared prefix and a summary of that many tokens (the agent replaced
its history with a summary), so only the prefix is still cached.

These are plain slotted dataclasses (the simulator walks thousands of them); the
JSON-lines loader in `programs.workloads.trace` validates user files into them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

HUMAN = "human"
"""The pseudo-tool a human turn waits on: drivers report think time under this name,
so the core's retention sees a human gap as a pause with its own (long, heavy-tailed)
duration distribution, apart from every real tool's."""

Feature = str | int | float
"""A program feature's value: a category (str) or a size (number)."""


@dataclass(slots=True)
class TurnSpec:
    input_tokens: int
    output_tokens: int
    tool: str | None = None
    tool_duration: float = 0.0
    think_s: float = 0.0
    """A human turn (no tool, more turns follow): seconds between this reply and the
    person's next request. 0 on every other turn."""
    summary_tokens: int | None = None
    """Set when the context was compacted before this turn: the conversation restarts
    from the shared prefix and a summary of this many tokens, then this turn's input."""
    spawns: tuple[str, ...] = ()
    """Subagents this reply starts (step ids): each begins as a fork of this step's
    conversation; the step's next turn waits until all of them finish."""


@dataclass(frozen=True, slots=True)
class Pause:
    """What follows one reply of a step: a wait named `tool` (a real tool, `HUMAN`, or
    the tool that starts subagents), lasting `seconds` (traced), or, when `spawns` is
    set, until every spawned step has finished."""

    tool: str
    seconds: float
    spawns: tuple[str, ...] = ()

    @property
    def human(self) -> bool:
        return self.tool == HUMAN


@dataclass(frozen=True, slots=True)
class TurnPrompt:
    """One turn's prompt: `cached` tokens already in the conversation (a perfect cache
    holds them) and `new` tokens this turn adds (its input, after a compaction also
    the summary)."""

    cached: int
    new: int

    @property
    def tokens(self) -> int:
        return self.cached + self.new


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

    def pause_after(self, k: int) -> Pause | None:
        """What follows turn k's reply; None when the step ends with it."""
        turn = self.turns[k]
        if turn.tool is not None:
            return Pause(turn.tool, turn.tool_duration, turn.spawns)
        if k + 1 < len(self.turns):
            return Pause(HUMAN, turn.think_s)
        return None

    def prompts(self, opening: int | None = None, prefix: int | None = None
                ) -> list[TurnPrompt]:
        """Each turn's prompt. The conversation opens with `opening` tokens (default: the
        shared prefix; a subagent's fork opens with its parent's conversation) and a
        compaction restarts it from `prefix` tokens (default: the shared prefix)."""
        prefix = self.prefix_tokens if prefix is None else prefix
        context = prefix if opening is None else opening
        out = []
        for turn in self.turns:
            new = turn.input_tokens
            if turn.summary_tokens is not None:
                context, new = prefix, new + turn.summary_tokens
            out.append(TurnPrompt(context, new))
            context += new + turn.output_tokens
        return out

    def context_tokens(self) -> int:
        """Tokens in the conversation after its last reply (opened by its own prefix)."""
        last = self.prompts()[-1]
        return last.tokens + self.turns[-1].output_tokens


@dataclass(slots=True)
class ProgramSpec:
    program_id: str
    steps: list[StepSpec]
    arrival: float = 0.0
    tenant: str = "default"
    agent: str = "agent"
    """Agent type (a workload family), for per-type statistics."""
    meta: dict = field(default_factory=dict)
    features: dict[str, Feature] = field(default_factory=dict)
    """What a fleet logs about the program when it starts (task kind, repository and
    prompt size, ...), for policies that predict its length; empty when unknown."""

    def step(self, step_id: str) -> StepSpec:
        for s in self.steps:
            if s.step_id == step_id:
                return s
        raise KeyError(f"program {self.program_id!r} has no step {step_id!r}")

    @property
    def num_calls(self) -> int:
        return sum(s.num_turns for s in self.steps)

    def spawned(self) -> frozenset[str]:
        """Steps that a turn spawns (subagents): they start when that turn's reply is
        in, not when dependencies finish."""
        return frozenset(sid for s in self.steps for t in s.turns for sid in t.spawns)

    def step_prompts(self) -> dict[str, list[TurnPrompt]]:
        """Every step's turn prompts (`StepSpec.prompts`), a spawned step's opening with
        its parent's conversation at the spawn, in `ordered_steps` order (a spawned step
        right after the step that spawns it)."""
        out: dict[str, list[TurnPrompt]] = {}
        spawned = self.spawned()

        def walk(step: StepSpec, opening: int | None, prefix: int) -> None:
            prompts = out[step.step_id] = step.prompts(opening, prefix)
            for turn, prompt in zip(step.turns, prompts):
                for sid in turn.spawns:
                    walk(self.step(sid), prompt.tokens + turn.output_tokens, prefix)

        for step in self.ordered_steps():
            if step.step_id not in spawned:
                walk(step, None, step.prefix_tokens)
        return out

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
