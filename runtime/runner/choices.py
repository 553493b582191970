"""From a program graph's declared choices to the planner's problem.

Steps that declare `candidates` (programs.choices) are the planner's subtasks; a planned
step depends on the nearest planned steps upstream of it (steps without candidates and
tool nodes in between are looked through: they cost the ledger what they cost, but the
planner does not choose for them). Each candidate model becomes a `ModelCard`:

    price     RuntimeConfig.prices[model]                   (USD per million tokens)
    latency   the model of the workers that run its calls: the PerfModel of a GPU
              pool, the latency table of a hosted-API pool (scaled by time_scale: the
              runtime's deadline is in wall seconds), plus a fixed overhead per call

A model is usable when it has a price and is served: a pool serves it, or it is a
stand-in (`stand_ins`: a name another pool's model answers for, priced and planned as
itself). `check_declared_models` raises before anything runs otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from agentrt.programs.errors import ChoiceDeclarationError
from agentrt.programs.graph import ProgramGraph, StepNode
from agentrt.runtime.core.budget import Price
from agentrt.runtime.core.planner import (
    ModelCard, PerfLatency, PlanningProblem, Prior, SubtaskSpec, TableLatency,
)
from agentrt.runtime.core.planner.estimates import logit_normal_beta
from agentrt.runtime.engines.simulated.perf_model import PerfModel

P_MAX = 0.999
"""Beta priors need p < 1: a declared p of 1 is read as this."""


@dataclass(frozen=True, slots=True)
class PlanningSettings:
    """What a program runner needs to plan: plain values, built from RuntimeConfig."""

    planner: str = "mcpp"
    min_success: float = 0.05
    """Admission rejects a program whose estimated success probability is below this."""
    prices: Mapping[str, Price] = field(default_factory=dict)
    served_model: str = "llama-3.1-8b"
    stand_ins: Mapping[str, str] = field(default_factory=dict)
    gpu: str = "h100"
    tp: int = 1
    pools: tuple[Mapping, ...] = ()
    """Every worker pool (`WorkerPool` fields as plain values); empty: one GPU pool of
    `served_model` on `gpu` with `tp`."""
    time_scale: float = 1.0
    seed: int = 0
    call_overhead_s: float = 0.02
    """Wall seconds one call spends outside the engine (Ray round trips, verifier)."""
    rollouts: int | None = None
    """MCPP's (and open-loop MC's) rollouts per candidate; None: the planner's default."""

    def make_planner(self):
        """A fresh planner of the configured kind."""
        from agentrt.runtime.core.planner import MCPPConfig, make_planner

        if self.rollouts is not None and self.planner in ("mcpp", "open-loop-mc"):
            return make_planner(self.planner, config=MCPPConfig(rollouts=self.rollouts))
        return make_planner(self.planner)

    @property
    def served(self) -> tuple[str, ...]:
        """Every model name a chat request may carry."""
        pools = tuple(p["model"] for p in self.pools) or (self.served_model,)
        return (*pools, *sorted(self.stand_ins))

    def latency_of(self, model: str):
        """The unscaled latency model of the pool that serves `model` (a stand-in's
        served model)."""
        served = self.stand_ins.get(model, model)
        for pool in self.pools or ({"model": self.served_model, "engine": "simulated",
                                    "gpu": self.gpu, "tp": self.tp},):
            if pool["model"] != served:
                continue
            if pool.get("engine") == "latency":
                return TableLatency(pool["ttft_s"], pool["prompt_token_s"], pool["tpot_s"])
            return PerfLatency(PerfModel(pool["model"], pool.get("gpu", self.gpu),
                                         pool.get("tp", self.tp)))
        raise ValueError(f"model {model!r} is not served; served: {list(self.served)}")

    def to_plain(self) -> dict:
        """Plain values for an actor's constructor (no pickled objects of ours)."""
        return {"planner": self.planner, "min_success": self.min_success,
                "prices": {m: (p.input_per_m, p.output_per_m) for m, p in self.prices.items()},
                "served_model": self.served_model, "stand_ins": dict(self.stand_ins),
                "gpu": self.gpu, "tp": self.tp, "pools": [dict(p) for p in self.pools],
                "time_scale": self.time_scale,
                "seed": self.seed, "call_overhead_s": self.call_overhead_s,
                "rollouts": self.rollouts}

    @classmethod
    def from_plain(cls, values: dict) -> PlanningSettings:
        prices = {m: Price(*p) for m, p in values["prices"].items()}
        return cls(**{**values, "prices": prices,
                      "pools": tuple(values.get("pools", ()))})


@dataclass(frozen=True, slots=True)
class ScaledLatency:
    """A latency model stretched by the runtime's time scale (wall s per GPU s), plus
    a fixed overhead per call."""

    inner: PerfLatency
    scale: float
    overhead_s: float = 0.0

    def prefill_s(self, prompt_tokens: int) -> float:
        return self.inner.prefill_s(prompt_tokens) * self.scale + self.overhead_s

    def tpot_s(self, context_tokens: int) -> float:
        return self.inner.tpot_s(context_tokens) * self.scale


def planned_steps(graph: ProgramGraph) -> list[StepNode]:
    """Steps whose model and samples the planner chooses, in insertion order."""
    return [n for n in graph.nodes
            if n.kind == "step" and getattr(getattr(n.target, "options", None), "planned",
                                            False)]


def check_declared_models(graph: ProgramGraph, settings: PlanningSettings) -> None:
    """Raise `ChoiceDeclarationError` for a candidate model without a price or not
    served by the runtime, naming the step and the fix."""
    for node in planned_steps(graph):
        for c in node.target.options.candidates:
            if c.model not in settings.prices:
                raise ChoiceDeclarationError(
                    f"step {node.node_id!r}: candidate model {c.model!r} has no price; "
                    f"priced: {sorted(settings.prices)} (add it to RuntimeConfig.prices)")
            if c.model not in settings.served:
                raise ChoiceDeclarationError(
                    f"step {node.node_id!r}: candidate model {c.model!r} is not served; "
                    f"served: {list(settings.served)} (set RuntimeConfig.model, or map it "
                    f"to a served model with RuntimeConfig.stand_ins={{{c.model!r}: "
                    f"{settings.served_model!r}}})")


def model_cards(graph: ProgramGraph, settings: PlanningSettings) -> list[ModelCard]:
    """One card per candidate model, in first-declared order."""
    names = dict.fromkeys(c.model for n in planned_steps(graph)
                          for c in n.target.options.candidates)
    return [ModelCard(m, settings.prices[m],
                      ScaledLatency(settings.latency_of(m), settings.time_scale,
                                    settings.call_overhead_s)) for m in names]


def planning_problem(graph: ProgramGraph, settings: PlanningSettings) -> PlanningProblem:
    """The planner's view of the program: its planned steps, their priors and the
    models' cards. A model a step does not list gets a prior of p near 0 for that step
    (a planner that still picks it is overruled by the portfolio session)."""
    check_declared_models(graph, settings)
    cards = model_cards(graph, settings)
    nodes = planned_steps(graph)
    planned = {n.node_id for n in nodes}
    specs, priors = [], {}
    for node in nodes:
        opts = node.target.options
        deps = _planned_ancestors(graph, node.node_id, planned)
        specs.append(SubtaskSpec(node.node_id, deps, opts.prompt_tokens, node.max_tokens
                                 or opts.max_tokens, opts.max_samples))
        declared = {c.model: c for c in opts.candidates}
        for card in cards:
            priors[node.node_id, card.name] = _prior(declared.get(card.name))
    return PlanningProblem(specs, cards, priors)


def _prior(candidate) -> Prior:
    if candidate is None:  # not a candidate of this step: never worth choosing
        return Prior(p=1e-6, strength=1e6, len_median=1.0)
    p, strength = min(candidate.p, P_MAX), candidate.strength
    if candidate.p_uncertainty is not None:
        p, strength = logit_normal_beta(p, candidate.p_uncertainty)
    return Prior(p=p, strength=strength, len_median=float(candidate.output_tokens),
                 len_sigma=candidate.output_sigma, len_weight=candidate.length_strength,
                 len_median_sigma=candidate.output_uncertainty)


def _planned_ancestors(graph: ProgramGraph, node_id: str,
                       planned: set[str]) -> tuple[str, ...]:
    """The nearest planned steps upstream of `node_id`, in insertion order."""
    found: dict[str, None] = {}
    stack = list(graph.deps(node_id))
    seen: set[str] = set()
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if dep in planned:
            found[dep] = None
        else:
            stack.extend(graph.deps(dep))
    order = {n.node_id: i for i, n in enumerate(graph.nodes)}
    return tuple(sorted(found, key=order.__getitem__))


def check_priced(program, graph: ProgramGraph, config) -> None:
    """A program with a USD budget must price every model its steps call: raise
    `ChoiceDeclarationError` naming the model and the fix (an unpriced model would
    spend nothing, so the budget would silently not hold)."""
    if program.options.budget_usd is None:
        return
    served = config.served_models()[0]
    models = {n.model or served for n in graph.nodes if n.kind == "step"}
    models |= {c.model for n in planned_steps(graph) for c in n.target.options.candidates}
    for model in sorted(models):
        if model not in config.prices:
            raise ChoiceDeclarationError(
                f"program {program.name!r} has budget_usd={program.options.budget_usd} but "
                f"model {model!r} has no price, so its calls would cost nothing; add it to "
                f"RuntimeConfig.prices (priced: {sorted(config.prices)})")
