"""Builders for planner tests: toy model cards, problems and program states."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from agentrt.runtime.core.budget import Price
from agentrt.runtime.core.planner import (
    ModelCard,
    PlanningProblem,
    Prior,
    ProgramState,
    SubtaskSpec,
    TableLatency,
)

# name -> (USD per M input, USD per M output, seconds per output token)
TOY_MODELS = {
    "cheap": (1.0, 2.0, 0.010),
    "strong": (20.0, 40.0, 0.025),
}


def make_cards(models: dict[str, tuple[float, float, float]] = TOY_MODELS) -> list[ModelCard]:
    """Cards with a 0.1 s prefill and a constant time per output token."""
    return [ModelCard(name, Price(pin, pout), TableLatency(0.1, 0.0, tpot))
            for name, (pin, pout, tpot) in models.items()]


def make_problem(deps: dict[str, Sequence[str]] | None = None, *,
                 p: dict[str, float] | None = None, strength: float = 50.0,
                 length: float = 200.0, sigma: float = 0.1, prompt: int = 1000,
                 max_tokens: int = 400, cards: list[ModelCard] | None = None,
                 ks: Sequence[int] = (1, 2, 4, 8)) -> PlanningProblem:
    """A problem over `deps` (subtask -> its dependencies; default one subtask "a") with
    the same prior for every subtask: success p[model] worth `strength` observations and
    a tight length distribution around `length` tokens."""
    deps = deps or {"a": ()}
    cards = cards or make_cards()
    p = p or {"cheap": 0.5, "strong": 0.9}
    specs = [SubtaskSpec(sid, tuple(d), prompt, max_tokens) for sid, d in deps.items()]
    priors = {(sid, c.name): Prior(p[c.name], strength, length, sigma, 20.0)
              for sid in deps for c in cards}
    return PlanningProblem(specs, cards, priors, ks)


def make_state(problem: PlanningProblem, *, budget: float, deadline: float) -> ProgramState:
    return ProgramState(problem, budget, deadline)


def call_cost(problem: PlanningProblem, model: str, tokens: float = 200.0) -> float:
    """USD of one call of `model` on subtask 0 with `tokens` of output."""
    m = problem.model_index[model]
    return float(problem.prompt[0] * problem.price_in[m] + tokens * problem.price_out[m])


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
