"""KV retention across tool calls: TTL policies and how their decisions are applied.

    decision      PinRequest (tool, context, ProgramFacts, EngineFacts, now) -> PinDecision
    ttl           TTLPolicy contract, registry, "none" and "fixed"
    continuum     "continuum": Continuum's CDF rule, with its eta and Tq trackers
    infercept     "infercept": InferCept's min-waste preserve / discard / swap
    thunderagent  "thunderagent": program admission per worker (ThunderAgentAdmission)
    agentrt_admission  "agentrt-admission": the same with tool-aware decay and origin waits
    agentrt       "agentrt": soft pin along the tool's survival curve (the default)
    apply         apply_decision: PinDecision -> PinSet / KVCacheManager calls (engines)
    tool_cdf      the raw duration samples the Continuum rule reads
    trackers      EtaTracker, QueueDelayTracker

Pure and synchronous like the rest of the core: time comes in as `now`. The mechanism
(pins, cap, host tier, pressure rules) lives in `kvcache`; the glue that feeds the
policies and carries out their decisions is `runtime.core.control.retention`.
"""
from agentrt.runtime.core.retention.decision import (
    EngineFacts,
    PauseHint,
    PinDecision,
    PinRequest,
    ProgramFacts,
    SurvivalWeight,
)
from agentrt.runtime.core.retention.ttl import (
    FixedPin,
    NoRetention,
    TTLPolicy,
    make_ttl_policy,
    register_ttl_policy,
    ttl_policy_names,
)
# Importing the policy modules registers their policies.
from agentrt.runtime.core.retention.continuum import ContinuumTTL, best_ttl
from agentrt.runtime.core.retention.infercept import InferCeptTTL
from agentrt.runtime.core.retention.thunderagent import (
    AdmissionPlan,
    ThunderAgentAdmission,
    ThunderAgentTTL,
)
from agentrt.runtime.core.retention.agentrt import AgentRTTTL
from agentrt.runtime.core.retention.agentrt_admission import (
    AgentRTAdmission,
    AgentRTAdmissionTTL,
)
from agentrt.runtime.core.retention.apply import Applied, apply_decision

DEFAULT_TTL_POLICY = "agentrt"

__all__ = [
    "DEFAULT_TTL_POLICY",
    "AdmissionPlan",
    "AgentRTAdmission",
    "AgentRTAdmissionTTL",
    "AgentRTTTL",
    "Applied",
    "ContinuumTTL",
    "EngineFacts",
    "FixedPin",
    "InferCeptTTL",
    "NoRetention",
    "PauseHint",
    "PinDecision",
    "PinRequest",
    "ProgramFacts",
    "SurvivalWeight",
    "TTLPolicy",
    "ThunderAgentAdmission",
    "ThunderAgentTTL",
    "apply_decision",
    "best_ttl",
    "make_ttl_policy",
    "register_ttl_policy",
    "ttl_policy_names",
]
