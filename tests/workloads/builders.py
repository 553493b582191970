"""Builders for the workload tests: programs as JSON-shaped dicts and trace lines."""
from __future__ import annotations

import json
from typing import Any


def make_turn(input_tokens: int = 100, output_tokens: int = 10, **fields: Any) -> dict:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, **fields}


def make_step(step_id: str = "s", turns: list[dict] | None = None, **fields: Any) -> dict:
    return {"step_id": step_id, "turns": turns if turns is not None else [make_turn()], **fields}


def make_program(program_id: str = "p", steps: list[dict] | None = None, **fields: Any) -> dict:
    return {"program_id": program_id, "steps": steps if steps is not None else [make_step()],
            **fields}


def line(obj: Any) -> str:
    return json.dumps(obj)


def trace_lines(*programs: Any) -> list[str]:
    """A comment and a blank line, then one line per program: the first program is on
    line 3."""
    return ["# test trace", "", *(p if isinstance(p, str) else line(p) for p in programs)]
