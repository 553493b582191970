"""How much latency the OpenAI engine adds per call over a bare httpx call.

    python -m agentrt.runtime.bench.openai_overhead --base-url http://127.0.0.1:8000/v1 \\
        --model NAME [--api-key-env VAR] [--calls 300] [--max-tokens 1] [--no-stream]

Both sides send the same chat-completions body to the same server over a pooled
connection and read the whole reply (the bare side: one `httpx.AsyncClient.post`, or a
streamed read of every event to the body's end, and `json.loads`). The engine side is what a worker does:
`OpenAIEngine.submit` -> task -> ChatClient (retry loop, SSE assembly, usage) -> the
RequestDone handed to `emit`. Calls alternate (bare, engine, bare, ...) after a warm-up,
so both see the same server state; a short reply (`--max-tokens 1`) keeps the server's
share small and steady. Printed: p50 and p99 of each side and their difference (the
goal: under 2 ms at p50), and the percentiles of the paired differences (each engine
call minus the bare call just before it), which a loaded machine disturbs less. The figures are of the server and machine used: a CPU build
of vLLM with a tiny model on loopback is not a GPU server.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.engines.openai import OpenAIEndpoint, OpenAIEngine
from agentrt.runtime.engines.openai.body import chat_body

PROMPT = [{"role": "user", "content": "Reply with one word."}]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bare_call(http: httpx.AsyncClient, url: str, body: dict, headers: dict) -> float:
    start = time.perf_counter()
    if body["stream"]:
        async with http.stream("POST", url, json=body, headers=headers) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():  # to the body's end: pooled again
                if line.startswith("data: ") and line != "data: [DONE]":
                    json.loads(line[6:])
    else:
        response = await http.post(url, json=body, headers=headers)
        response.raise_for_status()
        json.loads(response.content)
    return time.perf_counter() - start


class EngineSide:
    def __init__(self, endpoint: OpenAIEndpoint) -> None:
        origin = time.time()
        self.engine = OpenAIEngine("bench", endpoint, clock=lambda: time.time() - origin)
        self._waiting: dict[str, asyncio.Future] = {}
        self._n = 0

    async def start(self) -> None:
        await self.engine.start(self._emit)

    def _emit(self, events: list) -> None:
        for event in events:
            self._waiting.pop(event.request_id).set_result(event)

    async def call(self, max_tokens: int) -> float:
        self._n += 1
        rid = f"bench-{self._n}"
        request = LLMRequest(rid, "bench", "bench/s", self.engine.model,
                             TokenChain.from_tokens([0]), max_tokens, messages=PROMPT)
        future = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        start = time.perf_counter()
        self.engine.submit(request, 0.0)
        done = await future
        elapsed = time.perf_counter() - start
        if done.error:
            raise RuntimeError(done.error)
        return elapsed


async def measure(endpoint: OpenAIEndpoint, calls: int, warmup: int, max_tokens: int):
    key = os.environ.get(endpoint.api_key_env, "") if endpoint.api_key_env else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = f"{endpoint.base_url}/chat/completions"
    probe = LLMRequest("probe", "bench", "bench/s", endpoint.model, TokenChain.from_tokens([0]),
                       max_tokens, messages=PROMPT)
    body = chat_body(probe, endpoint)
    side = EngineSide(endpoint)
    await side.start()
    bare, engine = [], []
    async with httpx.AsyncClient(timeout=60) as http:
        try:
            for i in range(warmup + calls):
                b = await bare_call(http, url, body, headers)
                e = await side.call(max_tokens)
                if i >= warmup:
                    bare.append(b)
                    engine.append(e)
        finally:
            await side.engine.stop()
    return bare, engine


def report(bare: list[float], engine: list[float], endpoint: OpenAIEndpoint) -> str:
    rows = [("direct httpx", percentile(bare, 0.5), percentile(bare, 0.99)),
            ("OpenAIEngine", percentile(engine, 0.5), percentile(engine, 0.99))]
    added = (rows[1][1] - rows[0][1], rows[1][2] - rows[0][2])
    paired = [e - b for b, e in zip(bare, engine)]
    lines = [f"server {endpoint.base_url} model {endpoint.model} "
             f"stream={endpoint.stream} calls={len(bare)}",
             f"{'':14} {'p50 ms':>9} {'p99 ms':>9}"]
    lines += [f"{name:14} {p50 * 1e3:9.3f} {p99 * 1e3:9.3f}" for name, p50, p99 in rows]
    lines.append(f"{'added':14} {added[0] * 1e3:9.3f} {added[1] * 1e3:9.3f}   "
                 f"(goal: under 2 ms at p50)")
    lines.append(f"{'added, paired':14} {percentile(paired, 0.5) * 1e3:9.3f} "
                 f"{percentile(paired, 0.99) * 1e3:9.3f}   (engine minus the bare call just "
                 f"before it)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-key-env")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=1)
    parser.add_argument("--no-stream", action="store_true")
    args = parser.parse_args(argv)
    endpoint = OpenAIEndpoint(base_url=args.base_url, model=args.model,
                              api_key_env=args.api_key_env, stream=not args.no_stream,
                              capacity="none", retry={"max_attempts": 1})
    bare, engine = asyncio.run(measure(endpoint, args.calls, args.warmup, args.max_tokens))
    print(report(bare, engine, endpoint))
    return 0


if __name__ == "__main__":
    sys.exit(main())
