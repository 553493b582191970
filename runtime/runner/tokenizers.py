"""Which tokenizer turns a conversation into prompt token ids, per model.

Prefix identity (what routing and the KV accounting see as a call's prompt) comes from
the served model's own tokenizer where a pool names one: a model folder with the
model's tokenizer.json, or the server's /tokenize. Everywhere else it comes from
agentrt's `SimpleTokenizer`, an estimate: its counts are close to a real tokenizer's
but its ids are not the model's, so a real server's cache and agentrt's view of it may
differ at the edges. Budgets always settle on what the server reports.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentrt.runtime.engines.tokenizer import SimpleTokenizer


class Tokenizers:
    """`for_model(model)` gives the tokenizer of the pool serving `model` (built on first
    use, in the process that tokenizes), or the estimate."""

    def __init__(self, pools: Sequence[Mapping[str, Any]] = (),
                 default: Any | None = None) -> None:
        self.default = default if default is not None else SimpleTokenizer()
        self._specs = {p["model"]: p for p in pools
                       if p.get("engine") == "openai" and p.get("tokenizer", "estimate")
                       != "estimate"}
        self._built: dict[str, Any] = {}

    def for_model(self, model: str) -> Any:
        spec = self._specs.get(model)
        if spec is None:
            return self.default
        tokenizer = self._built.get(model)
        if tokenizer is None:
            tokenizer = self._built[model] = _build(spec)
        return tokenizer

    def encode_prompt(self, messages, tools=None) -> list[int]:
        """The estimate's ids (callers that know the model use `for_model`)."""
        return self.default.encode_prompt(messages, tools)


def _build(pool: Mapping[str, Any]) -> Any:
    from agentrt.runtime.engines.openai.config import OpenAIEndpoint
    from agentrt.runtime.engines.openai.tokenizer import LocalTokenizer, ServerTokenizer

    endpoint = OpenAIEndpoint(**pool["endpoints"][0])
    if pool["tokenizer"] == "server":
        return ServerTokenizer(endpoint.server_root, endpoint.model)
    return LocalTokenizer.from_model_dir(pool["tokenizer"])
