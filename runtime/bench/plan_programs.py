"""Planner workload tasks as programs for the simulator: each subtask a planned `@step`
(its candidates told the task's priors), its samples served by simulated engines, its
verdicts and lengths drawn from the task's hidden truth.

    PlanTask ──task_program──▶ @program(budget_usd, deadline_s)
                                 one @step per subtask: candidates = the priors,
                                 ctx.sample(prompt) ─▶ forks on simulated workers
    WorldResponder: the reply to sample j of attempt a of subtask s by model m is
                    "PASS ..." or "fail ..." of the length TruthWorld(task) draws
    world_check:    the verifier tool, passing the samples that say PASS

The planner, the budget ledger, the deadline and the scheduler are the runtime's own
(`execute_program` on `ProgramSimulation`); only the outcomes come from the workload.
"""
from __future__ import annotations

import random
from typing import Mapping

from agentrt.programs import Candidate, ProgramDef, program, step, tool
from agentrt.programs.workloads.planning import PlanTask
from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.engines.simulated.responder import Response
from agentrt.runtime.engines.tokenizer import SimpleTokenizer

PROMPT_OVERHEAD = 4  # tokens the chat rendering adds around one user message
_FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit".split()


@tool(executor="inline")
def world_check(sample: str) -> bool:
    """The verifier of planned workloads: the world wrote its verdict first."""
    return sample.startswith("PASS")


def task_program(task: PlanTask, budget_usd: float, deadline_s: float,
                 told: PlanTask | None = None) -> ProgramDef:
    """`task` as a program with that budget and deadline. Its candidates carry the
    priors of `told` (default: `task`; an evaluation may tell a planner the truth)."""
    told = told or task
    priors = {s.subtask_id: s for s in told.subtasks}
    steps = {s.subtask_id: _subtask_step(s, priors[s.subtask_id], told) for s in task.subtasks}

    def wire() -> dict:
        handles: dict = {}
        for s in task.subtasks:  # generators list dependencies first
            handles[s.subtask_id] = steps[s.subtask_id](*(handles[d] for d in s.deps))
        return handles

    return program(wire, name=task.family, budget_usd=budget_usd, deadline_s=deadline_s)


def _subtask_step(sub, told_sub, told: PlanTask):
    candidates = [Candidate(model, p=b.p, output_tokens=min(sub.max_tokens,
                                                            max(1, round(b.len_median))),
                            strength=told.prior_strength,
                            p_uncertainty=told.success_uncertainty,
                            output_sigma=b.len_sigma, length_strength=told.prior_strength,
                            output_uncertainty=told.length_uncertainty)
                  for model, b in told_sub.prior.items()]
    words = " ".join(["w"] * max(1, sub.prompt_tokens - PROMPT_OVERHEAD))

    async def body(ctx, *_upstream) -> int:
        sample = await ctx.sample([{"role": "user", "content": words}])
        return sample.attempt

    return step(body, name=sub.subtask_id, candidates=candidates,
                max_samples=sub.max_samples, verifier=world_check,
                max_tokens=sub.max_tokens, prompt_tokens=sub.prompt_tokens)


class WorldResponder:
    """Replies from hidden truths: `worlds` maps a program id to its task's world (an
    object with `sample(subtask, model, attempt, j) -> (passed, tokens)`). Sessions are
    `{program}/{subtask}~{j}` and call ids `{session}#{attempt}` (the runner's sampler
    names them so)."""

    def __init__(self, worlds: Mapping[str, object]) -> None:
        self.worlds = worlds
        self.tokenizer = SimpleTokenizer()

    def respond(self, request: LLMRequest, rng: random.Random) -> Response:
        session, _, attempt = request.request_id.rpartition("#")
        program_id, _, rest = session.partition("/")
        subtask, _, fork = rest.partition("~")
        world = self.worlds.get(program_id)
        if world is None or not fork or not attempt.isdigit():
            raise ValueError(f"call {request.request_id!r} is not a sample of a planned "
                             "workload task this responder knows")
        passed, tokens = world.sample(subtask, request.model, int(attempt), int(fork))
        n = max(2, min(tokens, request.max_tokens))
        words = ["PASS" if passed else "fail"] + [_FILLER[i % len(_FILLER)]
                                                 for i in range(n - 2)]
        text = " ".join(words)
        ids = self.tokenizer.encode_reply(text)
        return Response(text, [], len(ids), ids, "stop")
