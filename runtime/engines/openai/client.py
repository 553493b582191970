"""An async chat-completions client for one OpenAI-compatible server (httpx).

    chat(body) ─▶ attempt ─ ok ──────────────────────────────────────▶ ChatResult
                    │ EndpointError
                    ├─ stale pooled connection, first time ─▶ attempt again at once
                    └─ RetryPolicy.decide: retry after Retry-After / backoff, or raise

One `httpx.AsyncClient` (one connection pool) per client. Each attempt sends the
request, then reads the body (non-streamed) or the SSE stream; the response is closed in
every case, so a cancelled call (the engine's abort, a deadline) closes its connection
mid-stream and the server stops generating (vLLM aborts a request whose client went
away). The API key is read once from the environment variable the endpoint names; it
is sent as a Bearer token and never logged, traced or put in an error (server messages
are redacted).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from agentrt.runtime.engines.openai.completion import ChatResult, StreamAssembler, parse_completion
from agentrt.runtime.engines.openai.config import OpenAIEndpoint
from agentrt.runtime.engines.openai.errors import (
    PROTOCOL_FIX, EndpointError, EndpointProtocolError, EndpointStatusError, EndpointTimeout,
    EndpointUnreachable, redact, server_message, status_fix,
)
from agentrt.runtime.engines.openai.retry import parse_retry_after
from agentrt.runtime.engines.openai.sse import DONE, sse_data

log = logging.getLogger(__name__)
DRAIN_S = 1.0  # how long to read past [DONE] for the end of the body


def read_api_key(env_name: str | None) -> str | None:
    """The key in environment variable `env_name` (None when no variable is named).
    Raises ValueError naming the variable (never a value) when it is unset or empty."""
    if env_name is None:
        return None
    key = os.environ.get(env_name, "")
    if not key:
        raise ValueError(f"api_key_env={env_name!r}: the environment variable {env_name} is "
                         f"unset or empty; export it with the server's API key, or set "
                         f"api_key_env=None for a server that needs none")
    return key


class ChatClient:
    """Chat completions against `endpoint`, with retries. Use from one event loop;
    `aclose()` when done."""

    def __init__(self, endpoint: OpenAIEndpoint, rng: random.Random, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self._rng = rng
        self._clock = clock
        self._policy = endpoint.retry.policy()
        key = read_api_key(endpoint.api_key_env)
        self._secrets = (key,) if key else ()
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._chat_url = f"{endpoint.base_url}/chat/completions"
        timeout = httpx.Timeout(connect=endpoint.connect_timeout_s,
                                read=endpoint.read_timeout_s,
                                write=endpoint.read_timeout_s, pool=None)
        limits = httpx.Limits(max_connections=endpoint.max_concurrency,
                              max_keepalive_connections=endpoint.max_concurrency or 64)
        self._http = httpx.AsyncClient(timeout=timeout, limits=limits)

    def __repr__(self) -> str:
        return f"ChatClient({self.endpoint.base_url!r}, model={self.endpoint.model!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def chat(self, body: dict[str, Any]) -> ChatResult:
        """POST `body` to /chat/completions (streamed when body["stream"]), retrying as
        the endpoint's RetrySettings allow. Raises an EndpointError subclass."""
        started = self._clock()
        attempt, fresh_retry = 0, False
        while True:
            attempt += 1
            try:
                return await self._attempt(body)
            except EndpointError as error:
                if getattr(error, "stale_connection", False) and not fresh_retry:
                    fresh_retry, attempt = True, attempt - 1  # the pool's fault: once, now
                    log.info("%s: pooled connection was closed by the server; retrying on "
                             "a fresh connection", self.endpoint.base_url)
                    continue
                elapsed = self._clock() - started
                decision = self._policy.decide(error, attempt, elapsed, self._rng)
                if not decision.retry:
                    if error.retryable or attempt > 1:
                        error.given_up(attempt, elapsed, decision.reason)
                    raise
                log.warning("%s: attempt %d failed (%s); retrying in %.2f s (%s)",
                            self.endpoint.base_url, attempt, error.what, decision.delay_s,
                            decision.reason)
                await asyncio.sleep(decision.delay_s)

    async def get(self, path: str, fix: str | None = None) -> httpx.Response:
        """GET `path` under the server root (/metrics, /get_server_info, /v1/models),
        once, no retries. Raises an EndpointError subclass on failure or status >= 400
        (whose fix is `fix`, when given)."""
        url = f"{self.endpoint.server_root}{path}"
        try:
            response = await self._http.get(url, headers=self._headers)
        except httpx.TimeoutException as exc:
            raise self._timeout(exc, url) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc, "request", url) from exc
        if response.status_code >= 400:
            error = self._status(response, response.content, url)
            if fix is not None:
                error.fix = fix
                error.args = (error._render(),)
            raise error
        return response

    # -- one attempt ---------------------------------------------------------------
    async def _attempt(self, body: dict[str, Any]) -> ChatResult:
        request = self._http.build_request("POST", self._chat_url, json=body,
                                           headers=self._headers)
        phase = "request"
        try:
            response = await self._http.send(request, stream=True)
            phase = "response"
            try:
                return await self._read(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise self._timeout(exc, self._chat_url) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc, phase, self._chat_url) from exc

    async def _read(self, response: httpx.Response) -> ChatResult:
        if response.status_code >= 400:
            raise self._status(response, await response.aread(), self._chat_url)
        if "text/event-stream" in response.headers.get("content-type", ""):
            return await self._read_stream(response)
        return parse_completion(self._json(await response.aread()), self._chat_url)

    async def _read_stream(self, response: httpx.Response) -> ChatResult:
        assembler = StreamAssembler(self._chat_url, self._clock)
        lines = response.aiter_lines()
        events = sse_data(lines)
        try:
            async for data in events:
                if data == DONE:
                    break
                assembler.add(self._json(data.encode()))
        finally:
            await events.aclose()
        await _drain(lines)
        return assembler.result()

    # -- errors --------------------------------------------------------------------
    def _json(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            text = redact(raw[:200].decode("utf-8", errors="replace"), self._secrets)
            raise EndpointProtocolError(self._chat_url, f"the server answered with something "
                                        f"that is not JSON: {text!r}", fix=PROTOCOL_FIX) from None

    def _status(self, response: httpx.Response, raw: bytes, url: str) -> EndpointStatusError:
        status = response.status_code
        what = "the call failed" if url == self._chat_url else "GET failed"
        return EndpointStatusError(
            url, what, status=status, server_message=server_message(raw, self._secrets),
            retry_after_s=parse_retry_after(response.headers),
            fix=status_fix(status, model=self.endpoint.model, base_url=self.endpoint.base_url,
                           api_key_env=self.endpoint.api_key_env))

    def _timeout(self, exc: httpx.TimeoutException, url: str) -> EndpointTimeout:
        endpoint = self.endpoint
        if isinstance(exc, httpx.ConnectTimeout):
            what = f"no connection within connect_timeout_s={endpoint.connect_timeout_s:g}"
            fix = "check that the server is up and reachable at base_url"
        else:
            what = f"no answer within read_timeout_s={endpoint.read_timeout_s:g}"
            fix = ("the server may hang or be overloaded: check it, or raise read_timeout_s "
                   "for long non-streamed replies")
        return EndpointTimeout(url, what, fix=fix)

    def _unreachable(self, exc: httpx.TransportError, phase: str, url: str) -> EndpointUnreachable:
        detail = redact(str(exc) or type(exc).__name__, self._secrets)
        if isinstance(exc, httpx.ConnectError):
            error = EndpointUnreachable(
                url, f"cannot connect ({detail})",
                fix=f"start the server, or correct base_url={self.endpoint.base_url!r} "
                    f"(scheme, host, port)")
        elif phase == "request":
            error = EndpointUnreachable(
                url, f"the server closed the connection without answering ({detail})",
                fix="check the server's log; a proxy or load balancer may be closing "
                    "idle connections")
        else:
            error = EndpointUnreachable(
                url, f"the connection dropped in the middle of the response ({detail})",
                fix="check the server's log: it may have crashed or been restarted")
        error.stale_connection = phase == "request" and isinstance(exc, httpx.RemoteProtocolError)
        return error


async def _drain(lines) -> None:
    """Read what follows `[DONE]` (the end of the chunked body), so the connection
    goes back to the pool; a response closed unread closes its connection instead.
    A server that keeps the stream open is left after DRAIN_S (the connection then
    closes)."""
    try:
        async with asyncio.timeout(DRAIN_S):
            async for _ in lines:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass
