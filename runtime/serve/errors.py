"""The gateway's errors, in the OpenAI error shape with the status an OpenAI client
expects (platform.openai.com/docs/guides/error-codes):

    {"error": {"message": "...", "type": "...", "param": "..." | null, "code": "..." | null}}

    400 invalid_request_error   bad JSON, wrong types, a conversation too long
    401 authentication_error    no API key, or an unknown one (when keys are configured)
    404 not_found_error         an unknown model (code model_not_found) or program
    413 invalid_request_error   a body over the size limit (code request_too_large)
    429 rate_limit_error        the tenant's share of calls in flight is used (Retry-After)
    429 insufficient_quota      the program's budget is spent (x-should-retry: false)
    503 overloaded              the gateway's calls in flight are at the limit (Retry-After)
    504 deadline_exceeded       the program's deadline passed (x-should-retry: false)
    502 server_error            the engine could not serve the call

Every message says what was wrong and what to do about it. The OpenAI Python SDK
retries 408, 409, 429 and 5xx unless the response says `x-should-retry: false`
(openai/_base_client.py `_should_retry`): conditions that waiting cannot fix (a spent
budget, a passed deadline) say so, so clients fail at once instead of retrying.
"""
from __future__ import annotations

import math
from typing import Any

_SHOW_LIMIT = 80


class GatewayError(Exception):
    """An error answered to the client: HTTP `status`, the OpenAI error body and any
    headers (Retry-After, x-should-retry)."""

    def __init__(self, status: int, message: str, *, type: str, code: str | None = None,
                 param: str | None = None, retry_after_s: float | None = None,
                 retry: bool | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.retry_after_s = retry_after_s
        self.retry = retry

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_s)))
        if self.retry is not None:
            headers["x-should-retry"] = "true" if self.retry else "false"
        return headers


def show(value: Any) -> str:
    """A value as an error message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= _SHOW_LIMIT else text[:_SHOW_LIMIT - 3] + "..."


def bad_request(message: str, param: str | None = None,
                code: str | None = "invalid_value") -> GatewayError:
    return GatewayError(400, message, type="invalid_request_error", code=code, param=param)


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, type="authentication_error", code="invalid_api_key")


def model_not_found(model: str, served: list[str]) -> GatewayError:
    return GatewayError(
        404, f"model {show(model)} is not served by this gateway; use one of {served} "
        "(GET /v1/models lists them)", type="invalid_request_error",
        code="model_not_found", param="model")


def not_found(message: str) -> GatewayError:
    return GatewayError(404, message, type="not_found_error", code="not_found")


def too_large(size: int | None, limit: int) -> GatewayError:
    got = "a body" if size is None else f"a {size}-byte body"
    return GatewayError(
        413, f"{got} is over the gateway's limit of {limit} bytes; shorten the "
        "conversation (drop or summarise old tool results) or raise the gateway's "
        "max_body_bytes", type="invalid_request_error", code="request_too_large")


def rate_limited(tenant_limit: int, retry_after_s: float) -> GatewayError:
    return GatewayError(
        429, f"this API key already has {tenant_limit} calls in flight, its share of "
        "the gateway; retry after the Retry-After seconds, or ask the operator to raise "
        "the key's max_inflight", type="rate_limit_error", code="rate_limit_exceeded",
        retry_after_s=retry_after_s, retry=True)


def budget_exhausted(detail: str) -> GatewayError:
    return GatewayError(
        429, f"{detail}; start a new program or give it a larger budget "
        "(X-Agentrt-Budget-Usd / X-Agentrt-Budget-Tokens, within the API key's)",
        type="insufficient_quota", code="insufficient_quota", retry=False)


def overloaded(limit: int, retry_after_s: float) -> GatewayError:
    return GatewayError(
        503, f"the gateway has {limit} calls in flight, its limit; retry after the "
        "Retry-After seconds, or add workers / raise max_inflight",
        type="overloaded", code="overloaded", retry_after_s=retry_after_s, retry=True)


def deadline_exceeded(program: str, deadline_s: float) -> GatewayError:
    return GatewayError(
        504, f"program {show(program)} is past its deadline of {deadline_s:g}s; its "
        "calls are refused. Start a new program id, or give the program a later "
        "deadline (X-Agentrt-Deadline-S) on its first call",
        type="deadline_exceeded", code="deadline_exceeded", retry=False)


def engine_failed(detail: str) -> GatewayError:
    return GatewayError(502, f"the engine could not serve the call: {detail}",
                        type="server_error", code="engine_error")


def internal(request_id: str) -> GatewayError:
    return GatewayError(
        500, f"the gateway failed on request {request_id}; this is a bug in agentrt's "
        "gateway: report it with the request id (the gateway's log has the traceback)",
        type="server_error", code="internal_error")
