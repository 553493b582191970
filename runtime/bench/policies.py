"""Named policy sets: the combinations of queue, routing and caching policies that the
benchmark compares side by side.

    vllm-rr       what plain vLLM behind a round-robin load balancer does: requests
                  served first come first served, LRU prefix cache, round-robin routing
    vllm-sticky   the same engine behind a session-affinity router (SAGA's baseline)
    agentrt       program-level FCFS queueing and session-affinity routing
"""
from __future__ import annotations

POLICY_SETS: dict[str, dict[str, str]] = {
    "vllm-rr": {"queue": "request_fcfs", "router": "round_robin"},
    "vllm-sticky": {"queue": "request_fcfs", "router": "sticky"},
    "agentrt": {"queue": "program_fcfs", "router": "sticky"},
}


def policy_set(name: str) -> dict[str, str]:
    """The settings of a named policy set. Raises ValueError listing the valid names."""
    try:
        return dict(POLICY_SETS[name])
    except KeyError:
        raise ValueError(f"unknown policy set {name!r}; valid: {sorted(POLICY_SETS)}") from None
