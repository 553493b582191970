"""toolmgr: tool specs and registry, executors, results and per-tool duration models.

Depends on nothing else in agentrt.
"""

from agentrt.toolmgr.distributions import Distribution, Exponential, Mixture, PointMass
from agentrt.toolmgr.durations import DurationModel, DurationSource, EmpiricalCDF
from agentrt.toolmgr.errors import ToolArgumentsError, UnknownToolError
from agentrt.toolmgr.executors import (
    EXECUTORS,
    InlineExecutor,
    ThreadExecutor,
    ToolExecutor,
    make_executor,
)
from agentrt.toolmgr.manager import ToolManager
from agentrt.toolmgr.registry import RegisteredTool, ToolRegistry
from agentrt.toolmgr.result import ToolResult
from agentrt.toolmgr.spec import ToolSpec

__all__ = [
    "EXECUTORS",
    "Distribution",
    "DurationModel",
    "DurationSource",
    "EmpiricalCDF",
    "Exponential",
    "InlineExecutor",
    "Mixture",
    "PointMass",
    "RegisteredTool",
    "ThreadExecutor",
    "ToolArgumentsError",
    "ToolExecutor",
    "ToolManager",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "UnknownToolError",
    "make_executor",
]
