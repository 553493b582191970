"""Real-server figures: session affinity against round robin on two replicas, and
program-aware admission against none on a server with a small KV. CPU runs of a tiny
model when run against the test servers: the figures show what agentrt's decisions do
to a real server's cache and times, not GPU performance.

    python -m agentrt.runtime.bench.real_servers affinity --base-url URL1 --base-url URL2 \
        --model NAME [--api-key-env VAR ...]
    python -m agentrt.runtime.bench.real_servers admission --base-url URL --model NAME
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import agentrt
from agentrt.runtime.config import RuntimeConfig

FILLER = ("The service keeps weather records for every city and answers questions "
          "about them. ")
WEATHER_S = 1.0  # how long a weather lookup takes (a stand-in for a real tool)


@agentrt.tool(executor="inline")
async def get_weather(city: str) -> str:
    """The weather records of a city (about two hundred tokens)."""
    await asyncio.sleep(WEATHER_S)
    return f"Records for {city}: " + FILLER * 15


@agentrt.step(tools=[get_weather], max_tokens=64)
async def converse(ctx, topic: str, turns: int, run: str) -> dict:
    """A session of up to `turns` calls: the model looks the weather up (the test
    servers' scripted model always does), the records join the conversation, and it is
    asked again. `run` opens the system prompt, so one run never finds another's
    conversations in a server's cache."""
    messages = [{"role": "system", "content": f"Run {run}. " + FILLER * 12},
                {"role": "user", "content": f"What is the weather in {topic}?"}]
    for turn in range(1, turns + 1):
        reply = await ctx.chat(messages)
        messages.append(reply.message)
        if not reply.tool_calls:
            return {"turns": turn}
        for result in await ctx.call_tools(reply.tool_calls):
            messages.append(result.to_message())
    return {"turns": turns}


@agentrt.program(deadline_s=600)
def conversation(topic: str, turns: int = 4, run: str = ""):
    return converse(topic, turns, run)


def looks_up_weather(request, rng) -> dict:
    """The simulated model: what the test servers' scripted model does."""
    if request.tools:
        return {"text": "", "tool_calls": [{"name": "get_weather",
                                            "arguments": {"city": "Paris"}}]}
    return {"text": "Sunny."}


@dataclass(frozen=True)
class Figures:
    label: str
    prompt_tokens: int
    cached_tokens: int
    mean_program_s: float
    failed: int

    @property
    def cached_share(self) -> float:
        return self.cached_tokens / max(1, self.prompt_tokens)

    def row(self) -> str:
        return (f"| {self.label} | {self.prompt_tokens} | {self.cached_tokens} | "
                f"{100 * self.cached_share:.1f}% | {self.mean_program_s:.2f} | {self.failed} |")


HEADER = ("| setting | prompt tokens | cached tokens | cached share | mean program s | "
          "failed |\n|---|---|---|---|---|---|")


def pools(base_urls: Sequence[str], model: str, api_key_envs: Sequence[str | None]) -> list:
    envs = list(api_key_envs) + [None] * (len(base_urls) - len(api_key_envs))
    endpoints = [{"base_url": u, "model": model, "provider": "vllm",
                  **({"api_key_env": e} if e else {})} for u, e in zip(base_urls, envs)]
    return [{"model": model, "engine": "openai", "endpoints": endpoints}]


def run(label: str, config: RuntimeConfig, inputs: list[dict[str, Any]]) -> Figures:
    report = agentrt.run(conversation, inputs, **config.model_dump())
    ok = [r for r in report.results if r.ok]
    mean = sum(r.completion_time for r in ok) / max(1, len(ok))
    totals = report.totals()
    return Figures(label, int(totals["prompt_tokens"]), int(totals["cached_tokens"]), mean,
                   len(report.results) - len(ok))


def affinity(base_urls: Sequence[str], model: str, api_key_envs: Sequence[str | None],
             programs: int = 8, turns: int = 4, **config: Any) -> list[Figures]:
    """The same conversations on two replicas, routed by session affinity and by round
    robin (nothing else differs)."""
    out = []
    for router in ("sticky", "round_robin"):
        inputs = _inputs(programs, turns, router)
        cfg = RuntimeConfig(pools=pools(base_urls, model, api_key_envs), router=router,
                            stealing=False, ttl=None, host_tier="off", **config)
        out.append(run(router, cfg, inputs))
    return out


ADMISSIONS = ("agentrt-admission", "thunderagent", None)


def _inputs(programs: int, turns: int, run: str) -> list[dict[str, Any]]:
    return [{"topic": f"city {i}", "turns": turns, "run": run} for i in range(programs)]


def admission(base_urls: Sequence[str], model: str, api_key_envs: Sequence[str | None],
              programs: int = 10, turns: int = 4,
              policies: Sequence[str | None] = ADMISSIONS, **config: Any) -> list[Figures]:
    """Conversations whose contexts oversubscribe the server's KV, run with each
    admission policy and without any."""
    out = []
    for ttl in policies:
        cfg = RuntimeConfig(pools=pools(base_urls, model, api_key_envs), ttl=ttl,
                            stealing=False, host_tier="off", **config)
        out.append(run(f"admission: {ttl or 'none'}", cfg,
                       _inputs(programs, turns, str(ttl))))
    return out


def admission_simulated(kv_tokens: int, programs: int = 10, turns: int = 4,
                        policies: Sequence[str | None] = ADMISSIONS) -> list[Figures]:
    """The same comparison in the simulator, on one simulated worker with `kv_tokens`
    of KV (what the real server has): simulated figures."""
    from agentrt.runtime.engines.simulated.responder import ScriptedResponder
    from agentrt.runtime.sim.config import SimConfig
    from agentrt.runtime.sim.programs import ProgramSimulation

    out = []
    for ttl in policies:
        config = SimConfig(workers=1, kv_blocks=kv_tokens // 16, ttl=ttl, stealing=False,
                           host_tier="off", concurrency=programs, ramp_s=0.0)
        sim = ProgramSimulation(conversation, _inputs(programs, turns, str(ttl)), config,
                                responder=ScriptedResponder(looks_up_weather))
        results = sim.run_programs()
        ok = [r for r in results if r.ok]
        out.append(Figures(f"simulated admission: {ttl or 'none'}",
                           sum(r.prompt_tokens for r in results),
                           sum(r.cached_tokens for r in results),
                           sum(r.completion_time for r in ok) / max(1, len(ok)),
                           len(results) - len(ok)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["affinity", "admission"])
    parser.add_argument("--base-url", action="append", dest="base_urls", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-key-env", action="append", dest="api_key_envs", default=[])
    parser.add_argument("--programs", type=int, default=8)
    parser.add_argument("--turns", type=int, default=4)
    args = parser.parse_args(argv)
    run_one = affinity if args.what == "affinity" else admission
    figures = run_one(args.base_urls, args.model, args.api_key_envs, args.programs,
                      args.turns, trace_dir="runs")
    print("CPU run of the servers given (not GPU figures)\n" + HEADER)
    print("\n".join(f.row() for f in figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
