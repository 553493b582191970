"""Running one program: its graph, its steps, its budget, its deadline, its spans.

`execute_program` is what a program runner does for each program it is given. It is
plain asyncio; the Ray actor around it only supplies the backend and collects spans.

    (the caller opens the program's invoke_workflow span and passes its context)
    build graph ─▶ admission ─▶ run_graph (ready steps concurrently) ─▶ ProgramResult
                      │  step: invoke_agent span, ctx.chat / ctx.call_tool / ctx.sample,
                      │        release its sessions
                      │  tool node: execute_tool span
                      └─ deadline: cancel everything in flight (LLM calls aborted)

Journal (`journal`, runtime.journal): a step an earlier attempt journaled is not run
again (its journaled result feeds its successors), every step's result is journaled
when it returns, tool calls go through `journal.tool_calls`, and the attempt's outcome
is journaled at its end (not final when it ended on a tool call in doubt, so a later
resume runs the program again).

Admission: when steps declare choices (`@step(candidates=...)`) and the runtime plans
(`planning`), a `PortfolioSession` plans the program's start; a program it judges
infeasible ends at once as `rejected` with the estimate and the reason.
"""
from __future__ import annotations

import asyncio
import inspect
import zlib
from typing import Any, Callable

import msgpack
import numpy as np
from opentelemetry import context as otel_context

from agentrt.programs import ProgramDef, StepNode, run_graph
from agentrt.runtime import tracing
from agentrt.runtime.runner.choices import PlanningSettings, planned_steps, planning_problem
from agentrt.runtime.runner.step_context import ChatBackend, RunningProgram, RunnerStepContext, SyncStepContext
from agentrt.runtime.runner.tool_hooks import program_tools, record_tool_span
from agentrt.runtime.core.budget import BudgetExhausted, BudgetLedger, Price
from agentrt.runtime.journal.errors import ToolInDoubtError
from agentrt.runtime.journal.program_journal import ProgramJournal
from agentrt.runtime.journal.records import ToolKey
from agentrt.runtime.journal.tool_calls import journaled_call
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.runner.errors import SchedulerLost
from agentrt.runtime.runner.portfolio import Admission, PlanStopped, PortfolioSession
from agentrt.runtime.results import (
    BUDGET_EXHAUSTED, DEADLINE_MISSED, FAILED, REJECTED, STOPPED, SUCCEEDED, ProgramResult,
)
from agentrt.toolmgr import ToolManager


async def execute_program(program: ProgramDef, args: tuple, kwargs: dict[str, Any], *,
                          program_id: str, arrival: float, backend: ChatBackend,
                          tools: ToolManager, tokenizer: SimpleTokenizer,
                          default_model: str, served_models: tuple[str, ...],
                          block_size: int, prices: dict[str, Price],
                          clock: Callable[[], float],
                          parent: dict[str, str] | None = None,
                          planning: PlanningSettings | None = None,
                          time_scale: float = 1.0,
                          to_wall: Callable[[float], float] | None = None,
                          journal: ProgramJournal | None = None) -> ProgramResult:
    """Run one program to its end and return its result. The backend hears of the
    program's start first and of its end last, whatever its status. With `journal`,
    the program resumes from what earlier attempts journaled and journals this one."""
    graph = program.build(*args, **kwargs)
    options = program.options
    for tool in graph.tools():
        if tool.name not in tools.registry:
            tools.registry.add(tool.registered)
    state = RunningProgram(
        program_id=program_id, name=program.name, tenant=options.tenant, arrival=arrival,
        ledger=BudgetLedger(options.budget_tokens, options.budget_usd, prices),
        default_model=default_model, served_models=served_models, block_size=block_size,
        clock=clock, time_scale=time_scale, to_wall=to_wall, journal=journal)
    admission = _admit(graph, state, options, planning)
    if admission is not None and not admission.admitted:
        result = _result(state, REJECTED, admission.reason, None, None, clock())
        result.success_estimate = admission.estimate
        result.plan_seconds = list(state.portfolio.plan_seconds)
        return await _journal_outcome(journal, result, final=True)
    async with program_tools(tools, program_id, graph.tools()):  # resources, cancellation
        try:
            await backend.program_started(program_id)
        except SchedulerLost as lost:  # not final: a resume runs the program again
            lost_result = _result(state, FAILED, str(lost), None, None, clock())
            return await _journal_outcome(journal, lost_result, final=False)
        try:
            result, final = await _run_program(graph, state, options, admission, backend,
                                               tools, tokenizer, parent)
            state.ended = result.status
            if result.status != SUCCEEDED and getattr(backend, "lost", False):
                final = False  # the scheduler died under it: a resume runs it again
        finally:
            state.ended = state.ended or "cancelled"  # steps still in threads: fenced
            await asyncio.shield(backend.program_finished(program_id))
    return await _journal_outcome(journal, result, final)


async def _journal_outcome(journal: ProgramJournal | None, result: ProgramResult,
                           final: bool) -> ProgramResult:
    if journal is None:
        return result
    result.attempt = journal.attempt
    result.steps_replayed = sorted(journal.steps_replayed)
    result.tool_calls_replayed = journal.tool_calls_replayed
    result.journal_error = await asyncio.shield(journal.finish(result, final))
    return result


async def _run_program(graph, state: RunningProgram, options, admission, backend,
                       tools: ToolManager, tokenizer: SimpleTokenizer,
                       parent: dict[str, str] | None) -> tuple[ProgramResult, bool]:
    """The program's result, and whether it is final (False: it ended on a tool call
    in doubt, see runtime.journal.tool_calls)."""
    clock = state.clock
    journal = state.journal

    async def run_node(node: StepNode, node_args: tuple, node_kwargs: dict) -> Any:
        if journal is not None:
            found, result = journal.replayed_step(node.node_id)
            if found:
                _replayed_span(node)
                state.steps_done.append(node.node_id)
                if state.portfolio is not None:
                    state.portfolio.finished(node.node_id)
                return result
        state.steps_running.add(node.node_id)
        if node.kind == "tool":
            result = await _run_tool_node(node, node_args, node_kwargs, state, tools)
        else:
            result = await _run_step(node, node_args, node_kwargs, state, backend, tools,
                                     tokenizer)
        if journal is not None:
            await journal.record_step(node.node_id, result)
        state.steps_running.discard(node.node_id)
        state.steps_done.append(node.node_id)  # kept even if the deadline cuts the rest
        if state.portfolio is not None:
            state.portfolio.finished(node.node_id)
        return result

    # Steps become children of the caller's invoke_workflow span (another process).
    token = otel_context.attach(tracing.extract(parent))
    try:
        status, error, failed, outcome = await _run_with_deadline(
            run_graph(graph, run_node), options.deadline_s, state.arrival, clock)
    finally:
        otel_context.detach(token)
    result = _result(state, status, error, failed, outcome, clock())
    result.steps_cancelled = sorted(state.steps_running - {failed})
    result.success_estimate = admission.estimate if admission is not None else None
    if state.portfolio is not None:
        result.plan_seconds = list(state.portfolio.plan_seconds)
    in_doubt = outcome is not None and isinstance(outcome.exception, ToolInDoubtError)
    return result, not in_doubt


def _replayed_span(node: StepNode) -> None:
    """A step answered from the journal still shows in the trace, as a span that says so."""
    name = f"execute_tool {node.name}" if node.kind == "tool" else f"invoke_agent {node.name}"
    with tracing.tracer().start_as_current_span(name) as span:
        span.set_attributes({tracing.OPERATION: "execute_tool" if node.kind == "tool"
                             else "invoke_agent", "agentrt.step.id": node.node_id,
                             "agentrt.step.replayed": True})


def _admit(graph, state: RunningProgram, options, planning: PlanningSettings | None
           ) -> Admission | None:
    """Start the program's planner session and judge the program; None when nothing
    is planned (no settings, or no step declares candidates)."""
    if planning is None or not planned_steps(graph):
        return None
    deadline = None if options.deadline_s is None else state.arrival + options.deadline_s
    seed = [planning.seed, zlib.crc32(state.program_id.encode())]
    session = PortfolioSession(planning_problem(graph, planning),
                               planning.make_planner(), state.ledger,
                               options.budget_usd, deadline, state.clock,
                               np.random.default_rng(seed))
    state.portfolio = session
    return session.admit(planning.min_success)


async def _run_with_deadline(coro, deadline_s: float | None, arrival: float,
                             clock: Callable[[], float]):
    """(status, error, failed step, graph outcome or None)."""
    timeout = None if deadline_s is None else max(0.0, arrival + deadline_s - clock())
    try:
        outcome = await asyncio.wait_for(coro, timeout)
    except asyncio.TimeoutError:
        return DEADLINE_MISSED, f"deadline of {deadline_s}s passed", None, None
    if outcome.status == "succeeded":
        return SUCCEEDED, None, None, outcome
    status = (BUDGET_EXHAUSTED if isinstance(outcome.exception, BudgetExhausted) else
              STOPPED if isinstance(outcome.exception, PlanStopped) else FAILED)
    return status, outcome.error, outcome.failed_node, outcome


async def _run_step(node: StepNode, args: tuple, kwargs: dict, state: RunningProgram,
                    backend: ChatBackend, tools: ToolManager,
                    tokenizer: SimpleTokenizer) -> Any:
    ctx = RunnerStepContext(state, node.node_id, node.name, tuple(node.tools), node.model,
                            node.max_tokens, backend, tools, tokenizer,
                            verifier=getattr(node.target.options, "verifier", None))
    fn = node.target.fn
    with tracing.tracer().start_as_current_span(f"invoke_agent {node.name}") as span:
        span.set_attributes({tracing.OPERATION: "invoke_agent", tracing.AGENT_NAME: node.name,
                             tracing.CONVERSATION_ID: ctx.session_id,
                             "agentrt.step.id": node.node_id})
        try:
            if inspect.iscoroutinefunction(fn):
                return await fn(ctx, *args, **kwargs)
            sync_ctx = SyncStepContext(ctx, asyncio.get_running_loop())
            return await asyncio.to_thread(fn, sync_ctx, *args, **kwargs)
        finally:
            await asyncio.shield(asyncio.gather(
                *(backend.release_session(session) for session in ctx.sessions)))


async def _run_tool_node(node: StepNode, args: tuple, kwargs: dict, state: RunningProgram,
                         tools: ToolManager) -> Any:
    registered = node.target.registered
    # Partial: parameters filled by resource pools are not the program's to give.
    bound = inspect.signature(registered.fn).bind_partial(*args, **kwargs)
    call_id = f"{state.program_id}/{node.node_id}"
    with tracing.tracer().start_as_current_span(f"execute_tool {node.name}") as span:
        span.set_attributes({tracing.OPERATION: "execute_tool",
                             tracing.TOOL_NAME: registered.spec.name,
                             tracing.TOOL_CALL_ID: call_id})
        # No size cap: a tool node's output is data for the program's steps.
        arguments = dict(bound.arguments)
        spec = registered.spec
        # The node's result is journaled as a step; the call itself only when it has
        # side effects (its in-flight marker must precede it).
        journal = state.journal if spec.side_effects else None
        result = await journaled_call(
            journal, ToolKey(state.program_id, node.node_id, 0, node.node_id), spec.name,
            arguments, spec,
            lambda: tools.call(spec.name, arguments, call_id, clock=state.clock,
                               program_id=state.program_id, max_result_bytes=None))
        record_tool_span(span, result)
        state.tool_calls += 1
        state.tool_time_s += result.duration_s
        if not result.ok:
            state.tool_errors += 1
            raise RuntimeError(f"tool {registered.spec.name!r} failed: {result.error}")
    return result.output


def _result(state: RunningProgram, status: str, error: str | None, failed: str | None,
            outcome, finished_at: float) -> ProgramResult:
    return ProgramResult(
        program_id=state.program_id, name=state.name, tenant=state.tenant, status=status,
        arrival=state.arrival, finished_at=finished_at, error=error, failed_step=failed,
        outputs=_plain(outcome.outputs) if outcome is not None else None,
        steps_done=sorted(state.steps_done),
        llm_calls=state.llm_calls, prompt_tokens=state.prompt_tokens,
        cached_tokens=state.cached_tokens, prefilled_tokens=state.prefilled_tokens,
        output_tokens=state.output_tokens, queue_wait_s=state.queue_wait_s,
        tool_calls=state.tool_calls, tool_errors=state.tool_errors,
        tool_time_s=state.tool_time_s, spent_usd=state.ledger.spent_usd,
        attempts=list(state.attempts))


def _plain(value: Any) -> Any:
    """Outputs travel as msgpack; anything msgpack cannot carry is sent as its repr."""
    try:
        msgpack.packb(value, use_bin_type=True)
        return value
    except (TypeError, ValueError):
        return repr(value)
