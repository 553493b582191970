"""The chat-completions request the gateway accepts, validated at the edge.

The fields and types are OpenAI's (platform.openai.com/docs/api-reference/chat/create).
Types are strict, as OpenAI's API is: `"max_tokens": "5"` is an error, not 5. Fields
the gateway does not know are ignored rather than refused, as vLLM does, so that a
client sending a newer field still works; sampling fields pass on to the engine
(`sampling_options`), which a real server validates itself.

`parse_chat` turns the raw body into a `ChatRequest` or raises a 400 `GatewayError`
naming the field, the bad value and the fix; it raises nothing else, whatever the
bytes (the fuzz tests hold it to that).
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentrt.runtime.serve.errors import GatewayError, bad_request, show

API_REFERENCE = "platform.openai.com/docs/api-reference/chat/create"
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

# Request fields that are sampling options: passed to the engine as given.
SAMPLING_FIELDS = ("temperature", "top_p", "seed", "stop", "presence_penalty",
                   "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
                   "response_format", "tool_choice", "parallel_tool_calls")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class FunctionDef(_Strict):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _name(self) -> FunctionDef:
        if not _TOOL_NAME.match(self.name):
            raise ValueError(f"function name {show(self.name)} must be 1-64 letters, digits, "
                             "underscores or dashes")
        return self


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDef


class CalledFunction(_Strict):
    name: str
    arguments: str


class ToolCall(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: CalledFunction


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id: the id of the assistant's "
                             "tool call it answers")
        if self.role in ("system", "developer", "user") and self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        return self


class NamedFunction(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatRequest(_Strict):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = None

    @property
    def wants_stream(self) -> bool:
        return bool(self.stream)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def requested_max_tokens(self) -> int | None:
        """max_completion_tokens (the current name) over max_tokens (the deprecated one)."""
        return self.max_completion_tokens or self.max_tokens

    def messages_plain(self) -> list[dict[str, Any]]:
        """The conversation as plain OpenAI dicts (unknown fields kept)."""
        return [m.model_dump(exclude_none=True) for m in self.messages]

    def tools_plain(self) -> list[dict[str, Any]] | None:
        return [t.model_dump(exclude_none=True) for t in self.tools] if self.tools else None

    def sampling_options(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in SAMPLING_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value.model_dump() if isinstance(value, BaseModel) else value
        return out


def parse_chat(body: bytes) -> ChatRequest:
    """The request in `body` (JSON bytes). Raises a 400 GatewayError naming the first
    problem: the field (as a JSON path), the value sent and the fix."""
    try:
        request = ChatRequest.model_validate_json(body)
    except ValidationError as exc:
        raise explain(exc) from None
    except (ValueError, TypeError, RecursionError) as exc:  # nesting too deep, bad bytes
        raise bad_request(f"the body could not be read as a chat-completions request "
                          f"({type(exc).__name__}); send one JSON object as in "
                          f"{API_REFERENCE}", code="invalid_json") from None
    _check_consistent(request)
    return request


def _check_consistent(request: ChatRequest) -> None:
    """Checks across fields (each error names the field to change)."""
    if request.n not in (None, 1):
        raise bad_request(f"n={request.n!r}: the gateway returns one choice per call; send "
                          "n=1 (or omit it) and make parallel calls for more samples",
                          param="n")
    choice = request.tool_choice
    if choice is not None and choice != "none" and not request.tools:
        raise bad_request("tool_choice is set but no tools are: send the tools the model "
                          "may call, or drop tool_choice", param="tool_choice")
    if isinstance(choice, NamedToolChoice):
        names = [t.function.name for t in request.tools or ()]
        if choice.function.name not in names:
            raise bad_request(f"tool_choice names {show(choice.function.name)}, which is "
                              f"not among the tools sent ({names}); name one of them",
                              param="tool_choice")


def explain(exc: ValidationError) -> GatewayError:
    errors = exc.errors(include_url=False)
    first = _pick(errors)
    kind = first.get("type", "")
    if kind == "json_invalid":
        detail = first.get("ctx", {}).get("error", "invalid JSON")
        return bad_request(f"the body is not valid JSON ({detail}); send one JSON object "
                           f"with Content-Type: application/json", code="invalid_json")
    if kind == "model_type" and not first.get("loc"):
        return bad_request(f"the body must be a JSON object, got {show(first.get('input'))}; "
                           f"send {{\"model\": ..., \"messages\": [...]}} as in {API_REFERENCE}",
                           code="invalid_json")
    path = json_path(first.get("loc", ()))
    if kind == "missing":
        return bad_request(f"{path} is required and missing; add it (see {API_REFERENCE})",
                           param=path, code="missing_required_parameter")
    if kind == "value_error":
        reason = str(first.get("ctx", {}).get("error", first.get("msg", "")))
        where = f"{path}: " if path else ""
        return bad_request(f"{where}{reason}", param=path or None)
    value = first.get("input")
    msg = str(first.get("msg", "invalid value"))
    msg = msg[0].lower() + msg[1:] if msg else msg
    return bad_request(f"{path}={show(value)} is invalid: {msg}; send the type and range "
                       f"{API_REFERENCE} gives for {path or 'the body'}", param=path or None)


def _pick(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error to report: a union's branches each fail, so prefer a `value_error`
    (our own check) and else the shortest path (the field, not one branch of it)."""
    for err in errors:
        if err.get("type") == "value_error":
            return err
    return min(errors, key=lambda e: len(_clean(e.get("loc", ()))))


def _clean(loc: tuple) -> list:
    """A location without pydantic's union-branch tags ('str', 'list[...]', ...)."""
    out = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or part in _BRANCH_TAGS
                                      or part.startswith("function-")):
            continue
        out.append(part)
    return out


_BRANCH_TAGS = {"str", "int", "float", "bool", "none", "NamedToolChoice", "list", "dict",
                "literal['none','auto','required']"}


def json_path(loc: tuple) -> str:
    """('messages', 2, 'content') -> 'messages[2].content'."""
    path = ""
    for part in _clean(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path
