"""JSON-lines program traces: users' own agent traces, validated into `ProgramSpec`s.

One program per line; blank lines and lines starting with `#` are skipped.
docs/trace-format.md is the reference, with a full example line::

    {"program_id": "p1", "arrival": 0.0, "tenant": "default", "agent": "agent", "meta": {},
     "steps": [{"step_id": "solve", "deps": [], "prefix_id": "sys", "prefix_tokens": 1500,
                "kind": "agent", "turns": [{"input_tokens": 3000, "output_tokens": 200,
                                            "tool": "shell", "tool_duration": 0.4}, ...]}]}

Loading checks each line with frozen pydantic models (unknown fields are errors, so
typos are caught), then what one field cannot see: unique step ids, deps naming steps
of the same program, no dependency cycles, tool/duration and prefix id/tokens given
together, unique program ids across the file. Every problem is reported as
`FILE line N: FIELD.PATH: problem (got VALUE)`; up to `max_errors` of them are raised
together in one `TraceError` so a file can be fixed in one pass. Nothing is dropped or
repaired silently: a file either loads whole or raises.

`load_trace` returns programs sorted by (arrival, program_id); `dump_trace` writes them
in the order given, and loading what it wrote gives back equal specs.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from typing import Annotated, Any, Iterable

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec

MAX_ERRORS = 20
HEADER = "# agentrt program trace: one JSON program per line (docs/trace-format.md)"

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
    steps: list[StepModel] = Field(min_length=1)


_NESTED = {"steps": StepModel, "turns": TurnModel}


@dataclass(frozen=True, slots=True)
class TraceIssue:
    """One problem in a trace: where (file, line, field path) and what."""

    source: str
    line: int | None
    path: str
    """Field path such as `steps[1].turns[0].output_tokens`; "" for the whole line."""
    problem: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source} line {self.line}"
        return f"{where}: {self.path}: {self.problem}" if self.path else f"{where}: {self.problem}"


class TraceError(ValueError):
    """A trace that does not load. `issues` holds up to `max_errors` problems in file
    order; `total` counts all of them."""

    def __init__(self, issues: list[TraceIssue], total: int | None = None) -> None:
        self.issues = issues
        self.total = len(issues) if total is None else total
        lines = [str(i) for i in issues]
        if self.total > len(issues):
            lines.append(f"... and {self.total - len(issues)} more")
        if self.total == 1:
            super().__init__(lines[0])
        else:
            super().__init__(f"{self.total} problems in the trace:\n  " + "\n  ".join(lines))

    def __reduce__(self):  # pickles (Ray ships errors between processes)
        return TraceError, (self.issues, self.total)


# -- reading -----------------------------------------------------------------------------
def load_trace(path: str | os.PathLike, *, max_errors: int = MAX_ERRORS) -> list[ProgramSpec]:
    """Programs in a JSON-lines trace file, sorted by (arrival, program_id).
    Raises TraceError (a ValueError) naming each bad line and field."""
    with open(path, encoding="utf-8") as f:
        return parse_trace_lines(f, source=os.fspath(path), max_errors=max_errors)


def parse_trace_lines(lines: Iterable[str], source: str = "<string>", *,
                      max_errors: int = MAX_ERRORS) -> list[ProgramSpec]:
    """Programs in trace lines (numbered from 1, blank and `#` lines included), sorted by
    (arrival, program_id). Reads every line; raises TraceError with the first
    `max_errors` problems if there is any."""
    issues: list[TraceIssue] = []
    total = 0
    programs: list[ProgramSpec] = []
    first_line: dict[str, int] = {}  # program id -> line that defined it
    for lineno, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        spec, found = _parse_line(text, source, lineno)
        if spec is not None:
            if spec.program_id in first_line:
                found = [TraceIssue(source, lineno, "program_id",
                                    f"duplicate program id {spec.program_id!r} "
                                    f"(first on line {first_line[spec.program_id]})")]
            else:
                first_line[spec.program_id] = lineno
                programs.append(spec)
        total += len(found)
        issues.extend(found[:max(0, max_errors - len(issues))])
    if total:
        raise TraceError(issues, total)
    return sorted(programs, key=lambda p: (p.arrival, p.program_id))


def program_from_dict(obj: Any, *, source: str = "<dict>") -> ProgramSpec:
    """One program from its JSON-shaped dict. Raises TraceError listing every problem."""
    spec, issues = _validate(obj, source, None)
    if issues:
        raise TraceError(issues)
    return spec


def _parse_line(text: str, source: str,
                lineno: int) -> tuple[ProgramSpec | None, list[TraceIssue]]:
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        return None, [TraceIssue(source, lineno, "", f"invalid JSON: {e.msg} at column {e.colno}")]
    except _DuplicateKey as e:
        return None, [TraceIssue(source, lineno, "", str(e))]
    return _validate(obj, source, lineno)


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would keep the last of two equal keys and drop the first without a word.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"invalid JSON: key {key!r} appears twice in one object")
        out[key] = value
    return out


def _validate(obj: Any, source: str,
              line: int | None) -> tuple[ProgramSpec | None, list[TraceIssue]]:
    try:
        model = ProgramModel.model_validate(obj)
    except ValidationError as e:
        return None, [TraceIssue(source, line, _path(err["loc"]), _problem(err))
                      for err in e.errors()]
    problems = _check_program(model)
    if problems:
        return None, [TraceIssue(source, line, path, problem) for path, problem in problems]
    return _to_spec(model), []


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem(err: dict) -> str:
    kind, loc = err["type"], err["loc"]
    if kind == "missing":
        return "field required"
    if kind == "model_type":
        return f"expected a JSON object (got {_show(err['input'])})"
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    msg = err["msg"]
    return f"{msg[0].lower()}{msg[1:]} (got {_show(err['input'])})"


def _unknown_field(loc: tuple) -> str:
    model: type[BaseModel] = ProgramModel
    for part in loc[:-1]:
        model = _NESTED.get(part, model) if isinstance(part, str) else model
    fields = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field; {hint}expected one of: {', '.join(fields)}"


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_program(m: ProgramModel) -> list[tuple[str, str]]:
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
        if t.tool is None and t.tool_duration:
            out.append((f"{at}.turns[{k}].tool_duration", f"must be 0 when tool is null "
                        f"(got {t.tool_duration}); name the tool or drop the duration"))
    return out


def _find_cycle(steps: list[StepModel]) -> list[tuple[str, str]]:
    graph = nx.DiGraph()  # edge: step -> a step it waits for
    graph.add_nodes_from(s.step_id for s in steps)
    graph.add_edges_from((s.step_id, d) for s in steps for d in s.deps)
    try:
        return nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return []


def _to_spec(m: ProgramModel) -> ProgramSpec:
    steps = [StepSpec(s.step_id,
                      [TurnSpec(t.input_tokens, t.output_tokens, t.tool, t.tool_duration)
                       for t in s.turns],
                      tuple(s.deps), s.prefix_id, s.prefix_tokens, s.kind)
             for s in m.steps]
    return ProgramSpec(m.program_id, steps, m.arrival, m.tenant, m.agent, dict(m.meta))


# -- writing -----------------------------------------------------------------------------
def program_to_dict(p: ProgramSpec) -> dict[str, Any]:
    """The JSON-shaped dict of one program, every field written out."""
    return {
        "program_id": p.program_id, "arrival": p.arrival, "tenant": p.tenant,
        "agent": p.agent, "meta": dict(p.meta),
        "steps": [{"step_id": s.step_id, "deps": list(s.deps), "prefix_id": s.prefix_id,
                   "prefix_tokens": s.prefix_tokens, "kind": s.kind,
                   "turns": [{"input_tokens": t.input_tokens, "output_tokens": t.output_tokens,
                              "tool": t.tool, "tool_duration": t.tool_duration}
                             for t in s.turns]}
                  for s in p.steps],
    }


def dump_trace(programs: Iterable[ProgramSpec], path: str | os.PathLike, *,
               max_errors: int = MAX_ERRORS) -> None:
    """Write programs, one per line in the order given, after a `#` header line.

    Checks them as `load_trace` would first (line numbers are those of the file to be
    written) and raises TraceError without writing anything if one would not load back.
    """
    source = os.fspath(path)
    lines = [HEADER]
    for p in programs:
        obj = program_to_dict(p)
        try:
            lines.append(json.dumps(obj, ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as e:
            # NaN or a non-JSON value (numpy scalar): name the field if the models can;
            # meta is the one field they do not look inside.
            _, issues = _validate(obj, source, len(lines) + 1)
            raise TraceError(issues or [TraceIssue(source, len(lines) + 1, "meta",
                                                   f"not JSON-serializable: {e}")]) from None
    parse_trace_lines(lines, source, max_errors=max_errors)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
