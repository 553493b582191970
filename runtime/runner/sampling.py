"""`ctx.sample(messages, **verify)`: sample a planned step until its verifier passes.

    ┌─▶ portfolio.choose(step) ─▶ (model, k)
    │   reserve k worst cases in the ledger (fewer if they do not fit: the largest
    │   option k that does; none: wait for calls in flight, or stop)
    │   k forks of one prompt ─▶ scheduler.submit_forks: one worker; the engine prefills
    │                            the prompt once and the other k-1 read its KV
    │   settle each call with its usage; run the verifier on every sample (concurrently)
    └── portfolio.observe(verdicts, lengths) ── no sample passed: next attempt

Fork j of attempt a is request `{session}~{j}#{a}` of session `{session}~{j}`: a retry
goes where the same fork ran before (sticky routing), so it also finds the prompt
cached. The first passing sample (lowest j) is returned.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as otel

from agentrt.kvcache.prefix import TokenChain
from agentrt.programs.context import Usage
from agentrt.runtime import tracing
from agentrt.runtime.core.budget import BudgetExhausted, Reservation
from agentrt.runtime.core.messages import RequestDone
from agentrt.runtime.core.planner.reserve import reserve_samples
from agentrt.runtime.runner.errors import LLMCallError
from agentrt.runtime.core.session_chain import request_id
from agentrt.runtime.runner.portfolio import StepPlan

if TYPE_CHECKING:
    from agentrt.runtime.runner.step_context import RunnerStepContext



@dataclass(slots=True)
class Sample:
    """The sample that passed: its text, who wrote it and what the verifier said."""

    text: str
    model: str
    attempt: int
    index: int
    """Which of the attempt's k forks."""
    verdict: Any
    """The verifier's output."""
    usage: Usage
    worker_id: str


@dataclass(slots=True)
class _Verified:
    passed: bool
    output: Any


class Sampler:
    """Draws the samples of one planned step through its context."""

    def __init__(self, ctx: RunnerStepContext, verifier: str | None, max_tokens: int) -> None:
        self.ctx = ctx
        self.verifier = verifier
        self.max_tokens = max_tokens
        self.plan: StepPlan | None = None
        self.sessions: list[str] = []  # fork sessions used, to release at the step's end

    async def sample(self, messages: list[dict[str, Any]], verify: dict[str, Any]) -> Sample:
        ctx = self.ctx
        state, portfolio = ctx._state, ctx._state.portfolio
        tokens = ctx.tokenizer_for(ctx._pick_model(None)).encode_prompt(messages, None)
        prompt = TokenChain.from_tokens(tokens, block_size=state.block_size)
        while True:
            self.plan = plan = await portfolio.choose(ctx.step_id)
            held = self._reserve(plan.model, len(tokens), plan.k)
            if not held:
                if not portfolio.state.running:
                    raise BudgetExhausted(
                        f"budget exhausted: no sample of {plan.model} for step "
                        f"{ctx.step_id!r} fits the budget left; raise the program's budget")
                await portfolio.outcome()
                continue
            portfolio.dispatched(ctx.step_id, plan.model, len(held))
            started = state.clock()
            try:
                dones = await self._forks(plan, prompt, messages, held)
            except BaseException:
                portfolio.abandoned(ctx.step_id)
                raise
            verdicts = await asyncio.gather(*(self._verify(d, verify) for d in dones))
            portfolio.observe(ctx.step_id, plan.model, [v.passed for v in verdicts],
                              [d.output_tokens for d in dones])
            self._record(plan, dones, verdicts, state.clock() - started)
            for j, (done, verdict) in enumerate(zip(dones, verdicts)):
                if verdict.passed:
                    return Sample(done.text, plan.model, plan.attempt, j, verdict.output,
                                  Usage(done.prompt_tokens, done.output_tokens,
                                        done.cached_tokens), done.worker_id)

    # -- budget --------------------------------------------------------------------------
    def _reserve(self, model: str, prompt_tokens: int, k: int) -> list[Reservation]:
        """Up to k full-length reservations; keeps the largest count that is an
        option's k (the planner's problem knows which)."""
        led, cap = self.ctx._state.ledger, self.max_tokens
        return reserve_samples(led, model, prompt_tokens, cap, k,
                               self.ctx._state.portfolio.problem.ks,
                               led.price(model).cost(prompt_tokens, cap))

    # -- the forks -----------------------------------------------------------------------
    async def _forks(self, plan: StepPlan, prompt: TokenChain, messages: list[dict],
                     held: list[Reservation]) -> list[RequestDone]:
        ctx, state = self.ctx, self.ctx._state
        requests = []
        for j, r in enumerate(held):
            session = f"{ctx.session_id}~{j}"
            if session not in self.sessions:
                self.sessions.append(session)
            request = ctx._request(plan.attempt, plan.model, prompt, r.max_tokens,
                                   messages=list(messages))
            request.session_id, request.request_id = session, request_id(session,
                                                                         plan.attempt)
            request.fork_of = requests[0].request_id if requests else None
            requests.append(request)
        tracer = tracing.tracer()
        with tracer.start_as_current_span(f"sample {plan.model}") as span:
            span.set_attributes({"agentrt.sample.k": len(requests),
                                 "agentrt.sample.attempt": plan.attempt,
                                 tracing.REQUEST_MODEL: plan.model})
            chats = [tracer.start_span(f"chat {plan.model}", kind=otel.SpanKind.CLIENT)
                     for _ in requests]
            ids = [r.request_id for r in requests]
            state.inflight.update(ids)
            try:
                dones = await ctx._backend.chat_forks(requests)
            except BaseException:
                sent = await asyncio.shield(asyncio.gather(
                    *(ctx._backend.abort(i) for i in ids)))
                for r, request, dispatched in zip(held, requests, sent):
                    if dispatched:  # reached an engine: charged the prompt it was given
                        state.ledger.settle(r, request.prompt_tokens, 0)
                    else:
                        state.ledger.cancel(r)
                for chat in chats:
                    chat.end()
                raise
            finally:
                state.inflight.difference_update(ids)
            for r, request, done, chat in zip(held, requests, dones, chats):
                state.ledger.settle(r, done.prompt_tokens, done.output_tokens)
                if done.finish_reason == "error":
                    chat.set_status(otel.Status(otel.StatusCode.ERROR, done.error or ""))
                chat.set_attributes({tracing.OPERATION: "chat",
                                     tracing.REQUEST_MODEL: plan.model,
                                     tracing.REQUEST_MAX_TOKENS: r.max_tokens,
                                     tracing.CONVERSATION_ID: request.session_id,
                                     "agentrt.request.id": request.request_id})
                ctx._record(chat, request, done)
                chat.end()
            span.set_attribute("agentrt.sample.workers",
                               sorted({d.worker_id for d in dones}))
        failed = [d for d in dones if d.finish_reason == "error"]
        if failed:
            raise LLMCallError(f"sample {failed[0].request_id!r} on {failed[0].worker_id} "
                               f"failed: {failed[0].error}")
        return dones

    # -- verification --------------------------------------------------------------------
    async def _verify(self, done: RequestDone, verify: dict[str, Any]) -> _Verified:
        if self.verifier is None:  # no verifier: every sample passes
            return _Verified(True, None)
        ctx, state = self.ctx, self.ctx._state
        call_id = f"{done.request_id}:verify"
        with tracing.tracer().start_as_current_span(f"execute_tool {self.verifier}") as span:
            span.set_attributes({tracing.OPERATION: "execute_tool",
                                 tracing.TOOL_NAME: self.verifier,
                                 tracing.TOOL_CALL_ID: call_id})
            result = await ctx._tools.call(self.verifier, {"sample": done.text, **verify},
                                           call_id, clock=state.clock)
            passed = result.ok and _passed(result.output)
            span.set_attribute("agentrt.verifier.passed", passed)
            if not result.ok:
                span.set_status(otel.Status(otel.StatusCode.ERROR, result.error or ""))
        state.tool_calls += 1
        state.tool_errors += 0 if result.ok else 1
        state.tool_time_s += result.duration_s
        return _Verified(passed, result.output if result.ok else result.error)

    def _record(self, plan: StepPlan, dones: list[RequestDone], verdicts: list[_Verified],
                seconds: float) -> None:
        self.ctx._state.attempts.append({
            "step": self.ctx.step_id, "attempt": plan.attempt, "model": plan.model,
            "k": len(dones), "passed": sum(v.passed for v in verdicts),
            "workers": sorted({d.worker_id for d in dones}),
            "cached_tokens": [d.cached_tokens for d in dones],
            "estimate": plan.estimate, "seconds": seconds})


def _passed(output: Any) -> bool:
    """A verifier says pass with True, or a dict whose "passed" is True."""
    if isinstance(output, dict):
        return output.get("passed") is True
    return output is True
