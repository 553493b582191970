"""Budget- and deadline-aware planning of model choice and parallel samples.

`PlanningProblem` (model.py) holds a program's subtasks, model cards, options and online
estimates (estimates.py); an executor keeps a `ProgramState` (state.py) and asks a
`Planner` for a `Plan` whenever subtasks are ready (executor.py runs one program on a
virtual clock through a budget ledger). `MCPPPlanner` (mcpp.py) scores
candidate plans by vectorised rollouts on common random numbers (rollout.py); the
baselines are in baselines.py; `make_planner` picks one by name (registry.py).
"""

from agentrt.runtime.core.planner.baselines import (
    CheapestPlanner,
    FixedKPlanner,
    GreedyPlanner,
    KnapsackPlanner,
    OpenLoopMCPlanner,
    StrongestPlanner,
)
from agentrt.runtime.core.planner.executor import Executor, ProgramOutcome, World
from agentrt.runtime.core.planner.estimates import LengthEstimate, LengthEstimates, SuccessEstimates
from agentrt.runtime.core.planner.mcpp import MCPPConfig, MCPPPlanner
from agentrt.runtime.core.planner.model import (
    KS,
    LatencyModel,
    ModelCard,
    Option,
    OptionStats,
    PerfLatency,
    PlanningProblem,
    Prior,
    SubtaskSpec,
    TableLatency,
)
from agentrt.runtime.core.planner.registry import BASELINES, PLANNERS, make_planner
from agentrt.runtime.core.planner.state import Plan, Planner, ProgramState, Running

__all__ = [
    "BASELINES",
    "KS",
    "CheapestPlanner",
    "Executor",
    "FixedKPlanner",
    "GreedyPlanner",
    "KnapsackPlanner",
    "LatencyModel",
    "LengthEstimate",
    "LengthEstimates",
    "MCPPConfig",
    "MCPPPlanner",
    "ModelCard",
    "OpenLoopMCPlanner",
    "Option",
    "OptionStats",
    "PLANNERS",
    "PerfLatency",
    "Plan",
    "Planner",
    "PlanningProblem",
    "Prior",
    "ProgramOutcome",
    "ProgramState",
    "Running",
    "StrongestPlanner",
    "SubtaskSpec",
    "SuccessEstimates",
    "TableLatency",
    "World",
    "make_planner",
]
