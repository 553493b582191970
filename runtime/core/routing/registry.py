"""Routers by name: which worker a call goes to.

    round_robin        next worker in order (what a plain load balancer does)
    least_loaded       fewest queued + in-flight calls, ties by worker order
    least_outstanding  the same rule under the load balancers' name
    sticky             the session's home worker while it is alive, else least loaded
    autellix           short prompts (<= 2048 tokens) to the least loaded worker, longer
                       ones to the program's worker
    dualmap            two hashes of the prefix on two consistent-hash rings: the
                       candidate holding the cache unless its predicted TTFT breaks the
                       SLO, else the faster of the two

Routers are strategy objects (`runtime.core.routing.base.Router`) that read the
scheduler's `ClusterView` and never mutate it. Work stealing between workers is the
scheduler's (see `runtime.core.stealing`), not a router's.
"""
from __future__ import annotations

from typing import Any, Callable

from agentrt.runtime.core.routing.base import ClusterView, CostModel, FlatCost, Router, WorkerLoad
from agentrt.runtime.core.routing.basic import (
    AutellixRouter, LeastLoaded, LeastOutstanding, RoundRobin, StickyAffinity,
)
from agentrt.runtime.core.routing.dualmap import DualMap
from agentrt.runtime.core.routing.hash_ring import HashRing

ROUTERS: dict[str, Callable[..., Router]] = {
    cls.name: cls for cls in (StickyAffinity, LeastLoaded, LeastOutstanding, RoundRobin,
                              AutellixRouter, DualMap)
}

__all__ = [
    "AutellixRouter", "ClusterView", "CostModel", "DualMap", "FlatCost", "HashRing",
    "LeastLoaded", "LeastOutstanding", "ROUTERS", "RoundRobin", "Router",
    "StickyAffinity", "WorkerLoad", "make_router",
]


def make_router(name: str, **options: Any) -> Router:
    """A fresh router of the named policy with its options (see each class). Raises
    ValueError listing the valid names."""
    try:
        factory = ROUTERS[name]
    except KeyError:
        valid = ", ".join(sorted(ROUTERS))
        raise ValueError(f"unknown router {name!r}; valid: {valid}") from None
    return factory(**options)
