"""KV retention wired through the simulator: TTL decisions on tool calls, pins that
keep prefixes, release at step end, host reloads, admission and eviction hooks."""
from __future__ import annotations

import pytest

from agentrt.programs.workloads import generate
from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.engines.factory import wants_host_tier
from agentrt.runtime.sim.driver import Simulation
from tests.sim.builders import plain_config


def simulate(programs, **config) -> Simulation:
    sim = Simulation(programs, plain_config(**{"workers": 1, "seed": 3, **config}))
    sim.run()
    return sim


def agent(program_id: str, context: int, tool_s: float, turns: int = 2) -> ProgramSpec:
    """One step: a `context`-token first turn, then short turns after `tool_s` tools."""
    specs = [TurnSpec(input_tokens=context if k == 0 else 64, output_tokens=16,
                      tool="shell" if k < turns - 1 else None,
                      tool_duration=tool_s if k < turns - 1 else 0.0)
             for k in range(turns)]
    return ProgramSpec(program_id, [StepSpec("solve", specs)])


def background(n: int, context: int) -> list[ProgramSpec]:
    """Single-turn programs with unique prompts: traffic that evicts cached blocks."""
    return [ProgramSpec(f"bg{i}", [StepSpec("solve", [TurnSpec(context, 64)])])
            for i in range(n)]


def second_turn_cached(sim: Simulation) -> float:
    """Cached tokens of the first program's second call (requests in finish order)."""
    rec = sim.rec.requests
    prompts, cached = rec["prompt"], rec["cached"]
    return max(c for p, c in zip(prompts, cached) if p > 3000)


@pytest.mark.parametrize("ttl,hit", [(None, False), ("none", False), ("fixed", True),
                                     ("continuum", True), ("agentrt", True)])
def test_a_pin_keeps_the_sessions_prefix_through_the_tool_call(ttl, hit):
    # 400 blocks: the agent's ~3000-token context and the traffic cannot both stay
    # cached while it waits 1 s on its tool; the traffic keeps running meanwhile.
    programs = [agent("a", 3000, 1.0)] + background(6, 2500)
    sim = simulate(programs, kv_blocks=400, concurrency=3, ramp_s=0.0, ttl=ttl)
    assert (second_turn_cached(sim) >= 3000) == hit
    sim.engines["w0"].check_integrity()


def test_every_pin_is_released_when_its_step_ends():
    sim = simulate(generate("swe", 12, seed=2), workers=2, concurrency=12, kv_blocks=4000,
                   ttl="infercept", host_tier="on")  # preserve pins until the next turn
    assert sim.retention.decided.get("pin", 0) > 0
    for engine in sim.engines.values():
        assert len(engine.pins) == 0 and engine.kv.num_held_blocks == 0
        engine.check_integrity()


def test_reloads_from_the_host_tier_replace_recomputation():
    programs = generate("swe", 16, seed=4)
    plain = simulate(programs, workers=2, concurrency=16, kv_blocks=6000)
    tier = simulate(programs, workers=2, concurrency=16, kv_blocks=6000, host_tier="on")
    reloaded = sum(e.kv.stats.reloaded_tokens for e in tier.engines.values())
    assert reloaded > 0
    assert sum(tier.rec.requests["reprefilled"]) < sum(plain.rec.requests["reprefilled"]) / 10


def test_the_duration_model_learns_every_finished_tool():
    programs = generate("swe", 8, seed=5)
    sim = simulate(programs, workers=2, concurrency=8, ttl="continuum")
    tools = sum(1 for p in programs for s in p.steps for t in s.turns if t.tool)
    assert sum(sim.retention.durations.count(t) for t in sim.retention.durations.tools()) \
        == tools
    assert sum(sim.retention.decided.values()) == tools


def test_thunderagent_admission_holds_programs_until_a_tick_admits_them():
    programs = generate("swe", 10, seed=6)
    sim = simulate(programs, workers=2, concurrency=10, ttl="thunderagent",
                   admission_interval_s=2.0)
    # Arrivals at 0..ramp_s wait for the next tick (every 2 s) before they run.
    assert min(sim.rec.requests["first_scheduled"]) == 0.0
    assert sorted(sim.rec.requests["first_scheduled"])[1] >= 2.0
    assert len(sim.rec.program_ids) == 10  # every program admitted and finished


def test_host_tier_auto_follows_reload_against_recompute():
    sim = Simulation([], plain_config(workers=1, host_tier="auto"))
    assert wants_host_tier("auto", sim.perf) and sim.engines["w0"].kv.host is not None
    assert Simulation([], plain_config(workers=1)).engines["w0"].kv.host is None
