"""The step context a running step receives as `ctx`.

`ctx.chat` turns a conversation into an `LLMRequest` (tokenized, so the prompt's block
hashes let the engine find the part of it that is still cached), reserves its worst-case
cost in the program's budget ledger, sends it through the backend (the scheduler) and
turns the engine's `RequestDone` into a `ChatReply`. `ctx.chat_tokens` does the same for
a counted call (token counts, no text: trace replay). `ctx.call_tool` runs a declared
tool through toolmgr. All record OpenTelemetry spans under the step's span. A reply
that ended in a tool call carries the worker's TTL decision for the session, recorded as
a `kv_pin` event on that call's chat span; each tool call's measured duration goes to
the backend (`tool_finished`) for the cluster's duration model.
"""
from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

from opentelemetry import trace as otel

from agentrt.kvcache.prefix import TokenChain
from agentrt.programs.context import ChatReply, Usage
from agentrt.programs.errors import UndeclaredToolError
from agentrt.runtime import tracing
from agentrt.runtime.core.budget import BudgetLedger
from agentrt.runtime.core.messages import LLMRequest, PinNote, RequestDone
from agentrt.runtime.runner.errors import LLMCallError, ProgramEnded
from agentrt.runtime.core.session_chain import SessionChain, request_id
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.journal.records import ToolKey
from agentrt.runtime.journal.tool_calls import REPLAYED, journaled_call
from agentrt.runtime.runner.portfolio import PortfolioSession, StepPlan
from agentrt.runtime.runner.sampling import Sample, Sampler
from agentrt.runtime.runner.tool_hooks import record_tool_span
from agentrt.toolmgr import ToolManager, ToolResult


class _Aborted(BaseException):
    """A call cancelled while it waited for its engine; carries whether it had been sent
    to one (for the ledger) and the cancellation to re-raise."""

    def __init__(self, dispatched: bool, cancellation: asyncio.CancelledError) -> None:
        super().__init__()
        self.dispatched, self.cancellation = dispatched, cancellation


class ChatBackend(Protocol):
    """Where LLM calls go: the scheduler, in whatever process it lives. Calls of one
    backend reach the scheduler in the order they are made."""

    async def program_started(self, program_id: str) -> None: ...

    async def program_finished(self, program_id: str) -> None:
        """The program is over (any status): the scheduler releases what it holds."""
        ...

    async def chat(self, request: LLMRequest) -> RequestDone: ...

    async def chat_forks(self, requests: list[LLMRequest]) -> list[RequestDone]:
        """Parallel samples of one prompt, run as forks on one worker; replies in the
        order of `requests`, once all are done."""
        ...

    async def abort(self, request_id: str) -> bool:
        """Cancel the call wherever it is; True if it had been sent to an engine."""
        ...

    async def release_session(self, session_id: str) -> None: ...

    def tool_finished(self, session_id: str, tool: str, seconds: float,
                      prior_s: float | None) -> None:
        """A tool call of the session ran for `seconds` (run seconds: wall seconds /
        time scale); `prior_s`: the tool's declared prior mean, likewise. A
        notification for the cluster's duration model: returns at once."""
        ...


@dataclass(slots=True)
class RunningProgram:
    """What one running program accumulates; shared by its steps' contexts."""

    program_id: str
    name: str
    tenant: str
    arrival: float
    ledger: BudgetLedger
    default_model: str
    served_models: tuple[str, ...]
    block_size: int
    clock: Callable[[], float]
    time_scale: float = 1.0
    """Wall seconds per run second: tool times go to the scheduler in run seconds."""
    to_wall: Callable[[float], float] | None = None
    """Run-clock seconds to the wall clock's epoch seconds (span timestamps)."""
    ended: str | None = None
    """Set (to the program's status) when the program is over: its steps' calls are
    refused from then on (`ProgramEnded`)."""
    llm_calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    prefilled_tokens: int = 0
    output_tokens: int = 0
    queue_wait_s: float = 0.0
    tool_calls: int = 0
    tool_errors: int = 0
    tool_time_s: float = 0.0
    inflight: set[str] = field(default_factory=set)
    steps_done: list[str] = field(default_factory=list)
    steps_running: set[str] = field(default_factory=set)
    portfolio: PortfolioSession | None = None
    """The program's planner session when its steps declare choices (runtime.portfolio)."""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Every sampling attempt of planned steps: step, model, k, passes, workers."""
    journal: Any = None
    """The attempt's `runtime.journal.ProgramJournal`, or None without a journal."""

    def check_running(self, what: str) -> None:
        if self.ended is not None:
            raise ProgramEnded(f"program {self.program_id!r} ended ({self.ended}); a step "
                               f"still running cannot {what} any more")


class RunnerStepContext:
    """`programs.context.StepContext` backed by a chat backend and a ToolManager."""

    def __init__(self, state: RunningProgram, step_id: str, step_name: str,
                 declared_tools: tuple[str, ...], model: str | None, max_tokens: int,
                 backend: ChatBackend, tools: ToolManager, tokenizer: SimpleTokenizer,
                 verifier: str | None = None) -> None:
        self.program_id = state.program_id
        self.step_id = step_id
        self.session_id = f"{state.program_id}/{step_id}"
        self._state = state
        self._step_name = step_name
        self._declared = declared_tools
        self._model = model
        self._max_tokens = max_tokens
        self._backend = backend
        self._tools = tools
        self._tokenizer = tokenizer
        self._turn = 0  # calls made so far; the next call's number
        self._tool_index = 0  # tool calls made so far (ids for calls that have none)
        self._chain: SessionChain | None = None  # grown by chat_tokens
        self._sampler = Sampler(self, verifier, max_tokens)

    # -- declared choices (runtime.sampling) ------------------------------------------
    async def sample(self, messages: list[dict[str, Any]], **verify: Any) -> Sample:
        """Sample this planned step until a sample passes its verifier and return it.
        The planner picks the model and k parallel samples per attempt (forks sharing
        the prompt's KV on one worker); `verify` goes to the verifier with `sample=`.
        Raises PlanStopped when the planner gives up, BudgetExhausted when nothing fits
        the budget, ValueError when the step declared no candidates."""
        if self._state.portfolio is None or self.step_id not in \
                self._state.portfolio.problem.index:
            raise ValueError(f"step {self._step_name!r} called ctx.sample but declared no "
                             "choices; add @step(candidates=[...], verifier=...)")
        return await self._sampler.sample(list(messages), verify)

    @property
    def plan(self) -> StepPlan | None:
        """The planner's choice for this step's latest attempt (None before the first)."""
        return self._sampler.plan

    @property
    def sessions(self) -> list[str]:
        """Every session this step used: its own and its forks'."""
        return [self.session_id, *self._sampler.sessions]

    async def chat(self, messages: list[dict[str, Any]], tools: list | None = None,
                   model: str | None = None, max_tokens: int | None = None,
                   **sampling: Any) -> ChatReply:
        model = self._pick_model(model)
        names = self._tool_names(tools)
        schemas = self._tools.registry.openai_tools(names) if names else None
        tokens = self.tokenizer_for(model).encode_prompt(messages, schemas)
        prompt = TokenChain.from_tokens(tokens, block_size=self._state.block_size)

        def build(turn: int, allowed: int) -> LLMRequest:
            return self._request(turn, model, prompt, allowed, messages=list(messages),
                                 tools=schemas, sampling=dict(sampling))

        done = await self._exchange(model, len(tokens), max_tokens or self._max_tokens, build)
        return _reply(done)

    async def chat_tokens(self, input_tokens: int, output_tokens: int, *,
                          prefix_id: str | None = None, prefix_tokens: int = 0,
                          fork_from: SessionChain | None = None,
                          summary_tokens: int | None = None,
                          model: str | None = None, last_call: bool = False,
                          last_turn: bool = False, tool: str | None = None,
                          tool_s: float | None = None,
                          features: dict[str, Any] | None = None,
                          program_calls: int | None = None) -> ChatReply:
        """A counted LLM call, as a trace describes one: `input_tokens` more tokens of
        conversation, a reply of `output_tokens` (the engine's responder is told so, and
        it is the call's cap). The session's prompt grows exactly as the simulator's
        player grows it (`SessionChain`: the shared prefix, each call's input, each
        reply), so a replayed trace hits the same cached blocks as its simulation.

        `prefix_id`/`prefix_tokens` name a prefix shared with other sessions, and
        `fork_from` (a `fork_point` of another step) makes the session a subagent's fork
        of that conversation; either opens the conversation, so only the session's
        first counted call may pass them (ValueError otherwise, or when both are
        given). `summary_tokens` compacts the conversation before this call's input (it
        restarts from the shared prefix and a summary that long). `last_call` tells the
        scheduler no call of the program follows, `last_turn` that no call of this
        session does. `tool` is the tool the reply calls (it comes back as the reply's
        tool call; `HUMAN` for a reply a person answers) and `tool_s` how long the trace
        says it runs; `program_calls` the program's traced number of calls (both for
        offline oracles only); `features` what the fleet logged about the program. A
        step uses either `chat` or `chat_tokens`, not both."""
        opens = prefix_id is not None or prefix_tokens or fork_from is not None
        if self._chain is not None and opens:
            raise ValueError(f"session {self.session_id!r}: a shared prefix or a fork opens "
                             "the conversation; pass prefix_id/prefix_tokens/fork_from to "
                             "the first chat_tokens call only")
        if fork_from is not None and (prefix_id is not None or prefix_tokens):
            raise ValueError(f"session {self.session_id!r}: a fork opens with its parent's "
                             "conversation, which has its own prefix; pass fork_from or "
                             "prefix_id/prefix_tokens, not both")
        if self._chain is None:
            self._chain = (SessionChain.fork(fork_from, self.session_id) if fork_from
                           is not None else SessionChain(self.session_id,
                                                         self._state.block_size,
                                                         prefix_id, prefix_tokens))
        model = self._pick_model(model)
        chain = self._chain
        before = chain.num_tokens
        prompt = chain.add_input(self._turn, input_tokens, summary_tokens)

        def build(turn: int, allowed: int) -> LLMRequest:
            return self._request(turn, model, prompt, allowed,
                                 output_tokens_hint=output_tokens, last_call=last_call,
                                 last_turn=last_turn, context_before=before, tool_hint=tool,
                                 tool_hint_s=tool_s, features=features,
                                 program_calls_hint=program_calls)

        done = await self._exchange(model, prompt.num_tokens, output_tokens, build)
        chain.add_output(done)
        return _reply(done)

    def fork_point(self) -> SessionChain:
        """A snapshot of this step's counted conversation, for subagents to fork from
        (`chat_tokens(fork_from=...)`). Raises ValueError before the first counted call."""
        if self._chain is None:
            raise ValueError(f"session {self.session_id!r} has no counted conversation "
                             "to fork yet; call chat_tokens first")
        return SessionChain.fork(self._chain, self.session_id)

    async def wait_tool(self, tool: str, seconds: float) -> None:
        """A counted tool call, as a trace describes one: wait `seconds` of run time
        (`seconds x time_scale` wall seconds) and tell the scheduler the tool took
        exactly that."""
        await asyncio.sleep(seconds * self._state.time_scale)
        self._backend.tool_finished(self.session_id, tool, seconds, None)

    async def wait_on(self, tool: str, work: Awaitable[Any]) -> Any:
        """A counted tool call that lasts until `work` completes (a step waiting on the
        subagents it spawned): tell the scheduler the tool took the run seconds that
        passed (wall seconds on the program's clock / time scale, as `call_tool`
        reports). Returns what `work` returns."""
        state = self._state
        started = state.clock()
        result = await work
        self._backend.tool_finished(
            self.session_id, tool, max(0.0, state.clock() - started) / state.time_scale, None)
        return result

    async def call_tool(self, call: dict[str, Any]) -> ToolResult:
        """Run one tool call of the model's. A name the step did not declare, unknown
        arguments and every tool failure come back as an error result the model can
        read and recover from (toolmgr.ToolManager.call), never as an exception.

        With the journal on, the call's idempotency key is (program, step, turn, call
        id); a call an earlier attempt journaled returns its journaled result. The
        exceptions, which fail the step: ToolInDoubtError (a side-effecting call that
        may have run but whose result was never journaled) and JournalDivergenceError
        (runtime.journal.tool_calls)."""
        self._state.check_running("run a tool")
        function = call.get("function") or {}
        name = function.get("name") or call.get("name")
        call_id = call.get("id") or f"{self.session_id}:tool{self._tool_index}"
        self._tool_index += 1
        arguments = function.get("arguments", call.get("arguments", {}))
        key = ToolKey(self.program_id, self.step_id, self._turn, str(call_id))
        declared = name in self._declared and name in self._tools.registry
        spec = self._tools.registry.get(name).spec if declared else None
        with tracing.tracer().start_as_current_span(f"execute_tool {name}") as span:
            span.set_attributes({tracing.OPERATION: "execute_tool", tracing.TOOL_NAME: str(name),
                                 tracing.TOOL_CALL_ID: call_id})
            result = await journaled_call(
                self._state.journal, key, str(name), arguments, spec,
                lambda: self._tools.call(name, arguments, call_id, clock=self._state.clock,
                                         program_id=self.program_id, allowed=self._declared))
            record_tool_span(span, result)
            if result.executor == REPLAYED:
                span.set_attribute("agentrt.tool.replayed", True)
        if result.executor and result.executor != REPLAYED:  # it ran (not rejected, not replayed)
            spec, scale = self._tools.registry.get(name).spec, self._state.time_scale
            prior = spec.duration_prior_s
            self._backend.tool_finished(self.session_id, name, result.duration_s / scale,
                                        None if prior is None else prior / scale)
        state = self._state
        state.tool_calls += 1
        state.tool_errors += 0 if result.ok else 1
        state.tool_time_s += result.duration_s
        return result

    async def call_tools(self, calls: list[dict[str, Any]]) -> list[ToolResult]:
        return list(await asyncio.gather(*(self.call_tool(c) for c in calls)))

    def tokenizer_for(self, model: str):
        """The tokenizer whose ids name `model`'s prompts (see runner.tokenizers)."""
        for_model = getattr(self._tokenizer, "for_model", None)
        return for_model(model) if for_model is not None else self._tokenizer

    # -- internals -----------------------------------------------------------------
    def _tool_names(self, tools: list | None) -> list[str]:
        if tools is None:
            return list(self._declared)
        names = [t if isinstance(t, str) else t.name for t in tools]
        undeclared = [n for n in names if n not in self._declared]
        if undeclared:
            raise UndeclaredToolError(
                f"step {self._step_name!r} offered tools {undeclared} to the model without "
                f"declaring them; add them to @step(tools=[...])")
        return names

    def _pick_model(self, model: str | None) -> str:
        model = model or self._model or self._state.default_model
        if model not in self._state.served_models:
            raise ValueError(f"model {model!r} is not served by this runtime; served: "
                             f"{list(self._state.served_models)} (set RuntimeConfig.model)")
        return model

    async def _exchange(self, model: str, prompt_tokens: int, max_tokens: int,
                        build: Callable[[int, int], LLMRequest]) -> RequestDone:
        """Reserve the call's worst case, send `build(turn, allowed max_tokens)` under a
        chat span, settle the budget with the actual usage."""
        self._state.check_running("call the model")
        reservation = self._state.ledger.reserve(model, prompt_tokens, max_tokens)
        with tracing.tracer().start_as_current_span(
                f"chat {model}", kind=otel.SpanKind.CLIENT) as span:
            request = build(self._turn, reservation.max_tokens)
            self._turn += 1
            span.set_attributes({
                tracing.OPERATION: "chat", tracing.REQUEST_MODEL: model,
                tracing.REQUEST_MAX_TOKENS: reservation.max_tokens,
                tracing.CONVERSATION_ID: self.session_id,
                "agentrt.request.id": request.request_id,
            })
            try:
                done = await self._send(request)
            except _Aborted as aborted:
                # Sent to an engine: charged the prompt it was given; still queued: free.
                if aborted.dispatched:
                    self._state.ledger.settle(reservation, request.prompt_tokens, 0)
                else:
                    self._state.ledger.cancel(reservation)
                raise aborted.cancellation from None
            except BaseException:
                self._state.ledger.cancel(reservation)
                raise
            self._state.ledger.settle(reservation, done.prompt_tokens, done.output_tokens)
            self._record(span, request, done)
            if done.finish_reason == "error":
                span.set_attribute(tracing.ERROR_TYPE, "LLMCallError")
                span.set_status(otel.Status(otel.StatusCode.ERROR, done.error or ""))
                raise LLMCallError(f"LLM call {request.request_id!r} on {done.worker_id} "
                                   f"failed: {done.error}")
        return done

    def _request(self, turn: int, model: str, prompt: TokenChain, max_tokens: int,
                 **fields: Any) -> LLMRequest:
        state = self._state
        return LLMRequest(
            request_id=request_id(self.session_id, turn),
            program_id=state.program_id, session_id=self.session_id, model=model,
            prefix=prompt, max_tokens=max_tokens, arrival=state.clock(),
            program_arrival=state.arrival, tenant=state.tenant, agent=state.name,
            trace_context=tracing.inject(), **fields)

    async def _send(self, request: LLMRequest) -> RequestDone:
        state = self._state
        state.inflight.add(request.request_id)
        try:
            return await self._backend.chat(request)
        except asyncio.CancelledError as cancelled:
            dispatched = await asyncio.shield(self._backend.abort(request.request_id))
            raise _Aborted(bool(dispatched), cancelled) from None
        finally:
            state.inflight.discard(request.request_id)

    def _record(self, span: otel.Span, request: LLMRequest, done: RequestDone) -> None:
        state = self._state
        wait = max(0.0, done.first_scheduled_at - done.queued_at)
        state.llm_calls += 1
        state.prompt_tokens += done.prompt_tokens
        state.cached_tokens += done.cached_tokens
        state.prefilled_tokens += done.prefilled_tokens
        state.output_tokens += done.output_tokens
        state.queue_wait_s += wait
        span.set_attributes({
            tracing.INPUT_TOKENS: done.prompt_tokens,
            tracing.OUTPUT_TOKENS: done.output_tokens,
            tracing.CACHE_READ_TOKENS: done.cached_tokens,
            tracing.RESPONSE_FINISH: [done.finish_reason],
            "agentrt.worker.id": done.worker_id,
            "agentrt.queue_wait_s": wait,
            "agentrt.prefilled_tokens": done.prefilled_tokens,
            "agentrt.preemptions": done.preemptions,
        })
        span.add_event("kv_prefix_lookup", {"cached_tokens": done.cached_tokens,
                                             "prompt_tokens": done.prompt_tokens})
        if done.provider:
            host, _, port = done.server.rpartition(":")
            span.set_attributes({tracing.PROVIDER: done.provider,
                                 tracing.SERVER_ADDRESS: host,
                                 tracing.SERVER_PORT: int(port) if port.isdigit() else 0,
                                 tracing.RESPONSE_MODEL: done.response_model,
                                 tracing.RESPONSE_ID: done.response_id})
        if done.tool_calls:
            span.add_event("tool_calls", {"names": [c.name for c in done.tool_calls]})
        if done.kv_pin is not None:
            add_pin_event(span, done.kv_pin, state.to_wall)


def add_pin_event(span: otel.Span, note: PinNote,
                   to_wall: Callable[[float], float] | None) -> None:
    """The core's TTL decision for the session while the tool runs, stamped when it
    was made (run seconds; see `PinNote`). A pin held until the next turn has no
    `ttl_s` (JSON has no infinity) and `until_next_turn` true."""
    attributes = {
        "action": note.action, "reason": note.reason,
        "tool": note.tool, "duration_source": note.duration_source,
        "duration_samples": note.duration_samples, "predicted_s": note.predicted_s,
        "blocks": note.blocks, "worker_id": note.worker_id,
        "until_next_turn": math.isinf(note.ttl_s),
    }
    if math.isfinite(note.ttl_s):
        attributes["ttl_s"] = note.ttl_s
    stamp = to_wall(note.decided_at) if to_wall is not None else None
    span.add_event("kv_pin", attributes,
                   timestamp=int(stamp * 1e9) if stamp is not None else None)


def _reply(done: RequestDone) -> ChatReply:
    return ChatReply(
        text=done.text,
        tool_calls=[c.to_openai() for c in done.tool_calls],
        finish_reason=done.finish_reason,
        usage=Usage(prompt_tokens=done.prompt_tokens, completion_tokens=done.output_tokens,
                    cached_tokens=done.cached_tokens),
    )


class SyncStepContext:
    """What a plain (non-async) step function receives: the same calls, blocking.
    The step runs in a worker thread; its calls run on the runner's event loop."""

    def __init__(self, ctx: RunnerStepContext, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop
        self.program_id, self.step_id, self.session_id = ctx.program_id, ctx.step_id, ctx.session_id

    def _wait(self, coro: Awaitable) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def chat(self, messages, tools=None, model=None, max_tokens=None, **sampling) -> ChatReply:
        return self._wait(self._ctx.chat(messages, tools, model, max_tokens, **sampling))

    def chat_tokens(self, input_tokens: int, output_tokens: int, **options: Any) -> ChatReply:
        return self._wait(self._ctx.chat_tokens(input_tokens, output_tokens, **options))

    def wait_tool(self, tool: str, seconds: float) -> None:
        return self._wait(self._ctx.wait_tool(tool, seconds))

    def call_tool(self, call: dict[str, Any]) -> ToolResult:
        return self._wait(self._ctx.call_tool(call))

    def sample(self, messages: list[dict[str, Any]], **verify: Any) -> Sample:
        return self._wait(self._ctx.sample(messages, **verify))

    @property
    def plan(self) -> StepPlan | None:
        return self._ctx.plan

    def call_tools(self, calls: list[dict[str, Any]]) -> list[ToolResult]:
        return self._wait(self._ctx.call_tools(calls))
