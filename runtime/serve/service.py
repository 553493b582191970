"""What the gateway does with a call, apart from HTTP: authenticate, validate, admit,
name the program and session, budget, report the tool gap, send one `LLMRequest` to
the scheduler actor and turn its `RequestDone` into a chat completion.

    body ─▶ key ─▶ parse ─▶ model ─▶ identity ─▶ admit (503 / 429)
         ─▶ program (start: scheduler.program_started) ─▶ deadline (504)
         ─▶ tokenize ─▶ context limit (400) ─▶ budget reserve (429)
         ─▶ tool gap ─▶ scheduler.tool_finished (the duration model learns)
         ─▶ scheduler.chat(LLMRequest) ─▶ RequestDone ─▶ budget settle, metrics, spans
         ─▶ session / program end when the call says so

Calls reach the scheduler through the same numbered backend the program runners use
(`ActorBackend`): this replica is one caller, so a program's start, each tool gap
before the call it precedes, the call and the program's end are handled in the order
they were made. Everything here runs on the replica's one event loop.
"""
from __future__ import annotations

import asyncio
import logging
import statistics
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Mapping

from opentelemetry import trace as otel

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime import tracing
from agentrt.runtime.cluster.clock import RunClock
from agentrt.runtime.cluster.runner_actor import ActorBackend
from agentrt.runtime.core.budget import BudgetExhausted, Price
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.session_chain import request_id as call_id
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.serve import errors, identity as ident, replies, spans
from agentrt.runtime.serve.config import DEFAULT_TENANT, ApiKey, GatewayConfig, hash_key
from agentrt.runtime.serve.metrics import GatewayMetrics
from agentrt.runtime.serve.lifecycle import ProgramLifecycle
from agentrt.runtime.serve.programs import ProgramState, SessionState
from agentrt.runtime.serve.schema import ChatRequest, parse_chat

log = logging.getLogger("agentrt.gateway")
AGENT = "gateway"
RECENT_CALLS = 256


@dataclass(frozen=True)
class GatewaySetup:
    """What the launcher tells a replica about the cluster behind it (plain values)."""

    limits: dict[str, int]
    """Model name -> most prompt + output tokens one call may use on its workers."""
    block_size: int
    prices: dict[str, tuple[float, float]]
    clock: RunClock
    trace_path: str


@dataclass(frozen=True)
class Answer:
    """A served call: the completion (`body`), or its chunks when streaming."""

    body: dict[str, Any] | None
    chunks: list[dict[str, Any]] | None
    headers: dict[str, str]


class GatewayService:
    def __init__(self, scheduler: Any, config: GatewayConfig, setup: GatewaySetup) -> None:
        self.config = config
        self.setup = setup
        self.scheduler = scheduler
        self.backend = ActorBackend(scheduler)
        self.keys = {k.sha256: k for k in config.api_keys}
        self.prices = {m: Price(*p) for m, p in setup.prices.items()}
        self.metrics = GatewayMetrics()
        self.programs = ProgramLifecycle(self.backend, spans.ProgramTraces(setup.trace_path),
                                         self.metrics, self.prices, config.idle_timeout_s)
        self.tokenizer = SimpleTokenizer()
        self.inflight = 0
        self.by_tenant: Counter[str] = Counter()
        self._recent: deque[float] = deque(maxlen=RECENT_CALLS)

    # -- the calls -----------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> ApiKey | None:
        """The caller's key (None when the gateway has none). Raises 401."""
        if not self.keys:
            return None
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise errors.unauthorized("this gateway needs an API key: send it as "
                                      "'Authorization: Bearer <key>' (the OpenAI SDKs' "
                                      "api_key)")
        key = self.keys.get(hash_key(secret.strip()))
        if key is None:
            raise errors.unauthorized("the API key is not one this gateway accepts; check "
                                      "the key, or ask the operator to add its digest")
        return key

    async def chat(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Serve one chat-completions call (`headers`: lower-case names). Raises
        GatewayError for every refusal."""
        self.programs.ensure_reaper()
        started = time.time()
        key = self.authenticate(headers.get("authorization"))
        tenant = key.tenant if key is not None else DEFAULT_TENANT
        request = parse_chat(body)
        if request.model not in self.setup.limits:
            raise errors.model_not_found(request.model, sorted(self.setup.limits))
        who = ident.identify(headers, request)
        self._admit(tenant, key)
        self.inflight += 1
        self.by_tenant[tenant] += 1
        self.metrics.calls.inc()
        try:
            return await self._serve(request, who, headers, key, tenant, started)
        finally:
            self.inflight -= 1
            self.by_tenant[tenant] -= 1
            self.metrics.calls.dec()

    async def _serve(self, request: ChatRequest, who: ident.Identity,
                     headers: Mapping[str, str], key: ApiKey | None, tenant: str,
                     started: float) -> Answer:
        if self.config.log_content:
            log.info("call from tenant %s: %s", tenant, request.messages_plain())
        program = self.programs.find(tenant, who)
        if program is None:
            program = await self.programs.start(tenant, who, ident.limits(headers, key),
                                                started)
        try:
            return await self._run(request, who, program, started)
        except BaseException:
            if who.anonymous:  # a one-call program ends with its call, served or not
                await asyncio.shield(self.programs.end(program, "anonymous"))
            raise

    async def _run(self, request: ChatRequest, who: ident.Identity, program: ProgramState,
                   started: float) -> Answer:
        if program.past_deadline(time.time()):
            await self.programs.end(program, "deadline")
            raise errors.deadline_exceeded(program.client_id, program.limits.deadline_s)
        session, new = program.session(who.session or program.client_id)
        if new:
            spans.open_session(program, session, started)
        messages, tools = request.messages_plain(), request.tools_plain()
        tokens = self.tokenizer.encode_prompt(messages, tools)
        max_tokens = self._max_tokens(request, len(tokens))
        try:
            reservation = program.ledger.reserve(request.model, len(tokens), max_tokens)
        except BudgetExhausted as exc:
            raise errors.budget_exhausted(str(exc)) from None
        program.inflight += 1
        program.calls += 1
        try:
            self._tool_gap(session, messages, started)
            llm = LLMRequest(
                request_id=call_id(session.internal_id, session.turns),
                program_id=program.internal_id, session_id=session.internal_id,
                model=request.model,
                prefix=TokenChain.from_tokens(tokens, block_size=self.setup.block_size),
                max_tokens=reservation.max_tokens, arrival=started,
                program_arrival=program.started_at, tenant=program.tenant, messages=messages,
                tools=tools, sampling=request.sampling_options(),
                last_call=who.end_program, last_turn=who.end_session, agent=AGENT)
            session.turns += 1
            done = await self._call(program, session, llm, reservation)
        finally:
            program.inflight -= 1
            program.last_activity = time.time()
        if done.finish_reason == "error":
            program.ledger.cancel(reservation)
            await self.programs.after(program, session, who)
            raise errors.engine_failed(done.error or "no reason given")
        program.ledger.settle(reservation, done.prompt_tokens, done.output_tokens)
        answer = self._answer(request, done, program, session, who, started)
        session.last_reply_at = time.time()
        await self.programs.after(program, session, who)
        return answer

    async def _call(self, program: ProgramState, session: SessionState, llm: LLMRequest,
                    reservation: Any) -> RequestDone:
        """The call through the scheduler, under its chat span, aborted there if the
        client goes away, the program's deadline passes or the call times out."""
        span = spans.chat_span(session, llm.model, llm.max_tokens, llm.request_id)
        timeout, deadline = self.config.call_timeout_s, program.deadline_at
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - time.time()))
        try:
            llm.trace_context = tracing.inject(otel.set_span_in_context(span))
            done = await asyncio.wait_for(self.backend.chat(llm), timeout)
        except BaseException as exc:
            program.ledger.cancel(reservation)
            await asyncio.shield(self.backend.abort(llm.request_id))
            span.set_status(otel.Status(otel.StatusCode.ERROR, type(exc).__name__))
            span.end()
            if isinstance(exc, asyncio.TimeoutError):
                if program.past_deadline(time.time()):
                    await self.programs.end(program, "deadline")
                    raise errors.deadline_exceeded(program.client_id,
                                                   program.limits.deadline_s) from None
                raise errors.GatewayError(
                    504, f"the call took longer than the gateway's call timeout of "
                    f"{timeout:g}s and was aborted; retry, or raise the gateway's "
                    "call_timeout_s",
                    type="timeout", code="timeout") from None
            raise
        wait = max(0.0, done.first_scheduled_at - done.queued_at) * self.setup.clock.scale
        spans.record_call(span, llm, done, session.last_worker, wait,
                          self.setup.clock.to_wall)
        span.end()
        session.last_worker = done.worker_id
        session.awaiting_tool = bool(done.tool_calls)
        return done

    def _answer(self, request: ChatRequest, done: RequestDone, program: ProgramState,
                session: SessionState, who: ident.Identity, started: float) -> Answer:
        clock, m = self.setup.clock, self.metrics
        engine_s = max(0.0, done.finished_at - done.queued_at) * clock.scale
        wait_s = max(0.0, done.first_scheduled_at - done.queued_at) * clock.scale
        created, completion_id = int(started), "chatcmpl-" + uuid.uuid4().hex
        if request.wants_stream:
            body, chunks = None, list(replies.chunks(
                done, completion_id=completion_id, model=request.model, created=created,
                include_usage=request.include_usage, tokenizer=self.tokenizer))
        else:
            body, chunks = replies.completion(done, completion_id=completion_id,
                                              model=request.model, created=created), None
        elapsed = time.time() - started
        self._recent.append(elapsed)
        m.latency.labels(stream=str(request.wants_stream).lower()).observe(elapsed)
        m.engine.observe(engine_s)
        m.overhead.observe(max(0.0, elapsed - engine_s))
        m.queue_wait.observe(wait_s)
        tenant = program.tenant
        m.tokens.labels(tenant=tenant, kind="prompt").inc(done.prompt_tokens)
        m.tokens.labels(tenant=tenant, kind="cached").inc(done.cached_tokens)
        m.tokens.labels(tenant=tenant, kind="completion").inc(done.output_tokens)
        price = self.prices.get(request.model, Price())
        m.spend.labels(tenant=tenant).inc(price.cost(done.prompt_tokens, done.output_tokens))
        # Like OpenAI's openai-processing-ms: where a call's time went, for clients
        # that measure the gateway (runtime/bench/gateway_load.py).
        headers = {"x-agentrt-request-id": done.request_id,
                   "x-agentrt-processing-ms": f"{elapsed * 1e3:.3f}",
                   "x-agentrt-engine-ms": f"{engine_s * 1e3:.3f}",
                   "x-agentrt-worker": done.worker_id}
        if not who.anonymous:
            headers["x-agentrt-program"] = program.client_id
            headers["x-session-id"] = session.client_id
        return Answer(body, chunks, headers)

    def _tool_gap(self, session: SessionState, messages: list[dict[str, Any]],
                  now: float) -> None:
        """The session's time since its last reply was a tool's, if that reply called a
        tool and this call brings the results: tell the duration model."""
        if not session.awaiting_tool or session.last_reply_at is None:
            return
        session.awaiting_tool = False
        tool = ident.last_tool(messages)
        if tool is None:
            return
        gap = max(0.0, now - session.last_reply_at)
        self.backend.tool_finished(session.internal_id, tool, gap / self.setup.clock.scale,
                                   None)
        spans.tool_gap(session, tool, session.last_reply_at, now)
        self.metrics.tool_gap.observe(gap)

    # -- admission and limits ------------------------------------------------------
    def _admit(self, tenant: str, key: ApiKey | None) -> None:
        if self.inflight >= self.config.max_inflight:
            raise errors.overloaded(self.config.max_inflight, self._retry_after())
        limit = self.config.tenant_limit(key)
        if self.by_tenant[tenant] >= limit:
            raise errors.rate_limited(limit, self._retry_after())

    def _retry_after(self) -> float:
        """How long a call takes now: when a slot is likely free again."""
        recent = statistics.median(self._recent) if self._recent else 1.0
        return min(60.0, max(1.0, recent))

    def _max_tokens(self, request: ChatRequest, prompt: int) -> int:
        limit = self.setup.limits[request.model]
        asked = request.requested_max_tokens
        room = limit - prompt
        if room < 1 or (asked is not None and asked > room):
            want = "" if asked is None else f" + max_tokens {asked}"
            raise errors.bad_request(
                f"the conversation is {prompt} tokens{want}, over {request.model}'s limit "
                f"of {limit} tokens per call; shorten the conversation or lower max_tokens",
                param="messages", code="context_length_exceeded")
        return asked if asked is not None else min(self.config.default_max_tokens, room)

    async def end_program(self, client_id: str, tenant: str) -> dict[str, Any]:
        return await self.programs.end_by_request(client_id, tenant)

    async def close(self) -> int:
        return await self.programs.close()

    # -- reading -------------------------------------------------------------------
    def models(self) -> dict[str, Any]:
        created = int(self.setup.clock.origin)
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "agentrt",
             "max_model_len": limit} for name, limit in sorted(self.setup.limits.items())]}

    async def metrics_text(self) -> bytes:
        snapshot = await self.scheduler.metrics.remote()
        return self.metrics.render(snapshot)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "programs": len(self.programs.table),
                "calls_in_flight": self.inflight,
                "models": sorted(self.setup.limits)}

