"""Builders for the planner's runtime glue: planned programs, settings and a fake backend
that answers calls at once (no Ray, no engine)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import agentrt
from agentrt.runtime.runner.choices import PlanningSettings
from agentrt.runtime.config import DEFAULT_PRICES
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.runner.execution import execute_program
from agentrt.toolmgr import ToolManager, ToolRegistry

SMALL, LARGE = "llama-3.1-8b", "llama-3.1-70b"


@agentrt.tool(executor="inline")
def says_pass(sample: str) -> bool:
    """Pass when the sample's text says so."""
    return "PASS" in sample


def candidates(p_small: float = 0.5, p_large: float = 0.8) -> list:
    return [agentrt.Candidate(SMALL, p=p_small, output_tokens=100),
            agentrt.Candidate(LARGE, p=p_large, output_tokens=100)]


def planned_step(name: str, **choices):
    """A step that samples until `says_pass` passes and returns the passing text."""
    choices = {"candidates": candidates(), "max_samples": 4, "verifier": says_pass,
               "max_tokens": 200, "prompt_tokens": 50, **choices}

    async def body(ctx, topic: str = "") -> dict:
        sample = await ctx.sample([{"role": "user", "content": f"{name} {topic}"}])
        return {"text": sample.text, "model": sample.model, "k": ctx.plan.k}

    return agentrt.step(name=name, **choices)(body)


def settings(**overrides) -> PlanningSettings:
    values = {"prices": dict(DEFAULT_PRICES), "served_model": SMALL,
              "stand_ins": {LARGE: SMALL}, "time_scale": 0.01}
    return PlanningSettings(**{**values, **overrides})


@dataclass
class FakeBackend:
    """Answers every call at once. `verdicts` yields, per sample, whether its text says
    PASS (cycled); every fork group is logged."""

    verdicts: list[bool] = field(default_factory=lambda: [True])
    output_tokens: int = 100
    groups: list[list[LLMRequest]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    programs: list[tuple[str, str]] = field(default_factory=list)  # (event, program id)

    def __post_init__(self) -> None:
        self._next = itertools.cycle(self.verdicts)

    async def program_started(self, program_id: str) -> None:
        self.programs.append(("started", program_id))

    async def program_finished(self, program_id: str) -> None:
        self.programs.append(("finished", program_id))

    def tool_finished(self, session_id: str, tool: str, seconds: float,
                      prior_s: float | None) -> None:
        pass

    async def chat(self, request: LLMRequest) -> RequestDone:
        return self._done(request)

    async def chat_forks(self, requests: list[LLMRequest]) -> list[RequestDone]:
        self.groups.append(list(requests))
        return [self._done(r) for r in requests]

    async def abort(self, request_id: str) -> None:
        pass

    async def release_session(self, session_id: str) -> None:
        self.released.append(session_id)

    def _done(self, r: LLMRequest) -> RequestDone:
        text = "PASS" if next(self._next) else "fail"
        n = min(self.output_tokens, r.max_tokens)
        cached = 0 if r.fork_of is None else r.prompt_tokens - 1
        return RequestDone(r.request_id, r.session_id, r.program_id, "w0", 0.0,
                           r.prompt_tokens, cached, r.prompt_tokens - cached, n, text=text)


async def run_local(program, backend: FakeBackend, plan: PlanningSettings | None = None,
                    **kwargs):
    """`execute_program` on the fake backend, on the wall clock."""
    import time

    plan = plan or settings()
    return await execute_program(
        program, (), kwargs, program_id=f"{program.name}-0", arrival=time.time(),
        backend=backend, tools=ToolManager(ToolRegistry()), tokenizer=SimpleTokenizer(),
        default_model=SMALL, served_models=plan.served, block_size=16,
        prices=dict(plan.prices), clock=time.time, planning=plan)
