"""/metrics renders the gateway's and the cluster's series in the Prometheus text
format, and prometheus_client's own parser reads them back."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from agentrt.runtime.serve.metrics import GatewayMetrics

SNAPSHOT = {
    "submitted": 10, "dispatched": 9, "completed": 8, "queued": 1, "inflight": 1,
    "stolen": 2, "moves": 1, "pin_decisions": {"soft": 3, "drop": 1}, "prefetches": 0,
    "workers": {w: {"model": "llama-3.1-8b", "queued": 1, "running": 2, "waiting": 0,
                    "kv_capacity_blocks": 1000, "kv_used_blocks": 120,
                    "kv_pinned_blocks": 40, "kv_cached_blocks": 300, "block_size": 16,
                    "prefix_hit_tokens": 900, "prefix_miss_tokens": 100}
                for w in ("w0", "w1")},
}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_render_parses_back():
    metrics = GatewayMetrics()
    metrics.requests.labels(endpoint="chat", status="200").inc(3)
    metrics.latency.labels(stream="false").observe(0.2)
    metrics.tokens.labels(tenant="default", kind="cached").inc(64)
    metrics.spend.labels(tenant="default").inc(0.001)
    metrics.programs.inc()
    got = samples(metrics.render(SNAPSHOT).decode())
    assert got[("agentrt_gateway_requests_total", (("endpoint", "chat"), ("status", "200")))] == 3
    assert got[("agentrt_gateway_call_seconds_count", (("stream", "false"),))] == 1
    assert got[("agentrt_gateway_programs_in_flight", ())] == 1
    assert got[("agentrt_scheduler_queued_calls", ())] == 1
    assert got[("agentrt_retention_decisions_total", (("action", "soft"),))] == 3
    w0 = (("model", "llama-3.1-8b"), ("worker", "w0"))
    assert got[("agentrt_worker_kv_pinned_blocks", w0)] == 40
    assert got[("agentrt_worker_kv_used_blocks", w0)] == 120
    assert got[("agentrt_worker_prefix_hit_ratio", w0)] == 0.9
    hit = (("model", "llama-3.1-8b"), ("result", "hit"), ("worker", "w0"))
    assert got[("agentrt_worker_prefix_tokens_total", hit)] == 900


def test_before_any_snapshot_only_the_gateway_series():
    text = GatewayMetrics().render({}).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "agentrt_gateway_calls_in_flight" in names
    assert not any(n.startswith("agentrt_worker") for n in names)
