"""`/metrics`: the gateway's and the cluster's state in the Prometheus text format
(prometheus.io/docs/instrumenting/exposition_formats/).

`prometheus_client` renders it: it is already installed with `ray[default]`, and it gets
the format's details right (escaping, `_total` and `_created` series, histogram
buckets). The gateway keeps its own registry, not the process-global one Ray's own
metrics use. Two kinds of series:

- the gateway's, updated per call: calls by endpoint and status, per-call latency,
  engine time and gateway overhead histograms, queue waits, tool gaps, tokens and USD
  spent per tenant, programs and calls in flight, programs ended by reason;
- the cluster's, read from the scheduler actor at each scrape (`SchedulerActor.metrics`):
  calls queued and in flight, each worker's queue, batch, KV blocks used, pinned,
  cached and capacity, prefix-cache hit and miss tokens (and their ratio), and the
  retention decisions taken.

Label values are bounded: tenants are the configured keys' (or "default"), workers the
cluster's; no program, session or tool name is a label.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds, from a loopback round trip to a long agent call.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0, 120.0, 300.0)


class ClusterCollector:
    """Series from the scheduler's latest snapshot (set before each render)."""

    def __init__(self) -> None:
        self.snapshot: Mapping[str, Any] = {}

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if not snap:
            return
        yield _gauge("agentrt_scheduler_queued_calls", "Calls waiting in the scheduler's "
                     "queues", snap["queued"])
        yield _gauge("agentrt_scheduler_inflight_calls", "Calls sent to workers and not "
                     "finished", snap["inflight"])
        calls = CounterMetricFamily("agentrt_scheduler_calls", "Calls through the "
                                    "scheduler by stage", labels=["stage"])
        for stage in ("submitted", "dispatched", "completed", "stolen"):
            calls.add_metric([stage], snap[stage])
        yield calls
        yield _counter("agentrt_scheduler_session_moves", "Sessions moved between "
                       "workers by work stealing", snap["moves"])
        decisions = CounterMetricFamily("agentrt_retention_decisions", "TTL decisions "
                                        "for sessions waiting on a tool, by action",
                                        labels=["action"])
        for action, count in sorted(snap["pin_decisions"].items()):
            decisions.add_metric([action], count)
        yield decisions
        yield _counter("agentrt_retention_prefetches", "KV prefetches from host memory "
                       "before a tool's predicted end", snap["prefetches"])
        yield from _workers(snap["workers"])


def _workers(workers: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
    gauges = {
        "queued": ("agentrt_worker_queued_calls", "Calls queued in the scheduler for "
                   "this worker"),
        "running": ("agentrt_worker_running_calls", "Calls in the worker's running batch"),
        "waiting": ("agentrt_worker_waiting_calls", "Calls waiting inside the engine"),
        "kv_capacity_blocks": ("agentrt_worker_kv_capacity_blocks", "KV blocks the "
                               "worker has"),
        "kv_used_blocks": ("agentrt_worker_kv_used_blocks", "KV blocks in use (running "
                           "calls and pins)"),
        "kv_pinned_blocks": ("agentrt_worker_kv_pinned_blocks", "KV blocks pinned for "
                             "sessions waiting on a tool"),
        "kv_cached_blocks": ("agentrt_worker_kv_cached_blocks", "Free KV blocks still "
                             "holding reusable prefixes"),
        "block_size": ("agentrt_worker_kv_block_size_tokens", "Tokens per KV block"),
    }
    for key, (name, doc) in gauges.items():
        family = GaugeMetricFamily(name, doc, labels=["worker", "model"])
        for wid, w in sorted(workers.items()):
            family.add_metric([wid, w["model"]], w[key])
        yield family
    hits = CounterMetricFamily("agentrt_worker_prefix_tokens", "Prompt tokens found in "
                               "(hit) or missing from (miss) the prefix cache",
                               labels=["worker", "model", "result"])
    ratio = GaugeMetricFamily("agentrt_worker_prefix_hit_ratio", "Share of prompt tokens "
                              "served from the prefix cache so far", labels=["worker", "model"])
    for wid, w in sorted(workers.items()):
        hit, miss = w["prefix_hit_tokens"], w["prefix_miss_tokens"]
        hits.add_metric([wid, w["model"], "hit"], hit)
        hits.add_metric([wid, w["model"], "miss"], miss)
        ratio.add_metric([wid, w["model"]], hit / (hit + miss) if hit + miss else 0.0)
    yield hits
    yield ratio


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=False)
        self.requests = Counter("agentrt_gateway_requests", "HTTP requests by endpoint "
                                "and status", ["endpoint", "status"], registry=r)
        self.latency = Histogram("agentrt_gateway_call_seconds", "Chat calls, from the "
                                 "request read to the reply ready", ["stream"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.engine = Histogram("agentrt_gateway_engine_seconds", "Chat calls, from the "
                                "scheduler's receipt to the engine's end (queue + run)",
                                buckets=LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram("agentrt_gateway_overhead_seconds", "Chat calls: "
                                  "gateway latency minus engine time (parsing, "
                                  "tokenizing, actor hops, rendering)",
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("agentrt_gateway_queue_wait_seconds", "Chat calls, "
                                    "from the scheduler's receipt to the engine's first "
                                    "step on them", buckets=LATENCY_BUCKETS, registry=r)
        self.tool_gap = Histogram("agentrt_gateway_tool_gap_seconds", "Gaps between a "
                                  "session's reply and its next call that resumed after "
                                  "a tool (reported to the duration model)",
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("agentrt_gateway_tokens", "Tokens of finished calls per "
                              "tenant", ["tenant", "kind"], registry=r)
        self.spend = Counter("agentrt_gateway_spend_usd", "USD spent per tenant at the "
                             "runtime's prices", ["tenant"], registry=r)
        self.programs = Gauge("agentrt_gateway_programs_in_flight", "Programs started and "
                              "not ended", registry=r)
        self.calls = Gauge("agentrt_gateway_calls_in_flight", "Chat calls being served",
                           registry=r)
        self.ended = Counter("agentrt_gateway_programs_ended", "Programs ended, by why",
                             ["reason"], registry=r)
        self.cluster = ClusterCollector()
        r.register(self.cluster)

    def render(self, snapshot: Mapping[str, Any]) -> bytes:
        self.cluster.snapshot = snapshot
        return generate_latest(self.registry)
