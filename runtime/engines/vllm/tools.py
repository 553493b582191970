"""Tool calls in a reply's text, read by vLLM's own tool parser.

The parser is the one vLLM's OpenAI server runs for `--tool-call-parser NAME`
(vllm/tool_parsers, e.g. `hermes`: `<tool_call>{"name": ..., "arguments": ...}
</tool_call>`), so a reply parses here as the server would parse it. A parser may adjust
how the reply is detokenized (`adjust_request`: hermes keeps special tokens when tools
are offered); `sampling_overrides` says how, for the call's SamplingParams.

A counted call (no messages) cannot carry real tool calls: when it names the tool its
reply calls (`LLMRequest.tool_hint`, from a trace), the reply calls it, as the
simulated engine's responders do.
"""
from __future__ import annotations

from typing import Any

from agentrt.runtime.core.messages import LLMRequest, ToolCallSpec


class ToolCalls:
    def __init__(self, parser: str | None, tokenizer: Any, model: str) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._parser_cls = None
        if parser is not None:
            from vllm.tool_parsers import ToolParserManager

            self._parser_cls = ToolParserManager.get_tool_parser(parser)

    def _chat_request(self, request: LLMRequest):
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        return ChatCompletionRequest(model=self._model, messages=request.messages or [],
                                     tools=request.tools)

    def sampling_overrides(self, request: LLMRequest) -> dict[str, Any]:
        """SamplingParams fields the parser wants for this call (none without tools)."""
        if self._parser_cls is None or not request.tools or request.messages is None:
            return {}
        adjusted = self._parser_cls(self._tokenizer).adjust_request(self._chat_request(request))
        return {"skip_special_tokens": adjusted.skip_special_tokens}

    def parse(self, request: LLMRequest, text: str) -> tuple[str, list[ToolCallSpec]]:
        """(content, tool calls) of a finished reply."""
        if request.messages is None:
            if request.tool_hint is None:
                return text, []
            return text, [ToolCallSpec(f"{request.request_id}:tool", request.tool_hint, "{}")]
        if self._parser_cls is None or not request.tools:
            return text, []
        info = self._parser_cls(self._tokenizer).extract_tool_calls(
            text, self._chat_request(request))
        if not info.tools_called:
            return text, []
        calls = [ToolCallSpec(call.id or f"{request.request_id}:{i}", call.function.name,
                              call.function.arguments or "{}")
                 for i, call in enumerate(info.tool_calls)]
        return info.content or "", calls
