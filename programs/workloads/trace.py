"""JSON-lines program traces: users' own agent traces, validated into `ProgramSpec`s.

One program per line; blank lines and lines starting with `#` are skipped.
docs/trace-format.md is the reference, with a full example line::

    {"program_id": "p1", "arrival": 0.0, "tenant": "default", "agent": "agent", "meta": {},
     "features": {"task_kind": "bugfix", "repo_tokens": 120000},
     "steps": [{"step_id": "solve", "deps": [], "prefix_id": "sys", "prefix_tokens": 1500,
                "kind": "agent", "turns": [{"input_tokens": 3000, "output_tokens": 200,
                                            "tool": "shell", "tool_duration": 0.4}, ...]}]}

Loading checks each line with frozen pydantic models (unknown fields are errors, so
typos are caught), then what one field cannot see: unique step ids, deps naming steps
of the same program, no dependency cycles, tool/duration and prefix id/tokens given
together, think time only on human turns, compaction only after a first turn,
subagents (`spawns`) naming steps that nothing else starts, unique program ids across
the file. Every problem is reported as
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
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec
from agentrt.programs.workloads.trace_schema import (
    NESTED, ProgramModel, check_program,
)

MAX_ERRORS = 20
HEADER = "# agentrt program trace: one JSON program per line (docs/trace-format.md)"


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
    problems = check_program(model)
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
        model = NESTED.get(part, model) if isinstance(part, str) else model
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


def _to_spec(m: ProgramModel) -> ProgramSpec:
    steps = [StepSpec(s.step_id,
                      [TurnSpec(t.input_tokens, t.output_tokens, t.tool, t.tool_duration,
                                t.think_s, t.summary_tokens, tuple(t.spawns))
                       for t in s.turns],
                      tuple(s.deps), s.prefix_id, s.prefix_tokens, s.kind)
             for s in m.steps]
    return ProgramSpec(m.program_id, steps, m.arrival, m.tenant, m.agent, dict(m.meta),
                       dict(m.features))


# -- writing -----------------------------------------------------------------------------
def program_to_dict(p: ProgramSpec) -> dict[str, Any]:
    """The JSON-shaped dict of one program: every field written out, except `features`
    and the turn fields of human turns, compaction and subagents, which are written
    only where set (so traces without them stay as they were)."""
    out: dict[str, Any] = {
        "program_id": p.program_id, "arrival": p.arrival, "tenant": p.tenant,
        "agent": p.agent, "meta": dict(p.meta)}
    if p.features:
        out["features"] = dict(p.features)
    out["steps"] = [{"step_id": s.step_id, "deps": list(s.deps), "prefix_id": s.prefix_id,
                     "prefix_tokens": s.prefix_tokens, "kind": s.kind,
                     "turns": [_turn_to_dict(t) for t in s.turns]}
                    for s in p.steps]
    return out


def _turn_to_dict(t: TurnSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"input_tokens": t.input_tokens, "output_tokens": t.output_tokens,
                           "tool": t.tool, "tool_duration": t.tool_duration}
    if t.think_s:
        out["think_s"] = t.think_s
    if t.summary_tokens is not None:
        out["summary_tokens"] = t.summary_tokens
    if t.spawns:
        out["spawns"] = list(t.spawns)
    return out


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
