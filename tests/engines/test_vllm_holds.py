"""HoldTable: the vLLM backend's bookkeeping of held blocks (pure; no vLLM needed). The
cap counts distinct blocks, deadlines come due earliest first except for sessions whose
next call waits, and the pressure picks are PinSet's, so `kvcache.pressure` reads it."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from agentrt.kvcache.pressure import RunningRequest, pressure_action
from agentrt.runtime.engines.vllm.holds import Hold, HoldTable


@dataclass(frozen=True)
class Block:
    block_id: int


def blocks(*ids: int) -> list[Block]:
    return [Block(i) for i in ids]


def hold(session: str, ids, until: float = math.inf, weight=None, value: float = 1.0,
         program: str | None = None) -> Hold:
    return Hold(session, program, blocks(*ids), until, 0.0, weight=weight, value=value)


def test_the_cap_counts_distinct_blocks_and_trims_or_refuses():
    table = HoldTable(capacity_blocks=10, cap_fraction=0.5)
    assert table.cap_blocks == 5
    assert table.allowance([1, 2, 3]).status == "held"
    table.add(hold("a", [1, 2, 3]))
    # Blocks 1-2 are shared with "a": only 4 and 5 are new, 6 is over the cap.
    allowance = table.allowance([1, 2, 4, 5, 6])
    assert (allowance.keep, allowance.status) == (4, "trimmed")
    table.add(hold("b", [1, 2, 4, 5]))
    assert table.held_blocks == 5
    assert table.allowance([7]).status == "refused"
    assert table.allowance([]).status == "nothing_cached"
    assert table.allowance([2, 3]).status == "held"  # nothing new
    table.remove("a")
    assert table.held_blocks == 4 and table.violations() == []
    with pytest.raises(ValueError, match="already holds"):
        table.add(hold("b", [9]))


def test_deadlines_come_due_earliest_first_except_for_waiting_sessions():
    table = HoldTable(capacity_blocks=100)
    table.add(hold("late", [1], until=5.0))
    table.add(hold("early", [2], until=1.0))
    table.add(hold("waits", [3], until=2.0))
    table.add(hold("forever", [4]))
    assert table.next_deadline() == 1.0
    assert table.due(4.0, waiting={"waits"}) == ["early"]
    table.remove("early")
    assert table.due(10.0, waiting={"waits"}) == ["late"]
    table.remove("late")
    assert table.due(10.0) == ["waits"]
    table.remove("waits")
    assert table.next_deadline() == math.inf and table.sessions() == ["forever"]


def test_a_replaced_hold_leaves_no_stale_deadline():
    table = HoldTable(capacity_blocks=100)
    table.add(hold("s", [1], until=1.0))
    table.remove("s")
    table.add(hold("s", [1], until=9.0))
    assert table.due(5.0) == [] and table.next_deadline() == 9.0


def test_pressure_rules_read_the_table_as_a_pin_set():
    table = HoldTable(capacity_blocks=100)
    table.add(hold("strong", [1], until=50.0, weight=lambda now: 0.9))
    table.add(hold("weak", [2], until=10.0, weight=lambda now: 0.1))
    table.add(hold("hard", [3], until=20.0))
    assert table.weakest(0.0) == "weak" and table.latest() == "strong"
    running = [RunningRequest("r1", 0.0, 0), RunningRequest("r2", 1.0, 1)]
    assert pressure_action(table, running, 0.0, "pins_first").target == "weak"
    # Continuum's rule preempts while two calls run, takes the latest pin with one.
    assert pressure_action(table, running, 0.0, "continuum").kind == "preempt"
    assert pressure_action(table, running[:1], 0.0, "continuum").target == "strong"


def test_the_cap_fraction_is_checked():
    with pytest.raises(ValueError, match="cap_fraction"):
        HoldTable(capacity_blocks=10, cap_fraction=0.0)
