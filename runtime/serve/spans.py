"""A gateway program's trace: the same spans a runner's program has, built from traffic.

    invoke_workflow {program}        opened at its first call, ended when it ends
    └─ invoke_agent {session}        one per session
       ├─ chat {model}               one per call: worker, queue wait, cached tokens,
       │                             the session's route (same worker as its last call?)
       │                             and the TTL decision (kv_pin) when it calls a tool
       └─ execute_tool {tool}        the gap before the session's next call, as seen
                                     by the gateway (agentrt.tool.source = "gateway_gap")

Spans wait in this process's memory exporter until the program ends; then its trace
goes to the run's JSON-lines file in one piece (`ProgramTraces.flush`).
"""
from __future__ import annotations

from typing import Any, Callable

from opentelemetry import context as otel_context
from opentelemetry import trace as otel

from agentrt.runtime import tracing
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.runner.step_context import add_pin_event
from agentrt.runtime.serve.programs import ProgramState, SessionState

GATEWAY_SOURCE = "gateway_gap"


def _ns(wall: float) -> int:
    return int(wall * 1e9)


def open_program(program: ProgramState, sources: tuple[str, str]) -> None:
    # A trace of its own, whatever context the HTTP framework runs the call in.
    span = tracing.tracer().start_span(f"invoke_workflow {program.client_id}",
                                       context=otel_context.Context(),
                                       start_time=_ns(program.started_at))
    span.set_attributes({tracing.OPERATION: "invoke_workflow",
                         tracing.WORKFLOW_NAME: program.client_id,
                         "agentrt.program.id": program.client_id,
                         "agentrt.program.internal_id": program.internal_id,
                         "agentrt.tenant": program.tenant,
                         "agentrt.gateway": True,
                         "agentrt.program.id_source": sources[0],
                         "agentrt.session.id_source": sources[1]})
    program.span = span


def open_session(program: ProgramState, session: SessionState, now: float) -> None:
    span = tracing.tracer().start_span(
        f"invoke_agent {session.client_id}",
        context=otel.set_span_in_context(program.span), start_time=_ns(now))
    span.set_attributes({tracing.OPERATION: "invoke_agent",
                         tracing.AGENT_NAME: session.client_id,
                         tracing.CONVERSATION_ID: session.internal_id})
    session.span = span


def chat_span(session: SessionState, model: str, max_tokens: int,
              request_id: str) -> otel.Span:
    span = tracing.tracer().start_span(f"chat {model}", kind=otel.SpanKind.SERVER,
                                       context=otel.set_span_in_context(session.span))
    span.set_attributes({tracing.OPERATION: "chat", tracing.REQUEST_MODEL: model,
                         tracing.REQUEST_MAX_TOKENS: max_tokens,
                         tracing.CONVERSATION_ID: session.internal_id,
                         "agentrt.request.id": request_id})
    return span


def record_call(span: otel.Span, request: LLMRequest, done: RequestDone,
                previous_worker: str | None, queue_wait_s: float,
                to_wall: Callable[[float], float]) -> None:
    """What the core did with the call: where it ran (and whether that is where the
    session's last call ran), what the cache held, and the TTL decision."""
    span.set_attributes({
        tracing.INPUT_TOKENS: done.prompt_tokens,
        tracing.OUTPUT_TOKENS: done.output_tokens,
        tracing.CACHE_READ_TOKENS: done.cached_tokens,
        tracing.RESPONSE_FINISH: [done.finish_reason],
        "agentrt.worker.id": done.worker_id,
        "agentrt.queue_wait_s": queue_wait_s,
        "agentrt.prefilled_tokens": done.prefilled_tokens,
        "agentrt.preemptions": done.preemptions,
    })
    route: dict[str, Any] = {"worker_id": done.worker_id,
                             "first_call": previous_worker is None,
                             "same_worker": previous_worker == done.worker_id}
    if previous_worker is not None:
        route["previous_worker_id"] = previous_worker
    span.add_event("session_route", route)
    span.add_event("kv_prefix_lookup", {"cached_tokens": done.cached_tokens,
                                         "prompt_tokens": done.prompt_tokens})
    if done.tool_calls:
        span.add_event("tool_calls", {"names": [c.name for c in done.tool_calls]})
    if done.kv_pin is not None:
        add_pin_event(span, done.kv_pin, to_wall)


def tool_gap(session: SessionState, tool: str, start: float, end: float) -> None:
    span = tracing.tracer().start_span(f"execute_tool {tool}",
                                       context=otel.set_span_in_context(session.span),
                                       start_time=_ns(start))
    span.set_attributes({tracing.OPERATION: "execute_tool", tracing.TOOL_NAME: tool,
                         "agentrt.tool.duration_s": end - start,
                         "agentrt.tool.source": GATEWAY_SOURCE})
    span.end(end_time=_ns(end))


def end_session(session: SessionState, now: float) -> None:
    if session.span is not None:
        session.span.set_attribute("agentrt.session.turns", session.turns)
        session.span.end(end_time=_ns(now))
        session.span = None


class ProgramTraces:
    """Writes each ended program's spans to the run's JSON-lines trace."""

    def __init__(self, path: str) -> None:
        tracing.setup("agentrt-gateway")
        self.writer = tracing.JsonLinesWriter(path)

    def end(self, program: ProgramState, reason: str, now: float) -> None:
        for session in program.sessions.values():
            end_session(session, now)
        span = program.span
        if span is None:
            return
        span.set_attributes({"agentrt.program.end_reason": reason,
                             "agentrt.program.calls": program.calls,
                             "agentrt.program.spent_usd": program.ledger.spent_usd,
                             "agentrt.program.spent_tokens": program.ledger.spent_tokens})
        span.end(end_time=_ns(now))
        program.span = None
        trace_id = f"{span.get_span_context().trace_id:032x}"
        self.writer.write(tracing.drain(trace_id))

    def close(self) -> None:
        self.writer.close()
