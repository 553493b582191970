"""Errors of an OpenAI-compatible endpoint, as the step and the operator see them.

Every error names the endpoint (base URL), what happened, the HTTP status when there
was one, the server's own message when it sent one, and what to do about it. API keys
never appear: a server that echoes the key back has it replaced by `[redacted]`
(`redact`), and no request header is ever put in a message.

    EndpointError                    (base; `retryable`, `status`, `server_message`, `fix`)
    ├── EndpointUnreachable          connection refused / reset / dropped mid-response  retryable
    ├── EndpointTimeout              no byte within the connect or read timeout        retryable
    ├── EndpointStatusError          an HTTP error status; retryable for 408, 409, 429, 5xx
    └── EndpointProtocolError        not the chat-completions format (bad JSON, missing fields)

Which statuses are retried follows the OpenAI Python SDK (`_should_retry` in
openai/_base_client.py: 408, 409, 429 and >= 500).
"""
from __future__ import annotations

import json
from typing import ClassVar

RETRYABLE_STATUSES = frozenset({408, 409, 429})
_MESSAGE_LIMIT = 500


class EndpointError(RuntimeError):
    """A call to `endpoint` failed. `attempts` and `elapsed_s` say how much was tried
    before giving up (set by the client when it stops retrying)."""

    retryable: ClassVar[bool] = False

    def __init__(self, endpoint: str, what: str, *, fix: str, status: int | None = None,
                 server_message: str | None = None) -> None:
        self.endpoint = endpoint
        self.what = what
        self.fix = fix
        self.status = status
        self.server_message = server_message
        self.attempts = 1
        self.elapsed_s = 0.0
        self.gave_up = ""
        super().__init__(self._render())

    def given_up(self, attempts: int, elapsed_s: float, reason: str) -> EndpointError:
        """Record that the client stopped after `attempts` tries (returns self)."""
        self.attempts, self.elapsed_s, self.gave_up = attempts, elapsed_s, reason
        self.args = (self._render(),)
        return self

    def _render(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        said = f": server said: {self.server_message}" if self.server_message else ""
        tried = ""
        if self.gave_up:
            tried = (f" [gave up after {self.attempts} attempt(s) in {self.elapsed_s:.1f} s: "
                     f"{self.gave_up}]")
        return f"{self.endpoint}: {self.what}{status}{said}{tried}. Fix: {self.fix}"

    def __str__(self) -> str:
        return str(self.args[0])


class EndpointUnreachable(EndpointError):
    retryable = True
    stale_connection: bool = False
    """True when a pooled keep-alive connection turned out closed before any answer."""


class EndpointTimeout(EndpointError):
    retryable = True


class EndpointStatusError(EndpointError):
    """An HTTP error status. `retry_after_s` is the server's Retry-After, if any."""

    def __init__(self, endpoint: str, what: str, *, fix: str, status: int,
                 server_message: str | None = None,
                 retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(endpoint, what, fix=fix, status=status, server_message=server_message)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status in RETRYABLE_STATUSES or self.status >= 500


class EndpointProtocolError(EndpointError):
    """The endpoint answered, but not in the OpenAI chat-completions format."""


PROTOCOL_FIX = ("check that base_url points at an OpenAI-compatible server's /v1 root "
                "(vLLM, SGLang, llama.cpp's llama-server or a hosted API)")


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced by `[redacted]`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def server_message(body: bytes, secrets: tuple[str, ...] = ()) -> str | None:
    """The human message in an error body: OpenAI's `{"error": {"message"}}`, vLLM's
    older `{"message"}`, FastAPI's `{"detail"}`, or the text itself (cut to 500
    characters). None for an empty body."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return redact(_cut(text), secrets)
    found = _find_message(data)
    return redact(_cut(found if found is not None else text), secrets)


def _find_message(data: object) -> str | None:
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str) and error:
        return error
    for key in ("message", "detail"):
        if data.get(key):
            value = data[key]
            return value if isinstance(value, str) else json.dumps(value)
    return None


def _cut(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."


def status_fix(status: int, *, model: str, base_url: str, api_key_env: str | None) -> str:
    """What to do about an HTTP error status from a chat-completions call."""
    if status in (401, 403):
        if api_key_env is None:
            return ("the server wants an API key: set api_key_env to the name of the "
                    "environment variable that holds it")
        return f"check the API key in the environment variable {api_key_env}"
    if status == 404:
        return (f"check the model name {model!r} (GET {base_url}/models lists what the "
                f"server serves) and that base_url ends at the API root (usually /v1)")
    if status == 429:
        return ("the server is rate limiting: lower max_concurrency, or raise "
                "retry.max_attempts / retry.max_elapsed_s")
    if status >= 500:
        return "the server failed; its log says why (restart it if it keeps failing)"
    return "the server rejected the request; change what its message names"
