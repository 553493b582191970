"""Planned programs for the Ray integration tests: steps that declare candidate models,
parallel samples and a verifier."""
from __future__ import annotations

import time

import agentrt

SMALL, LARGE = "llama-3.1-8b", "llama-3.1-70b"
# A long shared instruction, so that forks have a prompt worth sharing (about 600 tokens).
SPEC = " ".join(["Write the function exactly as specified and nothing else."] * 60)


def coin(request, rng) -> dict:
    """The simulated model: half of its samples pass the verifier."""
    return {"text": "PASS" if rng.random() < 0.5 else "fail"}


@agentrt.tool(executor="inline")
def contains_pass(sample: str) -> bool:
    return "PASS" in sample


@agentrt.tool(executor="thread", timeout_s=30)
def slow_check(sample: str, seconds: float) -> bool:
    time.sleep(seconds)
    return True


CANDIDATES = [agentrt.Candidate(SMALL, p=0.5, output_tokens=8),
              agentrt.Candidate(LARGE, p=0.7, output_tokens=8)]


@agentrt.step(candidates=CANDIDATES, max_samples=4, verifier=contains_pass, max_tokens=16,
              prompt_tokens=700)
async def solve(ctx, topic: str) -> dict:
    sample = await ctx.sample([{"role": "system", "content": SPEC},
                               {"role": "user", "content": f"Solve {topic}."}])
    return {"model": sample.model, "k": ctx.plan.k, "attempt": sample.attempt}


@agentrt.step(candidates=CANDIDATES, max_samples=2, verifier=slow_check, max_tokens=16,
              prompt_tokens=700)
async def check_slowly(ctx, previous: dict, seconds: float) -> str:
    sample = await ctx.sample([{"role": "user", "content": f"Check {previous}."}],
                              seconds=seconds)
    return sample.text


@agentrt.program(budget_usd=0.01, deadline_s=60)
def forked(topic: str):
    return solve(topic)


@agentrt.program(budget_usd=0.0004, deadline_s=60)
def thrifty(topic: str):
    return solve(topic)


@agentrt.program(budget_usd=0.01, deadline_s=0.01)
def impossible(topic: str):
    return solve(topic)


@agentrt.program(budget_usd=0.01, deadline_s=4.0)
def late(topic: str, seconds: float):
    return check_slowly(solve(topic), seconds)
