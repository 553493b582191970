"""Engines: the worker-side contract (`base.Engine`) and its backends.

    simulated/   SimulatedEngine: continuous batching + chunked prefill over kvcache,
                 step times from the calibrated PerfModel, replies from responders
    tokenizer    SimpleTokenizer: deterministic ids and chat rendering
"""
from agentrt.runtime.engines.base import Engine, StepResult
from agentrt.runtime.engines.simulated.hardware import GPUS, MODELS, GpuSpec, ModelSpec, get_gpu, get_model
from agentrt.runtime.engines.simulated.perf_model import EFFICIENCIES, Efficiencies, PerfModel, attention_pairs
from agentrt.runtime.engines.simulated.responder import (
    RESPONDERS,
    FillerResponder,
    Responder,
    Response,
    ScriptedReply,
    ScriptedResponder,
    make_responder,
)
from agentrt.runtime.engines.simulated.engine import SimulatedEngine
from agentrt.runtime.engines.tokenizer import SimpleTokenizer, canonical_json, tool_calls_json

__all__ = [
    "EFFICIENCIES",
    "GPUS",
    "MODELS",
    "Efficiencies",
    "Engine",
    "FillerResponder",
    "GpuSpec",
    "ModelSpec",
    "PerfModel",
    "RESPONDERS",
    "Responder",
    "Response",
    "ScriptedReply",
    "ScriptedResponder",
    "SimpleTokenizer",
    "SimulatedEngine",
    "StepResult",
    "attention_pairs",
    "canonical_json",
    "get_gpu",
    "get_model",
    "make_responder",
    "tool_calls_json",
]
