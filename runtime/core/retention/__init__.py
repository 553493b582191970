"""KV retention across tool calls: TTL policies and how their decisions are applied.

    decision      PinRequest (tool, context, ProgramFacts, EngineFacts, now) -> PinDecision
    ttl           TTLPolicy contract, registry, "none" and "fixed"
    continuum     "continuum": Continuum's CDF rule, with its eta and Tq trackers
    infercept     "infercept": InferCept's min-waste preserve / discard / swap
    thunderagent  "thunderagent": program admission per worker (ThunderAgentAdmission)
    agentrt       "agentrt": soft pin along the tool's survival curve (the default)
    apply         apply_decision: PinDecision -> PinSet / KVCacheManager calls
    clock         ModelClock: a model-clock decision on an engine's (wall) clock
    note          pin_note: a decision as the trace shows it (PinNote)
    tool_cdf      the raw duration samples the Continuum rule reads
    trackers      EtaTracker, QueueDelayTracker

Pure and synchronous like the rest of the core: time comes in as `now`. The mechanism
(pins, cap, host tier, pressure rules) lives in `kvcache`.
"""
from agentrt.runtime.core.retention.decision import (
    EngineFacts,
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
from agentrt.runtime.core.retention.apply import Applied, apply_decision
from agentrt.runtime.core.retention.clock import EngineWeight, ModelClock
from agentrt.runtime.core.retention.note import pin_note

DEFAULT_TTL_POLICY = "agentrt"

__all__ = [
    "DEFAULT_TTL_POLICY",
    "AdmissionPlan",
    "AgentRTTTL",
    "Applied",
    "ContinuumTTL",
    "EngineFacts",
    "EngineWeight",
    "FixedPin",
    "InferCeptTTL",
    "ModelClock",
    "NoRetention",
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
    "pin_note",
    "register_ttl_policy",
    "ttl_policy_names",
]
