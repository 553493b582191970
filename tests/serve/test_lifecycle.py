"""The gateway's program lifecycle on its own: a program ended at its deadline stays
ended for calls that name it, whichever of the reaper and the next call comes first."""
from __future__ import annotations

import asyncio
import time

import pytest

from agentrt.runtime.serve import errors, spans
from agentrt.runtime.serve.identity import Identity, ProgramLimits
from agentrt.runtime.serve.lifecycle import ProgramLifecycle
from agentrt.runtime.serve.metrics import GatewayMetrics
from agentrt.runtime.serve.programs import ProgramTable


class Backend:
    """Records what the lifecycle tells the cluster."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []

    async def program_started(self, program_id: str) -> None:
        self.started.append(program_id)

    async def program_finished(self, program_id: str) -> None:
        self.finished.append(program_id)

    async def release_session(self, session_id: str) -> None:
        pass


def named(program: str) -> Identity:
    return Identity(program, None, "header", "program")


@pytest.fixture
def lifecycle(tmp_path):
    life = ProgramLifecycle(Backend(), spans.ProgramTraces(str(tmp_path / "t.jsonl")),
                            GatewayMetrics(), {}, idle_timeout_s=60.0)
    yield life
    life.traces.close()


async def started(life: ProgramLifecycle, name: str, deadline_s: float | None,
                  age_s: float):
    return await life.start("t", named(name), ProgramLimits(deadline_s=deadline_s),
                            time.time() - age_s)


@pytest.mark.parametrize("reason, refused", [("deadline", True), ("idle", False),
                                             ("header", False), ("endpoint", False)])
def test_only_a_deadline_end_keeps_the_id_refused(lifecycle, reason, refused):
    async def go():
        program = await started(lifecycle, "a", 0.3, age_s=1.0)
        assert lifecycle.find("t", named("a")) is program   # the call's own check 504s
        await lifecycle.end(program, reason)                # the reaper came first
        assert lifecycle.backend.finished == [program.internal_id]
        if refused:
            with pytest.raises(errors.GatewayError) as info:
                lifecycle.find("t", named("a"))
            assert (info.value.status, info.value.code) == (504, "deadline_exceeded")
            assert "0.3s" in info.value.message and info.value.retry is False
        else:
            assert lifecycle.find("t", named("a")) is None  # a new program may start
        # another tenant's "a" and this tenant's "b" are other programs
        assert lifecycle.find("u", named("a")) is None
        assert lifecycle.find("t", named("b")) is None

    asyncio.run(go())


def test_a_one_call_program_leaves_nothing_behind(lifecycle):
    async def go():
        anonymous = Identity(None, None, "none", "none")
        program = await lifecycle.start("t", anonymous, ProgramLimits(deadline_s=0.3),
                                        time.time() - 1.0)
        await lifecycle.end(program, "deadline")
        assert lifecycle.table.overdue("t", program.client_id, time.time()) is None

    asyncio.run(go())


def test_the_refusal_runs_out_at_its_time_and_is_forgotten():
    table = ProgramTable()
    table.mark_overdue("t", "a", 0.3, until=100.0)
    assert table.overdue("t", "a", now=99.9) == 0.3
    assert table.overdue("t", "a", now=100.0) is None       # ran out, and forgotten
    assert table.overdue("t", "a", now=50.0) is None
    table.mark_overdue("t", "a", 0.3, until=100.0)
    table.mark_overdue("t", "b", 0.5, until=200.0)
    table.forget_overdue(now=150.0)
    assert table.overdue("t", "a", now=0.0) is None and table.overdue("t", "b", 0.0) == 0.5


def test_a_refused_call_renews_the_refusal(lifecycle):
    async def go():
        program = await started(lifecycle, "a", 0.3, age_s=1.0)
        await lifecycle.end(program, "deadline")
        until = lifecycle.table._overdue[("t", "a")][1]
        time.sleep(0.01)
        with pytest.raises(errors.GatewayError):
            lifecycle.find("t", named("a"))
        assert lifecycle.table._overdue[("t", "a")][1] > until

    asyncio.run(go())
