"""Queue policies by name: which waiting call goes to its worker next.

    request_fcfs   by the call's arrival (what a plain serving engine does)
    program_fcfs   by the program's arrival, then the call's (Continuum)
    plas           least attained service of the program, K FIFO levels (Autellix)
    atlas          least attained critical-path service (Autellix, DAG programs)
    fair_share     the tenant most slowed down first (SAGA's Agent Fair Share)
    gittins        highest Gittins index of the program's learned remaining size first,
                   with an aging bound against starvation
    oracle_srpt    fewest calls left first, told each program's size (evaluation only)

A policy (`runtime.core.queueing.policy.QueuePolicy`) is one object per scheduler; it
makes each worker's queue and learns from the scheduler's feedback hooks. `make_queue`
gives a standalone queue with a policy of its own (tests, tools).
"""
from __future__ import annotations

from typing import Any, Callable

from agentrt.runtime.core.queueing.autellix import ATLAS, PLAS, LevelBins
from agentrt.runtime.core.queueing.fair_share import FairShare, FairShareQueue
from agentrt.runtime.core.queueing.gittins import Gittins, OracleSRPT
from agentrt.runtime.core.queueing.policy import (
    InFlight, PreemptChoice, ProgramFCFS, QueuePolicy, RequestFCFS, execution_time,
)
from agentrt.runtime.core.queueing.wait_queue import RequestQueue, WaitQueue

QUEUE_POLICIES: dict[str, Callable[..., QueuePolicy]] = {
    cls.name: cls for cls in (RequestFCFS, ProgramFCFS, PLAS, ATLAS, FairShare, Gittins,
                              OracleSRPT)
}

__all__ = [
    "ATLAS", "FairShare", "FairShareQueue", "Gittins", "InFlight", "LevelBins",
    "OracleSRPT", "PLAS",
    "PreemptChoice", "ProgramFCFS", "QUEUE_POLICIES", "QueuePolicy", "RequestFCFS",
    "RequestQueue", "WaitQueue", "execution_time", "make_queue", "make_queue_policy",
]


def make_queue_policy(name: str, **options: Any) -> QueuePolicy:
    """A fresh policy of the given name with its options (see each class). Raises
    ValueError listing the valid names."""
    try:
        factory = QUEUE_POLICIES[name]
    except KeyError:
        valid = ", ".join(sorted(QUEUE_POLICIES))
        raise ValueError(f"unknown queue policy {name!r}; valid: {valid}") from None
    return factory(**options)


def make_queue(name: str, **options: Any) -> RequestQueue:
    """A standalone queue of the named policy (its own policy object)."""
    return make_queue_policy(name, **options).new_queue()
