"""RealtimeRun: program traces on a realtime engine through the cluster control (the
simulator's counterpart on the wall clock), here on InlineEngine: every program
finishes, each TTL policy's decisions reach the engine, failures end the run."""
from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.bench.realtime import RealtimeRun
from agentrt.runtime.engines.base import EngineRefused
from agentrt.runtime.engines.inline import InlineEngine
from agentrt.runtime.sim.config import SimConfig

pytestmark = pytest.mark.timeout(60)


def programs(n: int = 4, first: int = 200) -> list[ProgramSpec]:
    turns = [TurnSpec(first, 16, "bash", 0.02), TurnSpec(40, 16, "bash", 0.02), TurnSpec(40, 8)]
    return [ProgramSpec(f"p{i}", [StepSpec("main", list(turns))]) for i in range(n)]


def config(ttl: str | None, **extra) -> SimConfig:
    return SimConfig(workers=1, block_size=32, kv_blocks=64, ttl=ttl, queue="program_fcfs",
                     stealing=False, host_tier="off", concurrency=2, ramp_s=0.0, **extra)


class RecordingEngine(InlineEngine):
    """InlineEngine declaring `retain` and keeping the TTL decisions it is sent (it
    holds nothing itself)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.decisions: list[str] = []

    @property
    def info(self):
        info = super().info
        return replace(info, capabilities=replace(info.capabilities, retain=True))

    def retain(self, session_id, prefix, decision, now, program_id=None):
        self.decisions.append(decision.action)


@pytest.mark.parametrize("ttl", ["fixed", "continuum", "infercept", "agentrt", None])
def test_every_program_finishes_and_decisions_reach_the_engine(ttl):
    async def go():
        engine = RecordingEngine("w0", block_size=32, kv_blocks=64, latency_s=0.005)
        result = await RealtimeRun(programs(), config(ttl), [engine]).run(30)
        await engine.stop()
        return engine, result

    engine, result = asyncio.run(go())
    assert sorted(result.finished) == [f"p{i}" for i in range(4)]
    assert all(jct > 0 for jct in result.jct.values()) and len(result.calls) == 12
    # Two tool pauses per program; the last turn calls no tool.
    assert len(engine.decisions) == (0 if ttl is None else 8)
    assert sum(result.decided.values()) == len(engine.decisions)
    assert result.cached_fraction > 0  # later turns find their session's blocks


def test_a_refused_call_ends_the_run_with_the_error():
    async def go():
        engine = InlineEngine("w0", block_size=32, kv_blocks=8)  # 256 tokens
        try:
            await RealtimeRun(programs(first=400), config("agentrt"), [engine]).run(10)
        finally:
            await engine.stop()

    with pytest.raises(EngineRefused, match="can never fit"):
        asyncio.run(go())


def test_only_closed_loop_arrivals_and_realtime_engines():
    with pytest.raises(ValueError, match="closed-loop"):
        RealtimeRun(programs(), config("agentrt", arrival="poisson"), [])
