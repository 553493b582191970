"""OpenTelemetry traces of programs, steps, LLM calls and tool calls.

Span names and attributes follow the GenAI semantic conventions:

    invoke_workflow {program}        (driver process)      one root per program
    └─ invoke_agent {step}           (runner process)      one per step
       ├─ chat {model}               (runner process)      one per LLM call
       └─ execute_tool {tool}        (runner process)      one per tool call

Context crosses processes inside our own messages as a W3C `traceparent` carrier
(`inject` / `extract`), never through Ray's tracing hook. Runner processes keep their
finished spans in memory (`drain`) and ship them back with each program's result; the
driver writes everything to one JSON-lines file per run. When
`OTEL_EXPORTER_OTLP_ENDPOINT` is set and the OTLP exporter is installed (`pip install
agentrt[otlp]`), spans are also sent there.

The tracer provider is one of the two process-wide globals this project allows; it is
set once per process by `setup`.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER_NAME = "agentrt"

# GenAI semantic-convention attribute names used across the runtime.
OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
RESPONSE_FINISH = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
AGENT_NAME = "gen_ai.agent.name"
WORKFLOW_NAME = "gen_ai.workflow.name"
CONVERSATION_ID = "gen_ai.conversation.id"
PROVIDER = "gen_ai.provider.name"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_memory: "MemoryExporter | None" = None


class MemoryExporter(SpanExporter):
    """Keeps finished spans as plain dicts, by trace, until `drain` takes them."""

    def __init__(self) -> None:
        self._by_trace: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [span_to_dict(s) for s in spans]
        with self._lock:
            for row in rows:
                self._by_trace.setdefault(row["trace_id"], []).append(row)
        return SpanExportResult.SUCCESS

    def drain(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """Take the finished spans of one trace, or of all traces."""
        with self._lock:
            if trace_id is not None:
                return self._by_trace.pop(trace_id, [])
            rows = [r for spans in self._by_trace.values() for r in spans]
            self._by_trace.clear()
        return rows

    def shutdown(self) -> None:
        pass


class JsonLinesWriter:
    """Appends span dicts to a file, one JSON object per line (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.count = 0

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            for row in rows:
                self._file.write(json.dumps(row, sort_keys=True) + "\n")
            self._file.flush()
            self.count += len(rows)

    def close(self) -> None:
        with self._lock:
            self._file.close()


def setup(service: str) -> MemoryExporter:
    """Install this process's tracer provider (once) with an in-memory exporter, plus
    OTLP when configured. Later calls return the same exporter."""
    global _memory
    with _lock:
        if _memory is not None:
            return _memory
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        _memory = MemoryExporter()
        provider.add_span_processor(SimpleSpanProcessor(_memory))
        otlp = _otlp_exporter()
        if otlp is not None:
            provider.add_span_processor(BatchSpanProcessor(otlp))
        trace.set_tracer_provider(provider)
        return _memory


def _otlp_exporter() -> SpanExporter | None:
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        import warnings
        warnings.warn("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not "
                      "installed; run `pip install agentrt[otlp]`. Writing JSON lines only.")
        return None
    return OTLPSpanExporter()


def flush(timeout_s: float = 10.0) -> bool:
    """Push buffered spans to every exporter (OTLP batches) now; call before a process
    that holds spans is stopped."""
    provider = trace.get_tracer_provider()
    force = getattr(provider, "force_flush", None)
    return bool(force(int(timeout_s * 1000))) if force is not None else True


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def drain(trace_id: str | None = None) -> list[dict[str, Any]]:
    """Finished spans of this process not yet taken (of one trace, or all)."""
    return _memory.drain(trace_id) if _memory is not None else []


def trace_id_of(carrier: dict[str, str]) -> str:
    """The trace id in a W3C traceparent carrier (version-traceid-spanid-flags)."""
    return carrier["traceparent"].split("-")[1]


def inject(context: Context | None = None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    return carrier


def extract(carrier: dict[str, str] | None) -> Context:
    return _propagator.extract(carrier or {})


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
        "resource": {k: str(v) for k, v in span.resource.attributes.items()},
        # Links (e.g. a resumed program's root to its first attempt's root).
        "links": [
            {"trace_id": f"{link.context.trace_id:032x}",
             "span_id": f"{link.context.span_id:016x}",
             "attributes": dict(link.attributes or {})}
            for link in span.links
        ],
    }
