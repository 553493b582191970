"""Versioned msgpack encoding of the messages that cross a process.

Every payload is a map `{"v": WIRE_VERSION, "t": type name, "d": fields}`; the type
name must be in the registry, so a peer never instantiates anything it was not told
about (no pickle on the wire). Dataclass fields are encoded by name; nested registered
dataclasses and `TokenChain` are encoded recursively.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import msgpack

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import (
    EngineStats, Evicted, LLMRequest, PinExpired, PinNote, Preempted, RequestDone,
    ToolCallSpec,
)
from agentrt.runtime.core.retention.decision import PauseHint, PinDecision, SurvivalWeight
from agentrt.runtime.engines.base import Capabilities, EngineInfo

WIRE_VERSION = 1

_TYPES: dict[str, type] = {}


def register(cls: type) -> type:
    """Add a dataclass to the wire registry (returns it, so it works as a decorator)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass; only dataclasses go on the wire")
    _TYPES[cls.__name__] = cls
    return cls


for _cls in (LLMRequest, RequestDone, Preempted, Evicted, PinExpired, EngineStats,
             ToolCallSpec, PinNote, PinDecision, SurvivalWeight, PauseHint, Capabilities,
             EngineInfo):
    register(_cls)


def _to_plain(value: Any) -> Any:
    if isinstance(value, TokenChain):
        return {"__chain__": value.to_wire()}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _TYPES:
        return {"__t__": type(value).__name__, "d": _fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict):
        if "__chain__" in value:
            return TokenChain.from_wire(value["__chain__"])
        if "__t__" in value:
            return _build(value["__t__"], value["d"])
        return {k: _from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    return value


def _build(type_name: str, fields: dict[str, Any]) -> Any:
    cls = _TYPES.get(type_name)
    if cls is None:
        raise ValueError(f"unknown wire type {type_name!r}; registered: {sorted(_TYPES)}")
    kwargs = {k: _from_plain(v) for k, v in fields.items()}
    if cls is LLMRequest:
        kwargs["priority"] = tuple(kwargs.get("priority", ()))
    return cls(**kwargs)


def encode(message: Any) -> bytes:
    """Serialise a registered dataclass to versioned msgpack bytes."""
    name = type(message).__name__
    if name not in _TYPES:
        raise TypeError(f"{name} is not registered for the wire; call runtime.wire.register")
    payload = {"v": WIRE_VERSION, "t": name, "d": _fields(message)}
    return msgpack.packb(payload, use_bin_type=True)


def decode(data: bytes) -> Any:
    """Inverse of `encode`. Raises ValueError on a version or type mismatch."""
    payload = msgpack.unpackb(data, raw=False, strict_map_key=False)
    version = payload.get("v")
    if version != WIRE_VERSION:
        raise ValueError(f"wire version {version} is not supported (expected {WIRE_VERSION})")
    return _build(payload["t"], payload["d"])
