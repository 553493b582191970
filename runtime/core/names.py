"""Policy names as validated config types: `queue: QueueName = "program_fcfs"` in a
pydantic model rejects a name that no registry knows, listing the valid ones."""
from __future__ import annotations

from typing import Annotated, Callable, Iterable

from pydantic import AfterValidator

from agentrt.kvcache.eviction import eviction_policy_names
from agentrt.runtime.core.queueing.registry import QUEUE_POLICIES
from agentrt.runtime.core.retention import ttl_policy_names
from agentrt.runtime.core.routing.registry import ROUTERS


def _known(kind: str, names: Callable[[], Iterable[str]]) -> Callable[[str], str]:
    def check(value: str) -> str:
        valid = sorted(names())
        if value not in valid:
            raise ValueError(f"unknown {kind} {value!r}; valid: {valid}")
        return value
    return check


QueueName = Annotated[str, AfterValidator(_known("queue policy", lambda: QUEUE_POLICIES))]
RouterName = Annotated[str, AfterValidator(_known("router", lambda: ROUTERS))]
EvictionName = Annotated[str, AfterValidator(_known("eviction policy", eviction_policy_names))]
TTLName = Annotated[str, AfterValidator(_known("TTL policy", ttl_policy_names))]
