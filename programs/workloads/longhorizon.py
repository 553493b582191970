"""Long-horizon coding-agent sessions, shaped after published 2026 measurements.

Sources (each figure below names the one it comes from):

- [vLLM-Codex] vLLM blog, analysis of Codex / GPT-5.4 traces on SWE-bench Pro (610
  traces, May 2026): median 33 turns; contexts near 80K tokens by turn 30 and beyond
  180K at the longest; a few hundred to a few thousand new tokens per turn; 131:1
  input-to-output tokens; 94.2% prefix-cache hit rate.
- [vLLM-AgentX] vLLM blog, AgentX traffic (September 2026): median 43 turns per
  session, 142K-token median input, 444-token median output, subagents in 44% of
  sessions.
- [TraceLab] TraceLab (University of Washington, June 2026; about 4,300 Claude Code and
  Codex sessions, 357K LLM rounds, 432K tool calls): shell commands p50 about 0.85 s and
  p99 about 235 s, file reads p50 36 ms; about 1.2 tool calls per round; compaction (a
  drop of 64K tokens or more) in 9.7% of sessions; human think time between a
  session's requests p50 1.4 min, p90 20.6 min, 92% of a session's wall clock.

One program is one session: a main step (the agent's conversation with a person) and,
in about 44% of sessions, subagent steps forked from it [vLLM-AgentX]:

    main:  [system prompt + tools][request + repo context] tool, tool, ..., text answer
           ─ think ─▶ [next request] tool, ..., task ─▶ subagents ─▶ ..., compact ─▶
           [summary] ..., final answer

Every draw is documented where it is made; all randomness comes from the seed. Sizes
that the sources do not give are assumptions, marked as such.

**Context limit.** No call's context passes `compact_at x max_context`: before a turn
that would, the agent compacts (a summarising call, then the conversation restarts from
the shared prefix and the summary), as coding agents do at their window's edge. Nothing
is clipped. `max_context` defaults to Llama-3.1-8B's 131,072 tokens (the simulator's
hardware table, `runtime.engines.simulated.hardware`); the published sessions ran on
models with larger windows (contexts beyond 180K [vLLM-Codex]), so at 128K more sessions
compact than the 9.7% TraceLab saw; `max_context=200_000` gives about that share.

**Features** (`ProgramSpec.features`, with `agent`): what a fleet logs when a session
starts: `task_kind`, `repo_tokens` (repository size) and `prompt_tokens` (the first
request). Each scales the session's expected length (`_LENGTH_FACTORS`; an assumption:
the sources report that length varies with the task, not by how much); together they
explain about half of the variance of log(turns), the rest is noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec

LLAMA_8B_CONTEXT = 131_072  # runtime.engines.simulated.hardware: Llama-3.1-8B

# Agent families [TraceLab: Claude Code and Codex sessions]: share, shared prefix (system
# prompt and tool schemas; an assumption, of the order these agents send), and a length
# factor (Codex sessions median 33 turns [vLLM-Codex], AgentX 43 [vLLM-AgentX]).
_AGENTS = {"claude-code": (0.6, 16_000, 1.12), "codex": (0.4, 9_000, 0.85)}

# Task kinds: share and length factor (assumptions).
_TASKS = {"question": (0.15, 0.35), "bugfix": (0.35, 0.9), "test": (0.15, 0.8),
          "feature": (0.25, 1.4), "refactor": (0.10, 1.7)}

_MEDIAN_TURNS = 30.0  # main-step rounds before features; subagents add the rest
_TURN_NOISE = 0.55  # lognormal sigma of what features do not explain
_REPO_MEDIAN, _REPO_SIGMA, _REPO_ELASTICITY = 300_000, 1.2, 0.25
_PROMPT_MEDIAN, _PROMPT_SIGMA, _PROMPT_ELASTICITY = 600, 1.0, 0.10


@dataclass(frozen=True, slots=True)
class Shape:
    """The knobs of the generator (defaults: the sources above)."""

    max_context: int = LLAMA_8B_CONTEXT
    compact_at: float = 0.9
    """Compact before a turn whose context would pass this share of `max_context`."""
    human_turn_p: float = 0.15
    """Chance that a main-step round ends a request (the model answers a person in
    text); about 4 requests per session (an assumption), which puts think time near
    92% of wall clock [TraceLab]."""
    think_median_s: float = 84.0  # [TraceLab] p50 1.4 min
    think_sigma: float = 2.10  # p90 / p50 = 20.6 / 1.4 = e^(1.2816 sigma) [TraceLab]
    think_cap_s: float = 6 * 3600.0  # (an assumption: a session left longer has ended)
    subagent_p: float = 0.44  # [vLLM-AgentX]
    output_median: int = 444  # [vLLM-AgentX]
    output_sigma: float = 0.5
    input_median: int = 1000  # tool results: a few hundred to a few thousand [vLLM-Codex]
    input_sigma: float = 1.0


def longhorizon(n: int, seed: int = 0, *, shape: Shape | None = None,
                max_context: int | None = None) -> list[ProgramSpec]:
    """`n` long-horizon coding sessions (see the module doc). `max_context` overrides
    `shape.max_context` (the model's window, which compaction keeps every call under)."""
    shape = shape or Shape()
    if max_context is not None:
        shape = replace(shape, max_context=max_context)
    rng = np.random.default_rng(seed)
    return [_session(rng, f"longhorizon-{i:05d}", shape) for i in range(n)]


# -- one session ----------------------------------------------------------------------
def _session(rng: np.random.Generator, program_id: str, shape: Shape) -> ProgramSpec:
    agent = _pick(rng, {k: v[0] for k, v in _AGENTS.items()})
    task = _pick(rng, {k: v[0] for k, v in _TASKS.items()})
    repo = int(_REPO_MEDIAN * math.exp(_REPO_SIGMA * rng.standard_normal()))
    prompt = max(20, int(_PROMPT_MEDIAN * math.exp(_PROMPT_SIGMA * rng.standard_normal())))
    scale = (_AGENTS[agent][2] * _TASKS[task][1] * (repo / _REPO_MEDIAN) ** _REPO_ELASTICITY
             * (prompt / _PROMPT_MEDIAN) ** _PROMPT_ELASTICITY)
    rounds = int(np.clip(round(_MEDIAN_TURNS * scale * math.exp(
        _TURN_NOISE * rng.standard_normal())), 3, 400))
    prefix = _AGENTS[agent][1]
    builder = _Builder(rng, shape, program_id, prefix)
    # The first request: the person's prompt and the repository context the agent
    # gathers with it (CLAUDE.md / AGENTS.md, a file listing): 0.5-2% of the repository
    # (an assumption), at most 20K tokens.
    first = prompt + int(min(20_000, repo * rng.uniform(0.005, 0.02)))
    main = builder.step("main", rounds, first, prefix_id=f"{agent}-system",
                        spawn_p=shape.subagent_p)
    features = {"task_kind": task, "repo_tokens": repo, "prompt_tokens": prompt}
    return ProgramSpec(program_id, [main, *builder.subagents], agent=agent,
                       features=features, meta={"tool_calls": builder.tool_calls})


class _Builder:
    """Turns of one session's steps, keeping each step's context under the limit."""

    def __init__(self, rng: np.random.Generator, shape: Shape, program_id: str,
                 prefix: int) -> None:
        self.rng, self.shape, self.prefix = rng, shape, prefix
        self.limit = int(shape.compact_at * shape.max_context)
        self.subagents: list[StepSpec] = []
        self.tool_calls = 0

    def step(self, step_id: str, rounds: int, first: int, prefix_id: str | None = None,
             spawn_p: float = 0.0, opening: int | None = None) -> StepSpec:
        """A step of `rounds` rounds (plus a compaction call wherever one is needed),
        opening with the shared prefix, or with `opening` tokens (a fork)."""
        rng, shape = self.rng, self.shape
        spawn_at = self._spawn_points(rounds) if rng.random() < spawn_p else set()
        context = self.prefix if opening is None else opening
        turns: list[TurnSpec] = []
        for k in range(rounds):
            last = k == rounds - 1
            new = first if k == 0 else self._input(turns[-1])
            out = self._output()
            summary = None
            if k > 0 and context + new + out > self.limit:
                summary, new = self._compact(turns, context, new)
                context = self.prefix + summary
            if k in spawn_at and not last:
                turn = TurnSpec(new, out, "task", 0.0, spawns=self._spawn(
                    context + new + out))
            elif last or rng.random() < shape.human_turn_p:
                turn = TurnSpec(new, out, None, 0.0, 0.0 if last else self._think())
            else:
                turn = TurnSpec(new, out, *self._tools())
            turn.summary_tokens = summary
            turns.append(turn)
            context += new + out
        return StepSpec(step_id, turns, (), prefix_id,
                        self.prefix if prefix_id is not None else 0, "agent")

    def _compact(self, turns: list[TurnSpec], context: int, pending: int) -> tuple[int, int]:
        """Append the compaction call: over the full conversation, it reads the pending
        input (a tool's result or a request) and an instruction (200 tokens), and
        replies with a summary (median 3,000 tokens, at most 5% of the window: an
        assumption). The pending input is cut to what fits the window (coding agents
        truncate long tool output). Returns (summary tokens, the next turn's input: a
        short continuation after the summary)."""
        rng, window = self.rng, self.shape.max_context
        summary = int(np.clip(3000 * math.exp(0.5 * rng.standard_normal()), 500,
                              max(500, window // 20)))
        read = max(1, min(pending, window - context - 200 - summary))
        turns.append(TurnSpec(read + 200, summary, "compact", 0.0))
        return summary, max(20, int(200 * math.exp(0.5 * rng.standard_normal())))

    # -- draws ----------------------------------------------------------------------
    def _input(self, previous: TurnSpec) -> int:
        rng, shape = self.rng, self.shape
        if previous.tool is None:  # a person's next request (an assumption: ~200 tokens)
            return max(10, int(200 * math.exp(0.8 * rng.standard_normal())))
        if previous.spawns:  # the subagents' reports
            return max(100, int(1500 * math.exp(0.5 * rng.standard_normal())))
        return int(np.clip(shape.input_median * math.exp(
            shape.input_sigma * rng.standard_normal()), 30, 30_000))

    def _output(self) -> int:
        shape = self.shape
        return int(np.clip(shape.output_median * math.exp(
            shape.output_sigma * self.rng.standard_normal()), 8, 8_000))

    def _think(self) -> float:
        shape = self.shape
        return float(min(shape.think_cap_s, shape.think_median_s * math.exp(
            shape.think_sigma * self.rng.standard_normal())))

    def _tools(self) -> tuple[str, float]:
        """One round's tool calls: 1 (65%), 2 (30%) or 3 (5%), 1.4 per tool-calling
        round, so about 1.2 per round with text replies counted [TraceLab]; they run one
        after another, and the turn names the longest."""
        rng = self.rng
        u = rng.random()
        count = 1 if u < 0.65 else 2 if u < 0.95 else 3
        calls = [_tool(rng) for _ in range(count)]
        self.tool_calls += count
        name = max(calls, key=lambda c: c[1])[0]
        return name, float(sum(d for _, d in calls))

    def _spawn_points(self, rounds: int) -> set[int]:
        """Rounds that start subagents: one, plus Poisson(0.5) more (an assumption),
        among the rounds after the first and before the last."""
        inner = np.arange(1, rounds - 1)
        count = min(len(inner), 1 + int(self.rng.poisson(0.5)))
        return {int(k) for k in self.rng.choice(inner, size=count, replace=False)}

    def _spawn(self, fork: int) -> tuple[str, ...]:
        """1 (70%), 2 (20%) or 3 (10%) subagents, each about 8 rounds (an assumption),
        forked from the parent's conversation of `fork` tokens."""
        u = self.rng.random()
        count = 1 if u < 0.7 else 2 if u < 0.9 else 3
        ids = []
        for _ in range(count):
            sid = f"sub{len(self.subagents)}"
            rounds = int(np.clip(round(8 * math.exp(0.6 * self.rng.standard_normal())), 2, 40))
            task = max(50, int(300 * math.exp(0.5 * self.rng.standard_normal())))
            self.subagents.append(self.step(sid, rounds, task, opening=fork))
            ids.append(sid)
        return tuple(ids)


def _tool(rng: np.random.Generator) -> tuple[str, float]:
    """One tool call [TraceLab]: shell (p50 0.85 s, p99 235 s: lognormal sigma
    ln(235 / 0.85) / 2.326 = 2.42, capped at 30 min), file reads (p50 36 ms), edits and
    searches (assumptions: 50 ms and 250 ms medians)."""
    u = rng.random()
    if u < 0.35:
        return "shell", float(min(1800.0, 0.85 * math.exp(2.42 * rng.standard_normal())))
    if u < 0.70:
        return "read", float(0.036 * math.exp(0.8 * rng.standard_normal()))
    if u < 0.85:
        return "edit", float(0.05 * math.exp(0.6 * rng.standard_normal()))
    return "search", float(0.25 * math.exp(1.0 * rng.standard_normal()))


def _pick(rng: np.random.Generator, shares: dict[str, float]) -> str:
    names = list(shares)
    return names[int(rng.choice(len(names), p=np.array(list(shares.values()))))]
