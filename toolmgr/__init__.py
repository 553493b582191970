"""toolmgr: tool specs and registry, executors, results and per-tool duration models.

Depends on nothing else in agentrt.
"""

from toolmgr.distributions import Distribution, Exponential, Mixture, PointMass
from toolmgr.durations import DurationModel, DurationSource, EmpiricalCDF
from toolmgr.errors import ToolArgumentsError, UnknownToolError
from toolmgr.executors import (
    EXECUTORS,
    InlineExecutor,
    ThreadExecutor,
    ToolExecutor,
    make_executor,
)
from toolmgr.manager import ToolManager
from toolmgr.registry import RegisteredTool, ToolRegistry
from toolmgr.result import ToolResult
from toolmgr.spec import ToolSpec

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
