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


@agentrt.step(tools=[], max_tokens=24)
async def converse(ctx, topic: str, turns: int, pause_s: float) -> dict:
    """A session of `turns` calls, each the conversation so far plus a new question,
    with a pause (a stand-in for a tool) between calls."""
    messages = [{"role": "system", "content": FILLER * 12},
                {"role": "user", "content": f"Tell me about {topic}."}]
    for turn in range(turns):
        reply = await ctx.chat(messages, tools=[])
        messages += [{"role": "assistant", "content": reply.text},
                     {"role": "user", "content": f"And question {turn} about {topic}?"}]
        if pause_s:
            await asyncio.sleep(pause_s)
    return {"turns": turns}


@agentrt.program(deadline_s=600)
def conversation(topic: str, turns: int = 4, pause_s: float = 0.0):
    return converse(topic, turns, pause_s)


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
    inputs = [{"topic": f"city {i}", "turns": turns} for i in range(programs)]
    out = []
    for router in ("sticky", "round_robin"):
        cfg = RuntimeConfig(pools=pools(base_urls, model, api_key_envs), router=router,
                            stealing=False, ttl=None, host_tier="off", **config)
        out.append(run(router, cfg, inputs))
    return out


def admission(base_urls: Sequence[str], model: str, api_key_envs: Sequence[str | None],
              programs: int = 8, turns: int = 4, pause_s: float = 1.0,
              **config: Any) -> list[Figures]:
    """Conversations with pauses whose contexts oversubscribe the server's KV, run with
    ThunderAgent-style program admission and without any."""
    inputs = [{"topic": f"city {i}", "turns": turns, "pause_s": pause_s}
              for i in range(programs)]
    out = []
    for ttl in ("thunderagent", None):
        cfg = RuntimeConfig(pools=pools(base_urls, model, api_key_envs), ttl=ttl,
                            stealing=False, host_tier="off", **config)
        out.append(run(f"admission: {ttl or 'none'}", cfg, inputs))
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
