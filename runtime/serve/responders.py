"""A scripted model for the gateway on simulated engines: it makes OpenAI clients' agents
call their tools, so that tool gaps, TTL decisions and multi-turn sessions happen
without a real model.

`tool_rounds()` (also `agentrt serve --responder tool-rounds`) answers each call from
the conversation alone (a function of the request, as responders must be):

- tools offered and `tool_choice` not "none": it calls the first offered tool not yet
  called since the last user message (a named `tool_choice` picks that tool;
  "required" calls the first tool when all were called), one call per reply, with
  arguments made from the tool's JSON schema and the user's words;
- otherwise it answers: after tool results, "done: " and the results; without any,
  "echo: " and the last user message (what load tests check each reply against).
"""
from __future__ import annotations

import json
import random
from typing import Any, Mapping, Sequence

from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.engines.simulated.responder import ScriptedReply, ScriptedResponder

ARGUMENT_CHARS = 60


class ToolRounds:
    """The script (see the module doc). A class at module level, so that Ray ships it
    to the worker processes by reference."""

    def __call__(self, request: LLMRequest, rng: random.Random) -> ScriptedReply:
        messages = request.messages or []
        user, since = _last_user(messages)
        tools = [t.get("function", {}) for t in request.tools or ()]
        choice = request.sampling.get("tool_choice", "auto")
        tool = _pick_tool(tools, choice, _called(messages[since:]))
        if tool is not None:
            return ScriptedReply("", [{"name": tool["name"],
                                       "arguments": arguments(tool.get("parameters"), user)}])
        results = [_text(m.get("content")) for m in messages[since:] if m.get("role") == "tool"]
        if results:
            return ScriptedReply("done: " + "; ".join(results))
        return ScriptedReply("echo: " + user)


def tool_rounds() -> ScriptedResponder:
    return ScriptedResponder(ToolRounds())


def _last_user(messages: Sequence[Mapping[str, Any]]) -> tuple[str, int]:
    """The last user message's text and its index (0 and "" when there is none)."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return _text(messages[i].get("content")), i
    return "", 0


def _called(messages: Sequence[Mapping[str, Any]]) -> set[str]:
    names = set()
    for message in messages:
        for call in message.get("tool_calls") or ():
            names.add((call.get("function") or {}).get("name"))
    return names


def _pick_tool(tools: list[Mapping[str, Any]], choice: Any,
               called: set[str]) -> Mapping[str, Any] | None:
    if not tools or choice == "none":
        return None
    if isinstance(choice, Mapping):
        wanted = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t.get("name") == wanted), None)
    pending = [t for t in tools if t.get("name") not in called]
    if pending:
        return pending[0]
    return tools[0] if choice == "required" else None


def arguments(schema: Mapping[str, Any] | None, words: str) -> dict[str, Any]:
    """Arguments that fit a JSON schema's properties: strings get the user's words,
    numbers 1, booleans true, enums their first value."""
    out: dict[str, Any] = {}
    for name, prop in ((schema or {}).get("properties") or {}).items():
        prop = prop if isinstance(prop, Mapping) else {}
        kind = prop.get("type")
        if prop.get("enum"):
            out[name] = prop["enum"][0]
        elif kind == "integer":
            out[name] = 1
        elif kind == "number":
            out[name] = 1.0
        elif kind == "boolean":
            out[name] = True
        elif kind == "array":
            out[name] = []
        elif kind == "object":
            out[name] = {}
        else:
            out[name] = words[:ARGUMENT_CHARS]
    return out


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return json.dumps(content)
