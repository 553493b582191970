"""Failure handling against a real server behind a fault-injecting proxy: what is
retried, how long the client waits, what the error says, and that the API key never
shows."""
from __future__ import annotations

import asyncio
import logging
import time
import traceback

import pytest

from agentrt.runtime.engines.openai.errors import (
    EndpointProtocolError, EndpointStatusError, EndpointTimeout, EndpointUnreachable,
)
from tests.realserver.conftest import API_KEY
from tests.realserver.faults import Fault
from tests.realserver.helpers import body, client, endpoint, user
from tests.realserver.server import free_port

pytestmark = [pytest.mark.realserver, pytest.mark.timeout(600)]


def run(ep, payload, seed: int = 0):
    async def go():
        c = client(ep, seed)
        try:
            return await c.chat(payload)
        finally:
            await c.aclose()
    return asyncio.run(go())


def gaps(proxy) -> list[float]:
    times = [s.at for s in proxy.arrivals()]
    return [b - a for a, b in zip(times, times[1:])]


def test_429_waits_as_long_as_retry_after_says(proxy, api_key_env):
    proxy.inject(Fault.status_code(429, retry_after="1"))
    ep = endpoint(proxy.base_url, api_key_env=api_key_env)
    result = run(ep, body(user(), max_tokens=4))
    assert result.usage.completion_tokens == 4
    assert [s.fault for s in proxy.arrivals()] == ["status", "pass"]
    (gap,) = gaps(proxy)
    assert 1.0 <= gap < 1.5  # the server's 1 s, not the 0.05 s backoff


def test_429_whose_retry_after_passes_the_time_budget_gives_up_at_once(proxy, api_key_env):
    proxy.inject(Fault.status_code(429, retry_after="30"))
    ep = endpoint(proxy.base_url, api_key_env=api_key_env)
    started = time.monotonic()
    with pytest.raises(EndpointStatusError) as caught:
        run(ep, body(user(), max_tokens=4))
    assert time.monotonic() - started < 2.0
    error = caught.value
    assert error.status == 429 and error.retry_after_s == 30.0 and error.attempts == 1
    assert "Retry-After" in str(error) and "max_elapsed_s" in str(error)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retried_then_succeeds(proxy, api_key_env, status):
    proxy.inject(Fault.status_code(status), Fault.status_code(status))
    ep = endpoint(proxy.base_url, api_key_env=api_key_env)
    result = run(ep, body(user(), max_tokens=4))
    assert result.usage.completion_tokens == 4
    assert [s.fault for s in proxy.arrivals()] == ["status", "status", "pass"]
    assert all(g <= 0.5 for g in gaps(proxy))  # jittered backoff below the 0.2 s cap


def test_5xx_past_max_attempts_names_status_message_and_attempts(proxy, api_key_env):
    proxy.inject(*[Fault.status_code(500, message="engine core died")] * 3)
    ep = endpoint(proxy.base_url, api_key_env=api_key_env)
    with pytest.raises(EndpointStatusError) as caught:
        run(ep, body(user(), max_tokens=4))
    text = str(caught.value)
    assert len(proxy.arrivals()) == 3 and caught.value.attempts == 3
    assert "HTTP 500" in text and "engine core died" in text and proxy.base_url in text
    assert "max_attempts=3" in text


def test_a_hanging_server_times_out_and_is_bounded(proxy, api_key_env):
    proxy.inject(Fault.hang(), Fault.hang())
    ep = endpoint(proxy.base_url, api_key_env=api_key_env, read_timeout_s=0.5,
                  retry={"max_attempts": 2, "base_delay_s": 0.05, "max_delay_s": 0.1})
    started = time.monotonic()
    with pytest.raises(EndpointTimeout) as caught:
        run(ep, body(user(), max_tokens=4))
    assert time.monotonic() - started < 3.0
    assert "read_timeout_s=0.5" in str(caught.value) and caught.value.attempts == 2


@pytest.mark.parametrize("stream", [True, False])
def test_a_connection_dropped_mid_response_is_retried(proxy, api_key_env, stream):
    proxy.inject(Fault.drop_mid_stream(after_bytes=200))
    ep = endpoint(proxy.base_url, api_key_env=api_key_env)
    result = run(ep, body(user(), stream=stream, max_tokens=64, ignore_eos=True))
    assert result.usage.completion_tokens == 64
    assert [s.fault for s in proxy.arrivals()] == ["drop_mid", "pass"]


def test_a_dropped_stream_without_retries_is_a_typed_error(proxy, api_key_env):
    proxy.inject(Fault.drop_mid_stream(after_bytes=200))
    ep = endpoint(proxy.base_url, api_key_env=api_key_env, retry={"max_attempts": 1})
    with pytest.raises(EndpointUnreachable) as caught:
        run(ep, body(user(), stream=True, max_tokens=64, ignore_eos=True))
    assert "dropped in the middle of the response" in str(caught.value)


def test_a_stale_pooled_connection_is_retried_once_on_a_fresh_one(proxy, api_key_env):
    """The server closes an idle keep-alive connection; the next call on it fails
    before any answer and goes again at once, not counted as an attempt."""
    ep = endpoint(proxy.base_url, api_key_env=api_key_env, retry={"max_attempts": 1})

    async def go():
        c = client(ep)
        try:
            await c.chat(body(user(), max_tokens=2))
            proxy.inject(Fault.drop_before_response())
            return await c.chat(body(user(), max_tokens=2))
        finally:
            await c.aclose()

    result = asyncio.run(go())
    assert result.usage.completion_tokens == 2
    assert [s.fault for s in proxy.arrivals()] == ["pass", "drop_before", "pass"]


def test_garbage_is_a_protocol_error_and_not_retried(proxy, api_key_env):
    proxy.inject(Fault.garbage(b"<html>502 from some proxy</html>"))
    ep = endpoint(proxy.base_url, api_key_env=api_key_env)
    with pytest.raises(EndpointProtocolError) as caught:
        run(ep, body(user()))
    assert len(proxy.arrivals()) == 1
    assert "not JSON" in str(caught.value) and "OpenAI-compatible" in str(caught.value)


def test_a_response_missing_fields_is_a_protocol_error(proxy, api_key_env):
    proxy.inject(Fault.garbage(b'{"id": "x", "object": "chat.completion"}'))
    ep = endpoint(proxy.base_url, api_key_env=api_key_env)
    with pytest.raises(EndpointProtocolError, match="no choices"):
        run(ep, body(user()))


def test_connection_refused_names_the_endpoint_and_the_fix():
    port = free_port()
    ep = endpoint(f"http://127.0.0.1:{port}/v1",
                  retry={"max_attempts": 2, "base_delay_s": 0.01, "max_delay_s": 0.01})
    started = time.monotonic()
    with pytest.raises(EndpointUnreachable) as caught:
        run(ep, body(user()))
    assert time.monotonic() - started < 2.0
    text = str(caught.value)
    assert f"127.0.0.1:{port}" in text and "cannot connect" in text
    assert "start the server, or correct base_url" in text and caught.value.attempts == 2


def test_the_api_key_never_shows(proxy, api_key_env, caplog):
    """Not in errors, their tracebacks or the log, even when a server echoes it."""
    caplog.set_level(logging.DEBUG)
    echo = f"Incorrect API key provided: {API_KEY}"
    proxy.inject(Fault.status_code(503, message=echo), Fault.status_code(401, message=echo))
    ep = endpoint(proxy.base_url, api_key_env=api_key_env)
    with pytest.raises(EndpointStatusError) as caught:
        run(ep, body(user()))
    assert caught.value.status == 401 and "[redacted]" in str(caught.value)
    shown = [str(caught.value), repr(caught.value), caplog.text, repr(ep),
             "".join(traceback.format_exception(caught.value))]
    for text in shown:
        assert API_KEY not in text
