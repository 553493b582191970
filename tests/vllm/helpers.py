"""Builders and waits for the vLLM engine tests (see conftest.py)."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import LLMRequest, PinExpired, Preempted, RequestDone
from agentrt.runtime.engines.vllm import VllmEngine, VllmSettings

MODEL = "scripted"
# The scripted model's one call; its parameters admit one value (see build_model.py).
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris"]}},
                   "required": ["city"], "additionalProperties": False}}}
SYSTEM = ("You are a careful assistant for a weather service. " * 24).strip()
BLOCK = 32


def settings(model_dir: Path, kv_blocks: int, max_model_len: int) -> VllmSettings:
    return VllmSettings(str(model_dir), served_name=MODEL, block_size=BLOCK,
                        num_gpu_blocks=kv_blocks, max_model_len=max_model_len,
                        dtype="bfloat16", enforce_eager=True, max_num_seqs=8,
                        kv_cache_space_gib=1)


def chat(request_id: str, session: str, messages: list[dict], *, tools=None,
         max_tokens: int = 16, **fields: Any) -> LLMRequest:
    program = session.split("/")[0]
    return LLMRequest(request_id, program, session, MODEL, TokenChain(BLOCK), max_tokens,
                      messages=messages, tools=tools, sampling={"temperature": 0.0}, **fields)


def counted(request_id: str, session: str, prompt_tokens: int, output_tokens: int, *,
            tool: str | None = None, **fields: Any) -> LLMRequest:
    """A call without text: `prompt_tokens` made-up tokens of its own (no prefix shared
    with other sessions), a reply of exactly `output_tokens`."""
    chain = TokenChain(BLOCK)
    chain.extend_synthetic(stable_hash("test", session), prompt_tokens)
    return LLMRequest(request_id, session.split("/")[0], session, MODEL, chain,
                      output_tokens, output_tokens_hint=output_tokens, tool_hint=tool,
                      **fields)


def weather_turn(user_text: str = "What is the weather in Paris?") -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user_text}]


def after_tool(messages: list[dict], done: RequestDone, result: str = "sunny") -> list[dict]:
    """The conversation's next prompt: the reply's tool call and the tool's result."""
    return messages + [
        {"role": "assistant", "content": done.text or "",
         "tool_calls": [c.to_openai() for c in done.tool_calls]},
        {"role": "tool", "content": result, "tool_call_id": done.tool_calls[0].call_id}]


def filler(i: int, words: int = 40) -> list[dict]:
    """A prompt sharing no whole block with the weather conversation."""
    return [{"role": "system", "content": f"Filler {i}: " + "lorem ipsum dolor sit amet " * words},
            {"role": "user", "content": "hi"}]


class Harness:
    """One engine on its own event loop; tests drive it with `run(coro)`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, model_dir: Path, kv_blocks: int,
                 max_model_len: int) -> None:
        self.loop = loop
        self.engine = VllmEngine("w0", settings(model_dir, kv_blocks, max_model_len),
                                 ttl="agentrt")
        self.sink: list = []

    async def start(self) -> None:
        await self.engine.start(self.sink.extend)

    def run(self, coro, timeout_s: float = 60.0):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout_s))

    def now(self) -> float:
        return self.engine.clock()

    def done(self) -> dict[str, RequestDone]:
        return {e.request_id: e for e in self.sink if isinstance(e, RequestDone)}

    def events(self, kind) -> list:
        return [e for e in self.sink if isinstance(e, kind)]

    def call(self, request: LLMRequest, timeout_s: float = 30.0) -> RequestDone:
        """Submit and wait for the RequestDone; the engine's commands are then applied."""
        self.engine.submit(request, self.now())
        return self.wait(request.request_id, timeout_s)

    def wait(self, request_id: str, timeout_s: float = 30.0) -> RequestDone:
        async def go():
            while request_id not in self.done():
                await asyncio.sleep(0.005)
            await self.engine.settled()
            return self.done()[request_id]
        return self.run(go(), timeout_s)

    def settle(self) -> None:
        self.run(self.engine.settled(), 30)

    def sleep(self, seconds: float) -> None:
        self.run(asyncio.sleep(seconds), seconds + 5)

    def metrics(self) -> dict[str, float]:
        return self.run(self.engine.call(lambda core: core.metrics()), 30)

    def holds(self) -> dict[str, int]:
        """Blocks held per session now."""
        def read(core):
            holds = core.scheduler.holds
            return {s: len(holds.get(s).blocks) for s in holds.sessions()}
        return self.run(self.engine.call(read), 30)

    def model_chain(self, messages: list[dict], tools=None) -> TokenChain:
        """The prompt as the model's own token ids, in agentrt's block hashes."""
        return TokenChain.from_tokens(self.engine.prompts.chat_ids(messages, tools), BLOCK)


def wait_until(predicate, timeout_s: float, what: str, poll_s: float = 0.01) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout_s} s")
        time.sleep(poll_s)


__all__ = ["Harness", "PinExpired", "Preempted", "RequestDone", "after_tool", "chat",
           "counted", "filler", "weather_turn", "wait_until"]
