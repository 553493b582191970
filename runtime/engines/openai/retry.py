"""When to try a failed call again, and after how long.

Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter", 2015): the n-th retry waits `uniform(0, min(max_delay_s, base_delay_s x 2^(n-1)))`,
drawn from a seeded RNG the caller passes in. A server's own `Retry-After` (RFC 9110
section 10.2.3: seconds, or an HTTP date) or `retry-after-ms` (sent by OpenAI's API and
honoured by its SDKs) replaces the drawn wait. Retrying is bounded twice: at most
`max_attempts` attempts in all, and no wait that would end more than `max_elapsed_s`
after the call began.

A pooled keep-alive connection the server already closed fails before any byte comes
back (`RemoteProtocolError: Server disconnected without sending a response`, Python's
`RemoteDisconnected`). That is the pool's fault, not the server's: the client retries it
once at once on a fresh connection, outside this policy (see `client.py`).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from agentrt.runtime.engines.openai.errors import EndpointError, EndpointStatusError


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to try again, after `delay_s`; `reason` says why not (or why this wait)."""

    retry: bool
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_elapsed_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"retry.max_attempts must be >= 1, got {self.max_attempts}")
        if not (self.base_delay_s >= 0 and self.max_delay_s >= 0 and self.max_elapsed_s >= 0):
            raise ValueError("retry delays and max_elapsed_s must be >= 0")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The full-jitter wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)

    def decide(self, error: EndpointError, attempt: int, elapsed_s: float,
               rng: random.Random) -> RetryDecision:
        """After attempt `attempt` failed with `error`, `elapsed_s` into the call."""
        if not error.retryable:
            return RetryDecision(False, 0.0, "not retryable")
        if attempt >= self.max_attempts:
            return RetryDecision(False, 0.0, f"retry.max_attempts={self.max_attempts} reached")
        hinted = error.retry_after_s if isinstance(error, EndpointStatusError) else None
        delay = hinted if hinted is not None else self.backoff(attempt, rng)
        if elapsed_s + delay > self.max_elapsed_s:
            why = f"server's Retry-After {delay:.1f} s" if hinted is not None else \
                f"next wait {delay:.1f} s"
            return RetryDecision(False, delay, f"{why} would pass retry.max_elapsed_s="
                                 f"{self.max_elapsed_s:g}")
        return RetryDecision(True, delay, "Retry-After" if hinted is not None else "backoff")


def parse_retry_after(headers: dict[str, str] | object, now: float | None = None) -> float | None:
    """Seconds to wait from a response's `retry-after-ms` or `Retry-After` header
    (delta seconds or an HTTP date, read against `now`, epoch seconds; default the
    wall clock). None when absent or unreadable; never negative."""
    get = headers.get  # type: ignore[attr-defined]
    millis = get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)
