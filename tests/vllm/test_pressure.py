"""Acceptance (b): under memory pressure the pin cap holds and nothing deadlocks; pins
are gone after program end and after an abort (KV use back to its baseline).

The engine has 47 usable blocks of 32 tokens; the agentrt policy caps held blocks at
half of them (23) and gives pins up before it preempts running work."""
from __future__ import annotations

import math

import pytest

from agentrt.runtime.core.retention.decision import PinDecision
from tests.vllm.helpers import BLOCK, PinExpired, Preempted, counted

pytestmark = [pytest.mark.realserver, pytest.mark.timeout(300)]
SESSIONS = 6
CONTEXT = 8 * BLOCK  # each session's prompt: 8 whole blocks


def pin_sessions(h, n: int = SESSIONS, reply: int = 4) -> dict[str, int]:
    """n sessions finish a call that calls a tool; each is pinned until further notice."""
    for i in range(n):
        session = f"p{i}/main"
        done = h.call(counted(f"s{i}", session, CONTEXT, reply, tool="bash"))
        assert done.finish_reason == "tool_calls"
        h.engine.retain(session, None, PinDecision.pin(math.inf, "test"), h.now(), f"p{i}")
    h.settle()
    return h.holds()


def used_blocks(h) -> int:
    h.settle()
    return h.engine.stats().kv_used_blocks


def test_the_cap_holds_and_pins_give_way_to_new_work_without_preemption(h):
    cap = h.run(h.engine.call(lambda core: core.scheduler.holds.cap_blocks))
    holds = pin_sessions(h)
    stats = h.engine.stats()
    print(f"\nCPU run of a tiny model: {SESSIONS} sessions of {CONTEXT // BLOCK} blocks asked "
          f"for pins; held {holds} ({stats.kv_pinned_blocks} blocks, cap {cap}, "
          f"capacity {stats.kv_capacity_blocks}); retain outcomes {h.engine.retained}")
    assert stats.kv_pinned_blocks == sum(holds.values()) <= cap
    assert h.engine.retained.get("refused", 0) + h.engine.retained.get("trimmed", 0) >= 1
    # New work that needs more than the blocks left unpinned: 300 prompt + 600 reply
    # tokens (29 blocks) against 47 - pinned free.
    free = stats.kv_capacity_blocks - stats.kv_used_blocks
    need = (300 + 600) // BLOCK + 1
    assert need > free
    done = h.call(counted("big", "big/main", 300, 600, last_call=True), timeout_s=120)
    assert done.output_tokens == 600 and done.preemptions == 0
    assert not h.events(Preempted)
    released = {e.session_id for e in h.events(PinExpired)}
    assert released and released <= set(holds)
    h.engine.check_integrity()
    for i in range(SESSIONS):  # the programs end
        h.engine.release(f"p{i}/main", h.now())
    assert used_blocks(h) == 0 and h.engine.stats().kv_pinned_blocks == 0


def test_pins_up_to_the_whole_kv_and_two_growing_calls_do_not_deadlock(h):
    """Continuum's knobs: no cap below the whole KV, and with more than one call running
    vLLM preempts before pins go. Everything still finishes, in bounded time."""
    assert h.run(h.engine.reset("continuum"), 30)
    pin_sessions(h, n=5)
    assert h.engine.stats().kv_pinned_blocks == 5 * CONTEXT // BLOCK  # 40 of 47: no cap
    for i in range(2):
        h.engine.submit(counted(f"grow{i}", f"g{i}/main", 200, 500, last_call=True), h.now())
    first, second = h.wait("grow0", 120), h.wait("grow1", 120)
    assert first.output_tokens == second.output_tokens == 500
    print(f"\ncontinuum knobs: pins released {len(h.events(PinExpired))}, "
          f"preemptions {first.preemptions + second.preemptions}")
    h.engine.check_integrity()
    for i in range(5):
        h.engine.release(f"p{i}/main", h.now())
    assert used_blocks(h) == 0


def test_an_abort_releases_the_sessions_pin_and_its_blocks(h):
    pin_sessions(h, n=2)
    assert used_blocks(h) == 2 * CONTEXT // BLOCK
    # The session's next call: a long reply, aborted while it runs.
    h.engine.submit(counted("next", "p0/main", CONTEXT + 40, 600), h.now())

    async def running():
        while h.engine.stats().running < 1:
            await __import__("asyncio").sleep(0.005)
    h.run(running(), 30)
    assert h.engine.abort("next", h.now())
    assert not h.engine.abort("next", h.now())  # gone
    h.sleep(0.3)
    assert "next" not in h.done()
    assert h.holds() == {"p1/main": CONTEXT // BLOCK}
    h.engine.release("p1/main", h.now())
    assert used_blocks(h) == 0


def test_a_pin_expires_at_its_deadline_while_the_engine_is_idle(h):
    h.call(counted("s", "p0/main", CONTEXT, 4, tool="bash"))
    h.engine.retain("p0/main", None, PinDecision.pin(h.now() + 0.5, "test"), h.now(), "p0")
    h.settle()
    assert h.holds() == {"p0/main": CONTEXT // BLOCK}
    h.sleep(1.5)
    assert [e.session_id for e in h.events(PinExpired)] == ["p0/main"]
    assert h.holds() == {} and used_blocks(h) == 0
