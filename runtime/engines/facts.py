"""What a TTL policy learns about the engine holding a session: `EngineFacts` read off a
`SimulatedEngine`. Both drivers call this, so a policy sees the same facts whichever
clock drives the engine."""
from __future__ import annotations

from agentrt.runtime.core.retention import EngineFacts
from agentrt.runtime.engines.simulated.engine import SimulatedEngine


def engine_facts(engine: SimulatedEngine, context_tokens: int) -> EngineFacts:
    """The engine's KV occupancy and batch now, and the model-clock seconds it would
    take to rebuild `context_tokens` of context (recompute, or reload from its host
    tier when it has one). Reads only."""
    kv, perf = engine.kv, engine.perf
    return EngineFacts(
        capacity_blocks=kv.capacity_blocks, used_blocks=kv.num_used_blocks,
        pinned_blocks=kv.num_held_blocks, recompute_s=perf.recompute_time(context_tokens),
        reload_s=perf.reload_time(context_tokens) if kv.host is not None else None,
        step_s=engine.decode_step_time, batch_tokens=engine.running_context_tokens,
        kv_bytes_per_token=float(perf.model.kv_bytes_per_token))
