"""Every TTL policy agentrt has is selectable on the vLLM backend: programs played through
the cluster control (`RealtimeRun`) on the engine finish under each, the policy's
decisions are carried out on vLLM's blocks, and nothing stays held once they end."""
from __future__ import annotations

import pytest

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.bench.realtime import RealtimeRun
from agentrt.runtime.engines.simulated.perf_model import PerfModel
from agentrt.runtime.sim.config import SimConfig

pytestmark = [pytest.mark.realserver, pytest.mark.timeout(300)]
POLICIES = ("none", "fixed", "continuum", "infercept", "thunderagent", "agentrt")


def programs() -> list[ProgramSpec]:
    turns = [TurnSpec(300, 8, "bash", 0.05), TurnSpec(60, 8, "bash", 0.05), TurnSpec(60, 4)]
    return [ProgramSpec(f"p{i}", [StepSpec("main", list(turns))]) for i in range(3)]


@pytest.mark.parametrize("policy", POLICIES)
def test_each_policy_runs_programs_on_vllm_and_leaves_nothing_held(h, policy):
    ttl = None if policy == "none" else policy
    assert h.run(h.engine.reset(ttl), 30)
    cfg = SimConfig(workers=1, block_size=32, kv_blocks=47, ttl=ttl, queue="program_fcfs",
                    stealing=False, host_tier="off", concurrency=3, ramp_s=0.0)
    run = RealtimeRun(programs(), cfg, [h.engine], cost=PerfModel("llama-3.1-8b", "h100"))
    result = h.run(run.run(120), 150)
    assert sorted(result.finished) == ["p0", "p1", "p2"] and len(result.calls) == 9
    decided = sum(result.decided.values())
    assert decided == (0 if ttl is None else 6)  # two tool pauses per program
    h.settle()
    assert sum(h.engine.retained.values()) == decided
    later = [d for d in result.calls if not d.request_id.endswith("#0")]
    print(f"\n{policy}: decisions {result.decided}, carried out {h.engine.retained}, "
          f"cached {sum(d.cached_tokens for d in later)} of {sum(d.prompt_tokens for d in later)} "
          f"prompt tokens of later turns, mean JCT {result.mean_jct:.2f} s (CPU, tiny model)")
    assert h.holds() == {} and h.engine.stats().kv_used_blocks == 0
    h.engine.check_integrity()
