"""TTL policies: what to do with a session's KV cache while it waits on a tool.

Each policy is a small strategy object picked by name::

    make_ttl_policy("continuum")        # -> ContinuumTTL()
    make_ttl_policy("nope")             # ValueError listing the valid names
    ttl_policy_names()                  # agentrt, continuum, fixed, infercept, none,
                                        # thunderagent

    none          drop: no retention (vLLM-like baseline)            (this file)
    fixed         2 s pin if the tool's mean is <= 2 s (Continuum code) (this file)
    continuum     CDF rule tau* = argmax P(d<=tau)(eta Tq + C) - tau  continuum.py
    infercept     min-waste preserve / discard / swap, swap budget      infercept.py
    thunderagent  no engine pins; program admission per worker          thunderagent.py
    agentrt       soft pin along the tool's survival, cap, offload      agentrt.py
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from agentrt.kvcache.pressure import PressureRule
from agentrt.runtime.core.retention.decision import PinDecision, PinRequest
from agentrt.runtime.core.retention.tool_cdf import observed_mean
from agentrt.toolmgr.durations import DurationModel


class TTLPolicy(ABC):
    """Decides, when a turn ends in a tool call, whether and how to keep its KV.

    Contract:
    - `decide(request, durations)` returns a `PinDecision` for `request.session_id`.
      It reads `durations` (never records) and may update only the policy's own state
      (InferCept's per-step swap budget). Deterministic: the same calls in the same
      order give the same decisions. It raises nothing on unknown tools (they fall
      back as the policy documents).
    - `decide_many(requests, durations)` decides for requests ending at the same step,
      in input order; policies that share a per-step resource override it.
    - Feedback, called by the driver (no-ops unless a policy documents a use):
      `on_queue_delay(delay_s, cache_lost)` for every admitted request (its queueing
      delay, and whether its session's cache had been evicted);
      `on_program_finished(program_id, turns)` with its number of LLM calls.
    - Knobs for the mechanism, read once when the engine is built:
      `pin_cap_fraction` (PinSet cap) and `pressure_rule` (kvcache.pressure).
    """

    name: ClassVar[str] = ""
    pin_cap_fraction: float = 1.0
    pressure_rule: PressureRule = "continuum"

    @abstractmethod
    def decide(self, request: PinRequest, durations: DurationModel) -> PinDecision:
        """The decision for one session whose turn just ended in a tool call."""

    def decide_many(
        self, requests: Sequence[PinRequest], durations: DurationModel
    ) -> list[PinDecision]:
        return [self.decide(r, durations) for r in requests]

    def on_queue_delay(self, delay_s: float, cache_lost: bool) -> None:
        """A request was admitted after `delay_s` in queues."""

    def on_program_finished(self, program_id: str, turns: int) -> None:
        """A program ended after `turns` LLM calls."""


_POLICIES: dict[str, Callable[..., TTLPolicy]] = {}
P = TypeVar("P", bound=type[TTLPolicy])


def register_ttl_policy(name: str) -> Callable[[P], P]:
    """Class decorator: make a policy constructible by `name`. Returns the class."""

    def register(cls: P) -> P:
        if name in _POLICIES:
            raise ValueError(f"TTL policy {name!r} is already registered")
        cls.name = name
        _POLICIES[name] = cls
        return cls

    return register


def ttl_policy_names() -> list[str]:
    return sorted(_POLICIES)


def make_ttl_policy(name: str, **options: Any) -> TTLPolicy:
    """A fresh policy registered under `name`; `options` go to its constructor.
    Raises ValueError naming the valid policies if `name` is unknown."""
    factory = _POLICIES.get(name)
    if factory is None:
        raise ValueError(
            f"unknown TTL policy {name!r}; valid names: {', '.join(ttl_policy_names())}"
        )
    return factory(**options)


@register_ttl_policy("none")
class NoRetention(TTLPolicy):
    """Never pin: the session's blocks stay cached but evictable (LRU baseline)."""

    def decide(self, request: PinRequest, durations: DurationModel) -> PinDecision:
        return PinDecision.drop(request.now, "no retention")


@register_ttl_policy("fixed")
class FixedPin(TTLPolicy):
    """Continuum's public code: pin for exactly `pin_s` if the tool's mean OBSERVED
    duration is at most `max_mean_s` (an unseen tool counts as 0 s, so it is pinned);
    never on the program's last step. Under pressure it releases the latest-expiring
    pin while at most one request runs (`pressure_rule` "continuum")."""

    def __init__(self, pin_s: float = 2.0, max_mean_s: float = 2.0) -> None:
        self.pin_s = pin_s
        self.max_mean_s = max_mean_s

    def decide(self, request: PinRequest, durations: DurationModel) -> PinDecision:
        now = request.now
        if request.program.last_step:
            return PinDecision.drop(now, "last step")
        mean = observed_mean(durations, request.tool)
        if mean > self.max_mean_s:
            return PinDecision.drop(now, f"mean {mean:.3g} s > {self.max_mean_s:g} s")
        return PinDecision.pin(now + self.pin_s, f"mean {mean:.3g} s <= {self.max_mean_s:g} s")
