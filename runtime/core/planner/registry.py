"""Planners by name. `make_planner(name, **kwargs)` builds a fresh one; an unknown name
raises ValueError listing the valid names."""
from __future__ import annotations

from typing import Callable

from agentrt.runtime.core.planner.baselines import (
    CheapestPlanner,
    FixedKPlanner,
    GreedyPlanner,
    KnapsackPlanner,
    OpenLoopMCPlanner,
    StrongestPlanner,
)
from agentrt.runtime.core.planner.mcpp import MCPPPlanner
from agentrt.runtime.core.planner.state import Planner

PLANNERS: dict[str, Callable[..., Planner]] = {
    "mcpp": MCPPPlanner,
    "cheapest": CheapestPlanner,
    "strongest": StrongestPlanner,
    "fixed-k": FixedKPlanner,
    "greedy": GreedyPlanner,
    "open-loop-mc": OpenLoopMCPlanner,
    "knapsack": KnapsackPlanner,
}

BASELINES: tuple[str, ...] = tuple(name for name in PLANNERS if name != "mcpp")


def make_planner(name: str, **kwargs) -> Planner:
    """A new planner of the named kind, built with `kwargs`."""
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; valid: {sorted(PLANNERS)}")
    return PLANNERS[name](**kwargs)
