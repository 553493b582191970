"""Builders for the real-server tests."""
from __future__ import annotations

import asyncio
import random
import time
import urllib.request
from typing import Any

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.engines.openai import OpenAIEndpoint, OpenAIEngine
from agentrt.runtime.engines.openai.client import ChatClient
from agentrt.runtime.engines.openai.metrics import parse_prometheus

MODEL = "scripted"
# The scripted model's one call. Its parameters admit one value, so the server's
# constrained decoding of a forced call is fully determined too.
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris"]}},
                   "required": ["city"], "additionalProperties": False}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "Current time.",
    "parameters": {"type": "object", "properties": {}, "additionalProperties": False}}}
# A system prompt of a few hundred tokens: several whole 32-token KV blocks to cache.
SYSTEM = ("You are a careful assistant for a weather service. " * 24).strip()


def endpoint(base_url: str, **options: Any) -> OpenAIEndpoint:
    options.setdefault("model", MODEL)
    options.setdefault("retry", {"max_attempts": 3, "base_delay_s": 0.05, "max_delay_s": 0.2,
                                 "max_elapsed_s": 10.0})
    options.setdefault("connect_timeout_s", 2.0)
    options.setdefault("read_timeout_s", 10.0)
    return OpenAIEndpoint(base_url=base_url, **options)


def client(ep: OpenAIEndpoint, seed: int = 0) -> ChatClient:
    return ChatClient(ep, random.Random(seed))


def body(messages: list[dict], stream: bool = False, max_tokens: int = 32,
         **extra: Any) -> dict[str, Any]:
    out = {"model": MODEL, "messages": messages, "max_tokens": max_tokens, "stream": stream}
    if stream:
        out["stream_options"] = {"include_usage": True}
    out.update(extra)
    return out


def user(text: str = "What is the weather in Paris?") -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def request(request_id: str, messages: list[dict] | None, *, max_tokens: int = 32,
            tools: list | None = None, **sampling: Any) -> LLMRequest:
    return LLMRequest(request_id=request_id, program_id="p0", session_id="p0/s0",
                      model=MODEL, prefix=TokenChain.from_tokens(list(range(64))),
                      max_tokens=max_tokens, messages=messages, tools=tools,
                      sampling=sampling)


class Collector:
    """An engine's `emit`: keeps events, lets a test wait for them (bounded)."""

    def __init__(self) -> None:
        self.events: list[RequestDone] = []

    def __call__(self, events: list) -> None:
        self.events.extend(events)

    async def wait(self, count: int, timeout_s: float = 30.0) -> list[RequestDone]:
        deadline = time.monotonic() + timeout_s
        while len(self.events) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.events)} of {count} events after {timeout_s} s")
            await asyncio.sleep(0.01)
        return self.events


async def started_engine(ep: OpenAIEndpoint, worker_id: str = "w0"):
    origin = time.time()
    engine = OpenAIEngine(worker_id, ep, clock=lambda: time.time() - origin)
    sink = Collector()
    await engine.start(sink)
    return engine, sink


def server_metrics(root_url: str) -> dict[str, float]:
    """The server's /metrics, summed over labels, by name."""
    with urllib.request.urlopen(f"{root_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {name: sum(s.value for s in samples)
            for name, samples in parse_prometheus(text, root_url).items()}
