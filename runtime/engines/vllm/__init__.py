"""vLLM in agentrt's worker: an in-process engine whose KV blocks agentrt retains.

    config      VllmSettings: the model, KV geometry, parallelism, tool parser, pin cap
    core        VllmCore: vLLM's LLMEngine with its engine core in this process;
                supported vLLM versions
    scheduler   RetainingScheduler: vLLM's scheduler plus holds on finished calls'
                blocks (pending, pinned, soft), the cap, the pressure rule, KV events
    holds       HoldTable: who holds which blocks, until when, the cap (pure)
    mirror      BlockMirror: vLLM's cached blocks in agentrt's hashes, from KV events
    prompts     a call's prompt as token ids (chat template, or made up for counted calls)
    tools       tool calls parsed by vLLM's own tool parser
    calls       streamed outputs gathered into a RequestDone
    stats       EngineStats from vLLM's scheduler and block pool
    engine      VllmEngine: the RealtimeEngine (capabilities retain, kv_state exact)
    factory     VllmEngineFactory: what a worker actor calls with its worker id

Importing this package does not import vLLM (`config`, `holds`, `mirror`, `factory`
need none); `engine.start()` does, and fails naming the fix when vLLM is missing or of an
unsupported version (see `core.SUPPORTED`).
"""
from agentrt.runtime.engines.vllm.config import VllmSettings
from agentrt.runtime.engines.vllm.engine import VllmEngine
from agentrt.runtime.engines.vllm.factory import VllmEngineFactory

__all__ = ["VllmEngine", "VllmEngineFactory", "VllmSettings"]
