"""Builders for retention tests: requests with sensible facts, and duration models with
exact samples."""
from __future__ import annotations

from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.toolmgr.durations import DurationModel

from agentrt.runtime.core.retention.decision import EngineFacts, PinRequest, ProgramFacts


def make_request(
    tool: str = "pytest", context: int = 1000, now: float = 10.0, *, session: str = "s1",
    program: str = "p1", last_step: bool = False, **engine: float,
) -> PinRequest:
    """A turn of `session` ended at `now` in a call to `tool`; `engine` overrides
    EngineFacts fields (default: recompute 1 s, no host tier)."""
    facts = {"capacity_blocks": 1000, "recompute_s": 1.0, **engine}
    return PinRequest(session, tool, context, now, ProgramFacts(program, last_step=last_step),
                      EngineFacts(**facts))


def make_durations(samples: dict[str, list[float]] | None = None, min_samples: int = 100,
                   **priors: float) -> DurationModel:
    """A duration model with `samples` recorded per tool, in the order given."""
    model = DurationModel(priors, min_samples=min_samples)
    for tool, xs in (samples or {}).items():
        for x in xs:
            model.record(tool, x)
    return model


def finished_turn(kv: KVCacheManager, tokens: int = 12, key: str = "turn") -> TokenChain:
    """A session's turn that ran and ended on `kv`: its full blocks are free cached."""
    prompt = TokenChain(kv.block_size)
    prompt.extend_synthetic(stable_hash(key), tokens)
    kv.allocate("turn", prompt, 0.0)
    kv.commit("turn", prompt, 1.0)
    kv.free("turn", 1.0)
    return prompt
