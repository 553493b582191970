"""workloads: agent program traces for the simulator and benchmarks.

`ProgramSpec` -> `StepSpec` -> `TurnSpec` (spec.py) describe what a program does in token
counts; `generate` draws look-alikes of published agent workloads (generators.py);
`load_trace` / `dump_trace` read and write users' own traces as JSON lines (trace.py,
format in docs/trace-format.md).
"""

from agentrt.programs.workloads.generators import GENERATORS, generate
from agentrt.programs.workloads.spec import (
    HUMAN, Pause, ProgramSpec, StepSpec, TurnPrompt, TurnSpec,
)
from agentrt.programs.workloads.trace import (
    TraceError,
    TraceIssue,
    dump_trace,
    load_trace,
    parse_trace_lines,
    program_from_dict,
    program_to_dict,
)

__all__ = [
    "GENERATORS",
    "HUMAN",
    "Pause",
    "ProgramSpec",
    "StepSpec",
    "TraceError",
    "TraceIssue",
    "TurnPrompt",
    "TurnSpec",
    "dump_trace",
    "generate",
    "load_trace",
    "parse_trace_lines",
    "program_from_dict",
    "program_to_dict",
]
