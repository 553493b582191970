"""toolmgr: tool specs and registry, executors (thread, subprocess sandbox, Ray task,
inline), per-program resource pools, results and per-tool duration models.

Depends on nothing else in agentrt. See docs/tools.md.
"""

from agentrt.toolmgr.distributions import Distribution, Exponential, Mixture, PointMass
from agentrt.toolmgr.durations import DurationModel, DurationSource, EmpiricalCDF
from agentrt.toolmgr.errors import ToolArgumentsError, UnknownToolError
from agentrt.toolmgr.executor_base import CallOptions, ToolExecutor
from agentrt.toolmgr.executor_options import RayTaskOptions, SandboxLimits
from agentrt.toolmgr.executors import EXECUTORS, InlineExecutor, ThreadExecutor, make_executor
from agentrt.toolmgr.function_ref import SandboxTargetError
from agentrt.toolmgr.manager import ProgramClose, ToolManager
from agentrt.toolmgr.ray_executor import RayExecutor
from agentrt.toolmgr.registry import RegisteredTool, ToolRegistry
from agentrt.toolmgr.resource_pools import (
    PortPool,
    PrepareContext,
    ResourceError,
    ResourcePool,
    SandboxPool,
    SweepReport,
)
from agentrt.toolmgr.result import SandboxReport, ToolResult, ToolTimings
from agentrt.toolmgr.settings import ToolManagerSettings
from agentrt.toolmgr.spec import ToolSpec
from agentrt.toolmgr.subprocess_executor import SubprocessExecutor
from agentrt.toolmgr.workspaces import WorkspacePool

__all__ = [
    "EXECUTORS",
    "CallOptions",
    "Distribution",
    "DurationModel",
    "DurationSource",
    "EmpiricalCDF",
    "Exponential",
    "InlineExecutor",
    "Mixture",
    "PointMass",
    "PortPool",
    "PrepareContext",
    "ProgramClose",
    "RayExecutor",
    "RayTaskOptions",
    "RegisteredTool",
    "ResourceError",
    "ResourcePool",
    "SandboxLimits",
    "SandboxPool",
    "SandboxReport",
    "SandboxTargetError",
    "SubprocessExecutor",
    "SweepReport",
    "ThreadExecutor",
    "ToolArgumentsError",
    "ToolExecutor",
    "ToolManager",
    "ToolManagerSettings",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "ToolTimings",
    "UnknownToolError",
    "WorkspacePool",
    "make_executor",
]
