"""programs: authoring agent programs.

``@tool`` and ``@step`` declare the pieces, ``@program`` wires them: calling steps and
tools inside a ``@program`` function records a ``ProgramGraph`` (lazy ``StepHandle``s, like
``ray.dag``'s ``.bind()`` but with plain calls) instead of running anything.
``run_graph`` runs such a graph with asyncio given a way to run one node; the runtime
supplies the ``StepContext`` that step bodies use.

Depends only on ``toolmgr`` (tool specs and registry).
"""

from agentrt.programs import errors
from agentrt.programs.choices import Candidate
from agentrt.programs.context import ChatReply, StepContext, Usage
from agentrt.programs.errors import (
    ArgumentSerializationError,
    ChoiceDeclarationError,
    GraphCycleError,
    GraphUsageError,
    ProgramValidationError,
    ToolArgumentsError,
    UndeclaredToolError,
    UnknownToolError,
)
from agentrt.programs.executor import GraphOutcome, run_graph
from agentrt.programs.graph import ProgramGraph, ResolvedCall, StepNode
from agentrt.programs.handle import StepHandle
from agentrt.programs.program_def import ProgramDef, ProgramOptions, program
from agentrt.programs.step_def import Step, StepOptions, step
from agentrt.programs.tool_def import Tool, tool

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
