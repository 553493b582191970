"""VllmEngine keeps the RealtimeEngine contract (usage, tool calls, times, refusals,
aborts, one submit per id) and carries out every kind of TTL decision on vLLM's
blocks: pin, soft (weakest first under pressure), exclusive, offload (dropped: no host
tier), drop; counted calls (no text) reuse their session's blocks across turns."""
from __future__ import annotations

import asyncio
import math

import pytest

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.retention.decision import PinDecision, SurvivalWeight
from agentrt.runtime.core.session_chain import SessionChain
from agentrt.runtime.engines.base import EngineRefused, RealtimeEngine, Retaining
from agentrt.runtime.engines.vllm import VllmEngine, VllmSettings
from agentrt.runtime.engines.vllm.core import UnsupportedVllm, check_vllm
from tests.vllm.helpers import (
    BLOCK, MODEL, WEATHER_TOOL, PinExpired, chat, counted, weather_turn,
)

pytestmark = [pytest.mark.realserver, pytest.mark.timeout(300)]


def test_a_call_reports_usage_tool_calls_and_times(h):
    engine = h.engine
    assert isinstance(engine, RealtimeEngine) and isinstance(engine, Retaining)
    info = engine.info
    assert (info.block_size, info.kv_capacity_blocks, info.max_context) == (BLOCK, 47, 1024)
    assert info.capabilities.retain and info.capabilities.kv_state == "exact"
    done = h.call(chat("c1", "p/s", weather_turn(), tools=[WEATHER_TOOL]))
    assert done.prompt_tokens == done.cached_tokens + done.prefilled_tokens
    assert done.finish_reason == "tool_calls" and done.output_tokens >= 1
    assert [(c.name, c.arguments) for c in done.tool_calls] == [("get_weather", '{"city": "Paris"}')]
    assert done.dispatched_at <= done.first_scheduled_at <= done.first_token_at <= done.finished_at
    again = h.call(chat("c2", "q/s", weather_turn(), max_tokens=4, last_call=True))
    assert again.tool_calls == [] and again.cached_tokens > 0  # the same system prompt
    stats = engine.stats()
    assert stats.prefix_hit_tokens == again.cached_tokens
    assert stats.prefix_hit_tokens + stats.prefix_miss_tokens == done.prompt_tokens + \
        again.prompt_tokens
    engine.check_integrity()


def test_refusals_duplicates_and_unknown_aborts(h):
    with pytest.raises(EngineRefused, match="can never fit") as refused:
        h.engine.submit(counted("huge", "p/s", 900, 200), h.now())
    assert refused.value.limit_tokens == 1024
    assert not h.engine.abort("huge", h.now())
    h.engine.submit(counted("once", "p/s", 64, 200), h.now())
    with pytest.raises(ValueError, match="already queued"):
        h.engine.submit(counted("once", "p/s", 64, 200), h.now())
    assert h.engine.abort("once", h.now())
    h.sleep(0.2)
    assert h.done() == {}


def test_the_engine_refuses_calls_before_start_and_names_unsupported_vllm(monkeypatch):
    engine = VllmEngine("w9", VllmSettings("nowhere", served_name=MODEL))
    with pytest.raises(RuntimeError, match="start"):
        engine.submit(counted("x", "p/s", 10, 1), 0.0)
    import vllm

    assert check_vllm() == vllm.__version__
    monkeypatch.setattr(vllm, "__version__", "0.31.2")
    with pytest.raises(UnsupportedVllm, match=r"0\.31\.2 is not supported.*0\.32"):
        check_vllm()


def test_counted_calls_reuse_their_sessions_blocks_across_turns(h):
    session = SessionChain("p/s", BLOCK)
    prompt = session.add_input(0, 300)
    first = h.call(_turn("p/s#0", prompt, 40, tool="bash"))
    h.engine.retain("p/s", None, PinDecision.pin(math.inf, "t"), h.now(), "p")
    session.add_output(first)
    prompt = session.add_input(1, 50)
    assert h.engine.cached_prefix_tokens(prompt) == (300 + 40 - 1) // BLOCK * BLOCK
    second = h.call(_turn("p/s#1", prompt, 10, last_turn=True, last_call=True))
    assert second.cached_tokens == (300 + 40 - 1) // BLOCK * BLOCK
    assert second.output_tokens == 10 and h.holds() == {}


def _turn(rid, prompt: TokenChain, out: int, tool=None, **fields):
    from agentrt.runtime.core.messages import LLMRequest
    return LLMRequest(rid, "p", "p/s", MODEL, prompt, out, output_tokens_hint=out,
                      tool_hint=tool, **fields)


def test_offload_and_drop_hold_nothing_exclusive_pins_replace_the_programs_others(h):
    for i in range(3):
        h.call(counted(f"c{i}", f"p/s{i}", 128, 4, tool="bash"))
    now = h.now()
    h.engine.retain("p/s0", None, PinDecision.offload(now, "t"), now, "p")
    h.engine.retain("p/s1", None, PinDecision.drop(now, "t"), now, "p")
    h.settle()
    assert h.holds() == {"p/s2": 4}  # s2 still pending its decision
    h.engine.retain("p/s1", None, PinDecision.pin(math.inf, "t"), now, "p")
    h.engine.retain("p/s2", None, PinDecision.pin(math.inf, "t", exclusive=True), now, "p")
    h.settle()
    assert h.holds() == {"p/s2": 4}
    assert h.engine.retained == {"dropped": 1, "drop": 1, "held": 2}


def test_under_pressure_the_weakest_soft_pin_goes_first(h):
    now = h.now()
    for i, survival in enumerate((0.9, 0.2)):
        h.call(counted(f"c{i}", f"p{i}/s", 320, 4, tool="bash"))
        weight = SurvivalWeight(now, now, now + 600, ((0.0, survival), (600.0, survival)))
        h.engine.retain(f"p{i}/s", None, PinDecision.soft(now + 600, weight, 1.0, "t"), now,
                        f"p{i}")
    h.settle()
    assert h.holds() == {"p0/s": 10, "p1/s": 10}
    # 47 blocks, 20 held: a call needing 32 blocks takes one pin, the weaker.
    h.call(counted("big", "b/s", 300, 700, last_call=True), timeout_s=120)
    assert [e.session_id for e in h.events(PinExpired)] == ["p1/s"]
    assert h.holds() == {"p0/s": 10}


def test_a_reset_clears_the_exact_view(h):
    h.call(counted("c", "p/s", 200, 4, last_call=True))
    chain = TokenChain(BLOCK)
    from agentrt.kvcache.prefix import stable_hash
    chain.extend_synthetic(stable_hash("test", "p/s"), 200)
    assert h.engine.cached_prefix_tokens(chain) == 192
    assert h.run(h.engine.reset("agentrt"), 30)
    h.run(asyncio.sleep(0.05))
    assert h.engine.cached_prefix_tokens(chain) == 0


def test_a_call_vllm_refuses_ends_in_an_error_and_the_engine_serves_on(h):
    bad = chat("bad", "p/s", weather_turn(), max_tokens=4)
    bad.sampling["temperature"] = -1.0
    done = h.call(bad)
    assert done.finish_reason == "error" and "vLLM refused the call" in done.error
    assert done.prompt_tokens == done.output_tokens == 0
    again = h.call(chat("good", "p/s", weather_turn(), max_tokens=4, last_call=True))
    assert again.finish_reason in ("stop", "length", "tool_calls")


def test_a_model_that_is_not_there_fails_start_with_its_path(tmp_path):
    missing = tmp_path / "no-model"
    engine = VllmEngine("w8", VllmSettings(str(missing), served_name=MODEL, block_size=BLOCK,
                                           num_gpu_blocks=16, max_model_len=256,
                                           enforce_eager=True, kv_cache_space_gib=1))

    async def go():
        with pytest.raises(Exception, match="no-model"):
            await asyncio.wait_for(engine.start(lambda events: None), 120)
        await engine.stop()
        with pytest.raises(RuntimeError, match="stopped"):
            await engine.start(lambda events: None)

    asyncio.run(go())


def test_the_cpu_worker_runs_unbound_unless_the_caller_binds_it(h, monkeypatch):
    """vLLM read its thread binding when the engine was built: unbound by default, so
    a bound OpenMP worker cannot stall this process on a small machine; unbound, the
    model runs in this process ("uni"), bound, in a worker process of its own ("mp")."""
    import os

    from agentrt.runtime.engines.vllm.core import CPU_ENVIRONMENT, cpu_executor

    assert CPU_ENVIRONMENT["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    assert os.environ.get("VLLM_CPU_OMP_THREADS_BIND") == "nobind", (
        "run these tests without VLLM_CPU_OMP_THREADS_BIND in the environment")
    backend = h.run(h.engine.call(
        lambda core: core.llm.vllm_config.parallel_config.distributed_executor_backend))
    assert backend == "uni"
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "auto")
    assert cpu_executor() == "mp"
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-1")
    assert cpu_executor() == "mp"
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND")
    assert cpu_executor() == "uni"
