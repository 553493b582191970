"""Resuming one program in-process (execute_program, no Ray): journaled steps are not
executed again and feed their successors, a side-effecting tool runs once across
attempts, a call in doubt fails the step naming its key and leaves the program to be
resumed once the operator cleared it."""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

import agentrt
from agentrt.runtime import wire
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.journal import AsyncJournal, ProgramJournal, open_store, sqlite_url
from agentrt.runtime.runner.execution import execute_program
from agentrt.toolmgr import ToolManager, ToolRegistry

GATE = threading.Event()  # the `review` step waits on it: cancelling then is a crash
EXECUTED: list[str] = []  # every step body that ran, across attempts


@agentrt.tool(side_effects=True, executor="thread")
def charge(ledger: str, amount: int) -> str:
    """Charge a card: one line in the ledger file per real execution."""
    with open(ledger, "a") as f:
        f.write(f"{amount}\n")
    if Path(ledger + ".hang").exists():  # the process "dies" while the tool runs
        time.sleep(3)
    return f"charged {amount}"


@agentrt.step(tools=[charge])
async def bill(ctx, ledger: str, amount: int) -> dict:
    EXECUTED.append("bill")
    receipt = await ctx.call_tool({"id": "charge-1", "type": "function", "function": {
        "name": "charge", "arguments": {"ledger": ledger, "amount": amount}}})
    if not receipt.ok:
        raise RuntimeError(receipt.error)
    return {"receipt": receipt.output, "pair": (amount, amount * 2)}


@agentrt.step
async def review(ctx, bill: dict) -> dict:
    EXECUTED.append("review")
    while not GATE.is_set():  # cancellable, as a crash would cut it
        await asyncio.sleep(0.02)
    return {"ok": bill["pair"] == (7, 14), "receipt": bill["receipt"]}


@agentrt.program(name="billing")
def billing(ledger: str, amount: int):
    return review(bill(ledger, amount))


class NoLLM:
    """A backend for programs that make no LLM calls."""

    async def program_started(self, program_id):
        pass

    async def program_finished(self, program_id):
        pass

    async def release_session(self, session_id):
        pass

    def tool_finished(self, *args):
        pass


async def attempt(url: str, number: int, ledger: Path, *, crash_after: float | None = None):
    journal = AsyncJournal(url)
    view = await ProgramJournal.load(journal, "run", "billing-0", number)
    run = execute_program(
        billing, (), {"ledger": str(ledger), "amount": 7}, program_id="billing-0",
        arrival=time.time(), backend=NoLLM(), tools=ToolManager(ToolRegistry()),
        tokenizer=SimpleTokenizer(), default_model="m", served_models=("m",), block_size=16,
        prices={}, clock=time.time, journal=view)
    try:
        if crash_after is None:
            return await run
        task = asyncio.ensure_future(run)
        await asyncio.sleep(crash_after)
        task.cancel()  # the runner dies: no outcome is journaled
        await asyncio.gather(task, return_exceptions=True)
        return None
    finally:
        journal.close()


@pytest.fixture(autouse=True)
def fresh():
    GATE.clear()
    EXECUTED.clear()


def test_a_resumed_program_reruns_only_its_unfinished_steps(tmp_path):
    url, ledger = sqlite_url(tmp_path / "journal.sqlite"), tmp_path / "ledger"
    store = open_store(url)
    store.open_run("run", {})
    store.start_program("run", "billing-0", "billing", b"", "t", "s")
    asyncio.run(attempt(url, 1, ledger, crash_after=0.5))  # killed inside `review`
    assert EXECUTED == ["bill", "review"]
    assert set(store.steps("run", "billing-0")) == {"bill"}
    assert store.programs("run")["billing-0"].status is None

    GATE.set()
    result = asyncio.run(attempt(url, 2, ledger))
    assert result.status == "succeeded", result.error
    assert EXECUTED == ["bill", "review", "review"]  # `bill` did not run again
    assert result.steps_replayed == ["bill"] and result.steps_rerun == ["review"]
    assert result.outputs == {"ok": True, "receipt": "charged 7"}  # the tuple came back a tuple
    assert ledger.read_text() == "7\n"  # charged once
    record = store.programs("run")["billing-0"]
    assert record.final and wire.decode(record.outcome).outputs == result.outputs
    store.close()


def test_a_call_in_doubt_fails_the_step_until_cleared(tmp_path):
    url, ledger = sqlite_url(tmp_path / "journal.sqlite"), tmp_path / "ledger"
    Path(str(ledger) + ".hang").touch()
    store = open_store(url)
    store.open_run("run", {})
    store.start_program("run", "billing-0", "billing", b"", "t", "s")
    asyncio.run(attempt(url, 1, ledger, crash_after=0.5))  # killed while `charge` runs
    [marker] = store.in_doubt("run")
    assert (marker.tool, str(marker.key)) == ("charge", "billing-0/bill#turn0/charge-1")

    result = asyncio.run(attempt(url, 2, ledger))
    assert result.status == "failed" and result.failed_step == "bill"
    assert "ToolInDoubtError" in result.error and "billing-0/bill#turn0/charge-1" in result.error
    assert "agentrt journal forget run billing-0 bill 0 charge-1" in result.error
    assert not store.programs("run")["billing-0"].final  # resume will run it again
    assert ledger.read_text() == "7\n"  # not charged a second time

    # The operator checked the charge did not go through (say) and clears the marker.
    Path(str(ledger) + ".hang").unlink()
    assert store.forget_tool("run", marker.key)
    GATE.set()
    result = asyncio.run(attempt(url, 3, ledger))
    assert result.status == "succeeded", result.error
    assert ledger.read_text() == "7\n7\n"
    assert store.programs("run")["billing-0"].final
    store.close()


def test_an_idempotent_tool_in_doubt_runs_again(tmp_path):
    from agentrt.runtime.journal.records import ToolKey
    from agentrt.runtime.journal.tool_calls import journaled_call
    from agentrt.toolmgr.spec import ToolSpec

    url = sqlite_url(tmp_path / "journal.sqlite")
    key = ToolKey("p", "s", 0, "c")
    store = open_store(url)
    store.claim_tool("r", key, "set_flag", "d")
    store.close()
    runs = []

    async def run():
        runs.append(1)
        from agentrt.toolmgr import ToolResult
        return ToolResult("c", "set_flag", True, "set", executor="thread")

    async def go():
        journal = AsyncJournal(url)
        view = await ProgramJournal.load(journal, "r", "p", 2)
        spec = ToolSpec(name="set_flag", side_effects=True, idempotent=True)
        first = await journaled_call(view, key, "set_flag", {}, spec, run)
        view = await ProgramJournal.load(journal, "r", "p", 3)
        again = await journaled_call(view, key, "set_flag", {}, spec, run)
        journal.close()
        return first, again

    first, again = asyncio.run(go())
    assert runs == [1] and first.output == again.output == "set"
    assert again.executor == "journal"


def test_a_side_effecting_call_with_other_arguments_is_a_divergence(tmp_path):
    from agentrt.runtime.journal import JournalDivergenceError
    from agentrt.runtime.journal.records import ToolKey, arguments_digest
    from agentrt.runtime.journal.tool_calls import journaled_call
    from agentrt.toolmgr.spec import ToolSpec

    url = sqlite_url(tmp_path / "journal.sqlite")
    key = ToolKey("p", "s", 1, "c")
    store = open_store(url)
    store.claim_tool("r", key, "send", arguments_digest("send", {"to": "a"}))
    from agentrt.runtime.journal import codec
    store.record_tool("r", key, "send", arguments_digest("send", {"to": "a"}), codec.pack(
        {"ok": True, "output": "sent", "error": None, "error_type": None, "duration_s": 1.0,
         "truncated": False, "output_bytes": None}))
    store.close()

    async def go():
        journal = AsyncJournal(url)
        view = await ProgramJournal.load(journal, "r", "p", 2)
        spec = ToolSpec(name="send", side_effects=True)
        same = await journaled_call(view, key, "send", '{"to":  "a"}', spec, None)
        with pytest.raises(JournalDivergenceError, match="not deterministic"):
            view = await ProgramJournal.load(journal, "r", "p", 2)
            view.calls.clear()  # as a concurrent attempt that loaded nothing would
            await journaled_call(view, key, "send", {"to": "b"}, spec, None)
        journal.close()
        return same

    same = asyncio.run(go())
    assert same.ok and same.output == "sent" and same.duration_s == 0.0


def test_idempotent_without_side_effects_is_refused():
    def set_flag() -> None:
        """Set a flag."""

    with pytest.raises(ValueError, match="set side_effects=True or drop idempotent"):
        agentrt.tool(idempotent=True)(set_flag)
