"""The SQLite journal survives a process killed between (and during) writes: every
write that returned is there after the crash, in a database that passes SQLite's own
integrity check, and a side-effecting call killed between its marker and its result is
found in doubt."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import pytest

from agentrt.runtime.journal import AsyncJournal, ProgramJournal, ToolInDoubtError, ToolKey, open_store, sqlite_url
from agentrt.runtime.journal.tool_calls import journaled_call
from agentrt.toolmgr.spec import ToolSpec

WRITER = """
import sys, time
from agentrt.runtime.journal import open_store, ToolKey
store = open_store(sys.argv[1])
store.open_run("r", {})
i = 0
while True:
    store.record_step("r", "p", f"step-{i:06d}", b"x" * 512)
    if i % 7 == 3:  # a side-effecting call that never gets its result
        store.claim_tool("r", ToolKey("p", f"step-{i:06d}", 0, "c"), "charge", "d")
    print(i, flush=True)  # after the commit returned
    i += 1
"""


@pytest.mark.timeout(120)
def test_every_returned_write_survives_sigkill(tmp_path):
    url = sqlite_url(tmp_path / "journal.sqlite")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE,
                            text=True)
    committed = -1
    deadline = time.monotonic() + 60
    while committed < 200 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        committed = int(line)
    proc.send_signal(signal.SIGKILL)  # mid-loop: possibly inside a transaction
    proc.wait(timeout=30)
    assert committed >= 200, "the writer did not get going"
    assert (tmp_path / "journal.sqlite-wal").exists()  # the crash left the WAL behind

    store = open_store(url)
    try:
        assert store._read("PRAGMA integrity_check") == [("ok",)]
        steps = store.steps("r", "p")
        for i in range(committed + 1):
            assert f"step-{i:06d}" in steps
        assert len(steps) <= committed + 2  # at most the write in flight at the kill
        doubt = {r.key.step_id for r in store.in_doubt("r")}
        assert {f"step-{i:06d}" for i in range(committed + 1) if i % 7 == 3} <= doubt
    finally:
        store.close()


def test_a_marker_without_its_result_is_refused_after_the_crash(tmp_path):
    url = sqlite_url(tmp_path / "journal.sqlite")
    key = ToolKey("p", "step-000003", 0, "c")
    store = open_store(url)
    store.claim_tool("r", key, "charge", "d")  # the process "dies" here
    store.close()

    async def resume():
        journal = AsyncJournal(url)
        try:
            view = await ProgramJournal.load(journal, "r", "p", attempt=2)
            spec = ToolSpec(name="charge", side_effects=True)
            ran = []

            async def run():
                ran.append(1)

            with pytest.raises(ToolInDoubtError) as info:
                await journaled_call(view, key, "charge", {}, spec, run)
            return ran, str(info.value)
        finally:
            journal.close()

    ran, message = asyncio.run(resume())
    assert ran == []
    assert "p/step-000003#turn0/c" in message
    assert "agentrt journal forget r p step-000003 0 c" in message
