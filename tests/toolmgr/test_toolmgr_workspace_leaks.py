"""No workspace outlives its program: 1,000 programs leave none behind, and those of a
killed runner are swept by the next process that uses the pool."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import agentrt
from agentrt.runtime.results import SUCCEEDED
from agentrt.toolmgr import ToolManager, ToolRegistry, WorkspacePool
from tests.toolmgr.program_harness import run_program

ROOT_ENV = "AGENTRT_TEST_WORKSPACE_ROOT"


def note(workspace: str, text: str) -> str:
    Path(workspace, "note.txt").write_text(text)
    return text


def programs_for(root: Path, cap: int):
    pool = WorkspacePool(root=root, cap=cap)
    write_note = agentrt.tool(name="write_note", resources={"workspace": pool})(note)

    @agentrt.program(name="uses_workspace")
    def uses_workspace(text: str):
        return write_note(text)

    return uses_workspace


async def run_many(program, n: int) -> list:
    tools = ToolManager(ToolRegistry())
    try:
        return await asyncio.gather(*(run_program(program, tools, program_id=f"p{i:04d}",
                                                  text=str(i)) for i in range(n)))
    finally:
        tools.close()


KILLED_RUNNER = textwrap.dedent("""
    import asyncio, os, sys, time
    from agentrt.toolmgr import ToolManager, ToolRegistry, WorkspacePool

    def uses(workspace: str) -> str:
        return workspace

    async def main() -> None:
        registry = ToolRegistry()
        registry.register(uses, resources={"workspace": WorkspacePool(root=sys.argv[1])})
        tools = ToolManager(registry)
        for i in range(20):
            await tools.open_program(f"doomed-{i}", registry.tools())
            await tools.call("uses", {}, program_id=f"doomed-{i}")
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


def test_a_killed_runner_leaks_workspaces_that_the_next_user_of_the_pool_sweeps(tmp_path):
    runner = subprocess.Popen([sys.executable, "-c", KILLED_RUNNER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert runner.stdout.readline().strip() == "ready"
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
    leaked = list(tmp_path.iterdir())
    assert len(leaked) == 20  # SIGKILL: no cleanup ran

    results = asyncio.run(asyncio.wait_for(run_many(programs_for(tmp_path, cap=4), 5), 60))
    assert all(r.status == SUCCEEDED for r in results)
    assert list(tmp_path.iterdir()) == []


def test_a_thousand_programs_leave_no_workspace_behind(tmp_path):
    results = asyncio.run(asyncio.wait_for(run_many(programs_for(tmp_path, cap=16), 1000),
                                           240))
    assert [r.status for r in results] == [SUCCEEDED] * 1000
    assert sorted(int(r.outputs) for r in results) == list(range(1000))
    assert list(tmp_path.iterdir()) == []
