"""Named policy sets: the combinations of queue, routing and caching policies that the
benchmark compares side by side.

    vllm-rr         what plain vLLM behind a round-robin load balancer does: requests
                    served first come first served, LRU prefix cache, round-robin routing
    vllm-sticky     the same engine behind a session-affinity router (SAGA's baseline);
                    no retention across tool calls
    agentrt         program-level FCFS queueing and session-affinity routing (no KV
                    retention: the scheduling half of agentrt alone)

KV retention across tool calls (ALGORITHMS.md section 1), each with its own system's
queueing, session-affinity routing and LRU eviction:

    fixed-pin       Continuum's public code: 2 s pin for tools whose mean is <= 2 s;
                    program FCFS
    continuum       Continuum's CDF rule (tau*), one pin per program; program FCFS
    infercept       InferCept's min-waste preserve / discard / swap, with a host tier
                    to swap to; request FCFS (resumed calls keep their arrival)
    thunderagent    ThunderAgent's program admission over unmodified engines; request
                    FCFS
    agentrt-admission  agentrt's admission for engines it cannot pin in: ThunderAgent's
                    rule with the tool's survival curve as decay and waits for the
                    origin worker; program FCFS
    agentrt-kv      agentrt's default: program FCFS, sticky routing, the agentrt soft
                    pin (survival-weighted, capped at half the KV, pins released first
                    under pressure) and a host tier where reload beats recompute
    agentrt-kv-gpu  agentrt-kv without the host tier (ablation)

Program-level scheduling across workers (ALGORITHMS.md sections 3-4, issue 5), against
`vllm-sticky` (request FCFS + LRU + sticky: SAGA's baseline) and `vllm-rr`:

    agentrt-sched   agentrt's default: ATLAS program-level queueing (least attained
                    critical-path service), sticky session affinity, work stealing
                    between workers (a stolen session's KV copied over the network),
                    and agentrt-kv's retention (soft pins, host tier where reload
                    beats recompute)
    agentrt-fair    the same with Agent Fair Share across tenants and its preemption
                    (multi-tenant SLOs)
    agentrt-sched-fcfs  agentrt-sched with program FCFS instead of ATLAS (ablation)
    agentrt-gittins agentrt-sched with the Gittins queue: the Gittins index of each
                    program's remaining size, learned online from finished (and
                    running) programs by a log-linear regression on their features,
                    with an aging bound (issue 18)
    agentrt-oracle  agentrt-sched with shortest-remaining-first, told each program's
                    true size by the trace (a reference, evaluation only)
    free-reload     agentrt-sched on engines whose host-tier reloads take no time (an
                    ideal host link; a bound on what retention and prefetch could still
                    gain, evaluation only)

Eviction over free cached blocks (ALGORITHMS.md section 2), on `vllm-sticky`:

    vllm-sticky-workflow  workflow-aware eviction (SAGA, reconstructed)
    vllm-sticky-belady    Belady's oracle, told each session's next access (evaluation)
"""
from __future__ import annotations

from typing import Any

from agentrt.runtime.config import DEFAULT_STEAL_OPTIONS

# agentrt's stealing: a stolen session's KV goes with it over the data-center network
# (the slower of the two peer links; NVLink only joins GPUs of one server), priced
# against the queueing it saves, instead of being prefilled again at the thief.
AGENTRT_STEALING: dict[str, Any] = {"stealing": True,
                                    "steal_options": dict(DEFAULT_STEAL_OPTIONS)}

# What every set starts from: each mechanism off, so that a set is exactly what it
# names whatever the configuration's defaults are (agentrt's defaults are
# `agentrt-sched`'s).
BASELINE: dict[str, Any] = {"queue": "request_fcfs", "router": "sticky", "stealing": False,
                            "steal_options": {}, "preemption": False, "ttl": None,
                            "host_tier": "off", "eviction": "lru", "free_reload": False}

POLICY_SETS: dict[str, dict[str, Any]] = {
    "vllm-rr": {"queue": "request_fcfs", "router": "round_robin"},
    "vllm-sticky": {"queue": "request_fcfs", "router": "sticky"},
    "agentrt": {"queue": "program_fcfs", "router": "sticky"},
    "fixed-pin": {"queue": "program_fcfs", "router": "sticky", "ttl": "fixed"},
    "continuum": {"queue": "program_fcfs", "router": "sticky", "ttl": "continuum"},
    "infercept": {"queue": "request_fcfs", "router": "sticky", "ttl": "infercept",
                  "host_tier": "on"},
    "thunderagent": {"queue": "request_fcfs", "router": "sticky", "ttl": "thunderagent"},
    "agentrt-admission": {"queue": "program_fcfs", "router": "sticky",
                          "ttl": "agentrt-admission"},
    "agentrt-kv": {"queue": "program_fcfs", "router": "sticky", "ttl": "agentrt",
                   "host_tier": "auto"},
    "agentrt-kv-gpu": {"queue": "program_fcfs", "router": "sticky", "ttl": "agentrt"},
    "agentrt-sched": {"queue": "atlas", "router": "sticky", **AGENTRT_STEALING,
                      "ttl": "agentrt", "host_tier": "auto"},
    "agentrt-fair": {"queue": "fair_share", "router": "sticky", **AGENTRT_STEALING,
                     "preemption": True, "ttl": "agentrt", "host_tier": "auto"},
    "agentrt-sched-fcfs": {"queue": "program_fcfs", "router": "sticky", **AGENTRT_STEALING,
                           "ttl": "agentrt", "host_tier": "auto"},
    "agentrt-gittins": {"queue": "gittins", "router": "sticky", **AGENTRT_STEALING,
                        "ttl": "agentrt", "host_tier": "auto"},
    "agentrt-oracle": {"queue": "oracle_srpt", "router": "sticky", **AGENTRT_STEALING,
                       "ttl": "agentrt", "host_tier": "auto"},
    "free-reload": {"queue": "atlas", "router": "sticky", **AGENTRT_STEALING,
                    "ttl": "agentrt", "host_tier": "auto", "free_reload": True},
    "vllm-sticky-workflow": {"queue": "request_fcfs", "router": "sticky",
                             "eviction": "workflow_aware"},
    "vllm-sticky-belady": {"queue": "request_fcfs", "router": "sticky", "eviction": "belady"},
}

# The sets one `agentrt bench --policies` run compares for KV retention (issue 4).
RETENTION_SETS = ("vllm-sticky", "fixed-pin", "continuum", "infercept", "thunderagent",
                  "agentrt-kv")


# The sets one `agentrt bench --policies` run compares for scheduling (issue 5).
SCHEDULING_SETS = ("vllm-rr", "vllm-sticky", "agentrt-kv", "agentrt-sched",
                   "agentrt-sched-fcfs", "agentrt-fair")


def policy_set(name: str) -> dict[str, Any]:
    """The settings of a named policy set, complete (every mechanism it does not name
    is off). Raises ValueError listing the valid names."""
    try:
        return {**BASELINE, **POLICY_SETS[name]}
    except KeyError:
        raise ValueError(f"unknown policy set {name!r}; valid: {sorted(POLICY_SETS)}") from None
