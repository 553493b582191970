"""@programs in the simulator: the runner's own code on the virtual clock, served by
simulated engines through the cluster control."""
from __future__ import annotations

import asyncio

import pytest

from agentrt import program, step, tool
from agentrt.runtime.engines.simulated.responder import ScriptedResponder
from agentrt.runtime.sim.loop import Stalled
from agentrt.runtime.sim.programs import ProgramSimulation
from tests.sim.builders import plain_config

TOOL_S = 3.0


@tool(executor="inline")
async def build(target: str) -> str:
    await asyncio.sleep(TOOL_S)  # virtual seconds
    return f"built {target}"


def script(request, rng):
    if len(request.messages) < 3:
        return {"text": "", "tool_calls": [{"name": "build", "arguments": {"target": "x"}}]}
    return {"text": "done " * int(rng.random() * 20)}


@step(tools=[build])
async def agent(ctx, task: str):
    messages = [{"role": "user", "content": task}]
    while True:
        reply = await ctx.chat(messages)
        messages.append(reply.message)
        if not reply.tool_calls:
            return reply.text
        for result in await ctx.call_tools(reply.tool_calls):
            messages.append(result.to_message())


@program(deadline_s=600)
def coder(task: str):
    return agent(task)


@program(deadline_s=2.0)
def hurried(task: str):
    return agent(task)


def simulate(prog=coder, n=12, **config):
    inputs = [{"task": f"task {i} " + "word " * (200 + 50 * i)} for i in range(n)]
    sim = ProgramSimulation(prog, inputs, plain_config(**{"workers": 2, "concurrency": 6,
                                                          **config}),
                            responder=ScriptedResponder(script))
    return sim, sim.run_programs()


def summary(results):
    return [(r.program_id, r.status, r.arrival, r.finished_at, r.llm_calls,
             r.cached_tokens, r.outputs) for r in results]


def test_programs_run_to_their_end_on_the_virtual_clock():
    sim, results = simulate()
    assert [r.status for r in results] == ["succeeded"] * 12
    assert all(r.llm_calls == 2 and r.tool_calls == 1 for r in results)
    # the tool's three virtual seconds are in every completion time, and little else
    assert all(TOOL_S < r.completion_time < TOOL_S + 1.0 for r in results)
    assert all(r.cached_tokens > 0 for r in results)  # the second turn hit the cache
    durations = sim.control.retention.durations
    assert durations.count("build") == 12 and durations.mean("build") == TOOL_S
    assert sim.result.unfinished == 0 and sim.result.jct.size == 12


def test_the_same_inputs_give_the_same_run():
    assert summary(simulate()[1]) == summary(simulate()[1])


def test_fused_decode_runs_change_nothing_with_programs_awaiting_timers():
    # Tools sleep on loop timers: fused runs must stop where a timer may submit work.
    assert summary(simulate(fuse_decode=True)[1]) == summary(simulate(fuse_decode=False)[1])


def test_a_deadline_cancels_the_program_at_its_virtual_time_and_its_calls():
    sim, results = simulate(hurried, n=3)
    assert [r.status for r in results] == ["deadline_missed"] * 3
    assert all(r.finished_at == pytest.approx(r.arrival + 2.0) for r in results)
    assert all(not engine.has_work() for engine in sim.engines.values())


def test_a_plain_function_step_is_refused_before_anything_runs():
    @step
    def plain(ctx, task):
        return task

    @program
    def uses_plain(task):
        return plain(task)

    with pytest.raises(ValueError, match="step 'plain' is a plain function.*async def"):
        ProgramSimulation(uses_plain, [{"task": "x"}], plain_config())


def test_a_program_waiting_on_what_never_comes_stops_the_run_with_a_reason():
    @step
    async def waits(ctx, task):
        await asyncio.Event().wait()

    @program
    def stuck(task):
        return waits(task)

    with pytest.raises(Stalled, match="every program waits and nothing is scheduled"):
        ProgramSimulation(stuck, [{"task": "x"}], plain_config()).run_programs()


@step(tools=[])
async def huge(ctx, words: int):
    reply = await ctx.chat([{"role": "user", "content": "w " * words}])
    return reply.text


@program
def asks(words: int):
    return huge(words)


def test_calls_an_engine_refuses_fail_their_programs_and_free_their_places():
    """A prompt beyond the worker's KV: the step gets an error naming the limit. Twelve
    of them on one worker (dispatch window 8) leave its window free for the next."""
    inputs = [{"words": 5000}] * 12 + [{"words": 50}]
    config = plain_config(workers=1, kv_blocks=256, concurrency=13, dispatch_window=8)
    results = ProgramSimulation(asks, inputs, config).run_programs()
    refused, fine = results[:12], results[12]
    assert all(r.status == "failed" for r in refused)
    assert all("LLMCallError" in r.error and "can never fit worker 'w0'" in r.error
               and "<= 4096" in r.error for r in refused)
    assert fine.status == "succeeded"
