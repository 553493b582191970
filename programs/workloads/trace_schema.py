"""The trace schema: one program line as frozen pydantic models, and the checks that
span several fields (`check_program`).

The models check each field (types, bounds, unknown fields); `check_program` returns
(field path, problem) pairs for what no single field can see: duplicate step ids,
dependencies and spawns naming unknown steps, cycles, fields that only make sense
together. `programs.workloads.trace` turns both into `TraceIssue`s with file and line.
"""
from __future__ import annotations

import json
import math
from typing import Annotated, Any

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field

from agentrt.programs.workloads.spec import HUMAN

Name = Annotated[str, Field(min_length=1)]


class _Frozen(BaseModel):
    # strict: a JSON "5" or 5.0 is not an int, true is not a number; ints are accepted
    # where floats are expected.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)


class TurnModel(_Frozen):
    input_tokens: int = Field(ge=1)
    """Tokens appended to the conversation before this reply (prompt, tool result)."""
    output_tokens: int = Field(ge=1)
    """Tokens the model replies with."""
    tool: Name | None = None
    """Tool the reply calls; null when the reply calls none."""
    tool_duration: float = Field(0.0, ge=0)
    """Seconds the tool runs; must be 0 when `tool` is null."""
    think_s: float = Field(0.0, ge=0)
    """A human turn (tool null, more turns follow): seconds until the person's next
    request. Must be 0 on other turns."""
    summary_tokens: int | None = Field(None, ge=1)
    """Compaction before this turn: the conversation restarts from the shared prefix and
    a summary of this many tokens. Not on a step's first turn."""
    spawns: list[Name] = []
    """Subagent steps this reply starts, each a fork of this conversation; the next turn
    waits for all of them. Needs `tool` (the call that starts them), duration 0."""


class StepModel(_Frozen):
    step_id: Name
    """Unique within the program."""
    deps: list[Name] = []
    """Steps of the same program that must finish before this one starts."""
    prefix_id: Name | None = None
    """Identity of a prefix shared with other steps and programs (system prompt)."""
    prefix_tokens: int = Field(0, ge=0)
    """Length of that prefix; >= 1 when `prefix_id` is set, 0 when it is null."""
    kind: Name = "agent"
    """Step kind, for policies that learn transitions between kinds of steps."""
    turns: list[TurnModel] = Field(min_length=1)


class ProgramModel(_Frozen):
    program_id: Name
    """Unique within the file."""
    arrival: float = Field(0.0, ge=0)
    """Seconds from the start of the replay at which the program arrives."""
    tenant: Name = "default"
    agent: Name = "agent"
    """Agent type (a workload family), for per-type statistics."""
    meta: dict[str, Any] = {}
    """Free-form; carried into `ProgramSpec.meta` unchanged."""
    features: dict[Name, Any] = {}
    """What a fleet logs when the program starts (task kind, repository size, ...):
    categories as non-empty strings, sizes as numbers (checked in `check_program`)."""
    steps: list[StepModel] = Field(min_length=1)


NESTED = {"steps": StepModel, "turns": TurnModel}

def check_program(m: ProgramModel) -> list[tuple[str, str]]:
    """(field path, problem) for what the field constraints cannot see."""
    out: list[tuple[str, str]] = []
    index: dict[str, int] = {}
    for i, s in enumerate(m.steps):
        if s.step_id in index:
            out.append((f"steps[{i}].step_id", f"duplicate step id {s.step_id!r} "
                                               f"(first at steps[{index[s.step_id]}])"))
        index.setdefault(s.step_id, i)
        out += _check_step(s, f"steps[{i}]")
    for i, s in enumerate(m.steps):
        for k, d in enumerate(s.deps):
            if d not in index:
                out.append((f"steps[{i}].deps[{k}]",
                            f"unknown step {d!r}; expected one of: {', '.join(index)}"))
            elif d in s.deps[:k]:
                out.append((f"steps[{i}].deps[{k}]", f"step {d!r} is listed twice"))
    cycle = _find_cycle(m.steps)
    if cycle:
        names = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        out.append((f"steps[{index[cycle[0][0]]}].deps",
                    f"dependency cycle {names} (each step waits for the next)"))
    return _check_features(m) + out + _check_spawns(m, index)


def _check_features(m: ProgramModel) -> list[tuple[str, str]]:
    out = []
    for name, value in m.features.items():
        category = isinstance(value, str) and value
        size = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value)
        if not (category or size):
            out.append((f"features.{name}", "must be a category (a non-empty string) or a "
                        f"size (a number) (got {json.dumps(value)})"))
    return out


def _check_step(s: StepModel, at: str) -> list[tuple[str, str]]:
    out = []
    if s.prefix_id is None and s.prefix_tokens:
        out.append((f"{at}.prefix_tokens", f"must be 0 when prefix_id is null (got "
                    f"{s.prefix_tokens}); name the prefix or count it in the first turn"))
    if s.prefix_id is not None and not s.prefix_tokens:
        out.append((f"{at}.prefix_tokens", "must be >= 1 when prefix_id is set "
                    "(got 0); give the prefix's length or set prefix_id to null"))
    for k, t in enumerate(s.turns):
        out += _check_turn(t, f"{at}.turns[{k}]", first=k == 0, last=k + 1 == len(s.turns))
    return out


def _check_turn(t: TurnModel, at: str, first: bool, last: bool) -> list[tuple[str, str]]:
    out = []
    if t.tool is None and t.tool_duration:
        out.append((f"{at}.tool_duration", f"must be 0 when tool is null "
                    f"(got {t.tool_duration}); name the tool or drop the duration"))
    if t.tool == HUMAN:
        out.append((f"{at}.tool", f"{HUMAN!r} is reserved for think time; for a reply "
                    "a person answers, set tool to null and the gap in think_s"))
    if t.think_s and t.tool is not None:
        out.append((f"{at}.think_s", f"must be 0 when tool is set (got {t.think_s}); "
                    "think time follows a reply that calls no tool"))
    elif t.think_s and last:
        out.append((f"{at}.think_s", f"must be 0 on a step's last turn (got {t.think_s}); "
                    "no request follows it"))
    if first and t.summary_tokens is not None:
        out.append((f"{at}.summary_tokens", "must be null on a step's first turn: there "
                    "is no conversation yet to compact"))
    if t.spawns and t.tool is None:
        out.append((f"{at}.spawns", "a turn that spawns subagents must name the tool "
                    "that starts them (for example \"task\")"))
    if t.spawns and t.tool_duration:
        out.append((f"{at}.tool_duration", f"must be 0 when the turn spawns subagents "
                    f"(got {t.tool_duration}); the wait lasts until they finish"))
    return out


def _check_spawns(m: ProgramModel, index: dict[str, int]) -> list[tuple[str, str]]:
    """Each spawned step exists, is spawned once, is started by nothing else (no deps,
    not waited on) and forks its parent's conversation (no prefix of its own)."""
    out: list[tuple[str, str]] = []
    parent: dict[str, str] = {}  # spawned step -> the step whose turn spawns it
    for i, s in enumerate(m.steps):
        for k, t in enumerate(s.turns):
            for j, child in enumerate(t.spawns):
                at = f"steps[{i}].turns[{k}].spawns[{j}]"
                if child not in index:
                    out.append((at, f"unknown step {child!r}; expected one of: "
                                    f"{', '.join(index)}"))
                elif child in parent:
                    out.append((at, f"step {child!r} is already spawned by step "
                                    f"{parent[child]!r}; a step is spawned once"))
                else:
                    parent[child] = s.step_id
    waited = {d for s in m.steps for d in s.deps}
    for child in parent:
        i = index[child]
        s = m.steps[i]
        if s.deps:
            out.append((f"steps[{i}].deps", f"a spawned step starts when its parent's "
                        f"turn ends; it cannot wait on steps (got {list(s.deps)})"))
        if child in waited:
            out.append((f"steps[{i}].step_id", f"step {child!r} is spawned, so no step may "
                        "list it in deps (the spawning step waits for it)"))
        if s.prefix_id is not None:
            out.append((f"steps[{i}].prefix_id", "must be null on a spawned step: it "
                        "starts as a fork of its parent's conversation"))
    cycle = _spawn_cycle(parent, index)
    if cycle:
        out.append((f"steps[{index[cycle[0]]}].turns", "spawn cycle " + " -> ".join(
            cycle + [cycle[0]]) + " (each step spawns the next)"))
    return out


def _spawn_cycle(parent: dict[str, str], index: dict[str, int]) -> list[str]:
    """Steps that spawn one another in a ring (so none of them ever starts), each
    spawning the next, from the earliest listed; empty when the spawns form trees."""
    for start in sorted(parent, key=index.__getitem__):
        chain, at = [start], parent[start]  # child, its parent, its grandparent, ...
        while at in parent and at not in chain:
            chain.append(at)
            at = parent[at]
        if at in chain:
            ring = chain[chain.index(at):][::-1]
            first = min(range(len(ring)), key=lambda i: index[ring[i]])
            return ring[first:] + ring[:first]
    return []


def _find_cycle(steps: list[StepModel]) -> list[tuple[str, str]]:
    graph = nx.DiGraph()  # edge: step -> a step it waits for
    graph.add_nodes_from(s.step_id for s in steps)
    graph.add_edges_from((s.step_id, d) for s in steps for d in s.deps)
    try:
        return nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return []
