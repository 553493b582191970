"""Budget- and deadline-aware planning of model choice and parallel samples.

`PlanningProblem` (model.py) holds a program's subtasks, model cards, options and online
estimates (estimates.py); the runtime's planner session (`runtime.runner.portfolio`)
keeps a `ProgramState` (state.py) and asks a `Planner` for a `Plan` whenever subtasks
are ready, on Ray and in the simulator alike; `reserve_samples` (reserve.py) holds each
sample's worst case in the budget ledger before it runs. `MCPPPlanner` (mcpp.py) scores
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
from agentrt.runtime.core.planner.reserve import RESERVE_MARGIN_USD, reserve_samples
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
    "RESERVE_MARGIN_USD",
    "RESERVE_MARGIN_USD",
    "PerfLatency",
    "Plan",
    "Planner",
    "PlanningProblem",
    "Prior",
    "ProgramState",
    "Running",
    "StrongestPlanner",
    "SubtaskSpec",
    "SuccessEstimates",
    "TableLatency",
    "make_planner",
    "reserve_samples",
    "reserve_samples",
]
