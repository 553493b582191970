"""The step context: what a step body may do while it runs.

The runtime implements ``StepContext``; step bodies only use this interface:

    @step(tools=[search])
    async def research(ctx, question):
        messages = [{"role": "user", "content": question}]
        while True:
            reply = await ctx.chat(messages)
            messages.append(reply.message)
            if not reply.tool_calls:
                return reply.text
            results = await ctx.call_tools(reply.tool_calls)
            messages.extend(r.to_message() for r in results)

A step that declares choices (``@step(candidates=..., verifier=...)``, see
``programs.choices``) draws verified samples with ``await ctx.sample(messages,
**verifier_kwargs)``; ``ctx.plan`` is the planner's choice for its latest attempt. The
runtime's context provides both (``runtime.sampling``); they are not part of this
protocol, so test doubles need not implement them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentrt.toolmgr.result import ToolResult


@dataclass(slots=True)
class Usage:
    """Tokens one LLM turn consumed; ``cached_tokens`` of the prompt hit the KV cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class ChatReply:
    """One LLM turn's reply.

    ``tool_calls`` are in the OpenAI shape
    ``{"id": str, "type": "function", "function": {"name": str, "arguments": str}}``
    (``arguments`` is JSON text). ``finish_reason`` is ``"stop"``, ``"length"`` or
    ``"tool_calls"``.
    """

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message to append to the history (with ``tool_calls`` when there
        are any, so that the following tool messages refer to them)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [dict(call) for call in self.tool_calls]
        return message


@runtime_checkable
class StepContext(Protocol):
    """What a running step can do. One context per step run; its methods may be
    awaited concurrently.

    Tool enforcement: a step may call only the tools it declared in
    ``@step(tools=[...])``. For any other name ``call_tool``/``call_tools`` run nothing
    and return ``ToolResult(ok=False)`` whose error lists the declared tools, since the
    name usually comes from the model, which can correct itself. Failures of declared
    tools (bad arguments, exceptions, timeouts) come back the same way, so the step
    can show them to the model; results are size-capped, with the cut marked.
    """

    @property
    def program_id(self) -> str:
        """The id of the program run this step belongs to."""
        ...

    @property
    def step_id(self) -> str:
        """The node id of this step in the program graph (e.g. ``"plan#2"``)."""
        ...

    @property
    def session_id(self) -> str:
        """The conversation (KV lineage) this step's chat turns extend."""
        ...

    async def chat(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[str] | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        **sampling: Any,
    ) -> ChatReply:
        """Run one LLM turn on ``messages`` (OpenAI chat format).

        ``tools=None`` offers the step's declared tools; a list offers those names,
        which must all be declared (``UndeclaredToolError`` otherwise); ``[]`` offers
        none. ``model``/``max_tokens`` default to the step's options and the planner's
        choice. ``sampling`` (temperature, top_p, seed, ...) goes to the engine as is.
        Does not mutate ``messages``.
        """
        ...

    async def call_tool(self, call: dict[str, Any]) -> ToolResult:
        """Run one OpenAI-shaped tool call of a declared tool; see the class doc."""
        ...

    async def call_tools(self, calls: Sequence[dict[str, Any]]) -> list[ToolResult]:
        """Run tool calls concurrently; results in the order of ``calls``."""
        ...
