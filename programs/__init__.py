"""programs: authoring agent programs.

``@tool`` and ``@step`` declare the pieces, ``@program`` wires them: calling steps and
tools inside a ``@program`` function records a ``ProgramGraph`` (lazy ``StepHandle``s, like
``ray.dag``'s ``.bind()`` but with plain calls) instead of running anything.
``run_graph`` runs such a graph with asyncio given a way to run one node; the runtime
supplies the ``StepContext`` that step bodies use.

Depends only on ``toolmgr`` (tool specs and registry).
"""

from programs import errors
from programs.choices import Candidate
from programs.context import ChatReply, StepContext, Usage
from programs.errors import (
    ArgumentSerializationError,
    ChoiceDeclarationError,
    GraphCycleError,
    GraphUsageError,
    ProgramValidationError,
    ToolArgumentsError,
    UndeclaredToolError,
    UnknownToolError,
)
from programs.executor import GraphOutcome, run_graph
from programs.graph import ProgramGraph, ResolvedCall, StepNode
from programs.handle import StepHandle
from programs.program_def import ProgramDef, ProgramOptions, program
from programs.step_def import Step, StepOptions, step
from programs.tool_def import Tool, tool

__all__ = [
    "ArgumentSerializationError",
    "Candidate",
    "ChatReply",
    "ChoiceDeclarationError",
    "GraphCycleError",
    "GraphOutcome",
    "GraphUsageError",
    "ProgramDef",
    "ProgramGraph",
    "ProgramOptions",
    "ProgramValidationError",
    "ResolvedCall",
    "Step",
    "StepContext",
    "StepHandle",
    "StepNode",
    "StepOptions",
    "Tool",
    "ToolArgumentsError",
    "UndeclaredToolError",
    "UnknownToolError",
    "Usage",
    "errors",
    "program",
    "run_graph",
    "step",
    "tool",
]
