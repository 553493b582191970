"""Per-program resource pools: prepared ahead, handed to tools, capped, cleaned up at
the program's end however it ends, and swept after a crash."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentrt.toolmgr import (
    PortPool,
    RegisteredTool,
    SandboxPool,
    ToolManager,
    ToolManagerSettings,
    ToolRegistry,
    WorkspacePool,
)
from agentrt.toolmgr.workspaces import Owner, owner_of, sweep, workspace_name
from tests.toolmgr import sandbox_tools as st


class Ledger:
    """Counts live sandboxes; setup takes `delay` seconds (async) or fails on demand."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay, self.fail = delay, fail
        self.live: set[str] = set()
        self.most = 0
        self.made: list[str] = []
        self.torn: list[str] = []

    async def setup(self, program_id: str) -> str:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("image registry unreachable")
        value = f"box-{program_id}"
        self.live.add(value)
        self.most = max(self.most, len(self.live))
        self.made.append(value)
        return value

    def teardown(self, value: str) -> None:
        self.live.discard(value)
        self.torn.append(value)


def box_id(box: str, note: str = "") -> str:
    return box + note


def where(workspace: str) -> str:
    return workspace


def tools_for(pool, **options) -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(box_id, resources={"box": pool}, **options)
    return registry


def run(coro, timeout_s: float = 30):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def test_a_resource_parameter_is_filled_by_the_runtime_and_hidden_from_the_model():
    tool = RegisteredTool.from_function(box_id, resources={"box": SandboxPool("b", str)})
    assert list(tool.spec.parameters["properties"]) == ["note"]
    assert tool.spec.resources == {"box": "b"}
    with pytest.raises(TypeError, match=r"resources=\['nope'\] name no parameter"):
        RegisteredTool.from_function(box_id, resources={"nope": SandboxPool("b", str)})
    with pytest.raises(TypeError, match="maps parameter names to ResourcePool objects"):
        RegisteredTool.from_function(box_id, resources={"box": "a pool"})


@pytest.mark.parametrize(("options", "message"), [
    ({"name": "has space", "setup": str}, "name='has space' is not valid"),
    ({"name": "b", "setup": str, "cap": 0}, "cap=0 is not valid"),
    ({"name": "b", "setup": "not callable"}, "setup and teardown must be callables"),
])
def test_bad_pool_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        SandboxPool(**options)


def test_one_resource_per_program_shared_by_its_calls_and_torn_down_at_close():
    ledger = Ledger()
    manager = ToolManager(tools_for(SandboxPool("box", ledger.setup, ledger.teardown)))

    async def go():
        await manager.open_program("p1", manager.registry.tools())
        first = await manager.call("box_id", {"note": "!"}, program_id="p1")
        second = await manager.call("box_id", {}, program_id="p1")
        closed = await manager.close_program("p1")
        again = await manager.close_program("p1")
        late = await manager.call("box_id", {}, program_id="p1")
        return first, second, closed, again, late

    first, second, closed, again, late = run(go())
    assert (again.cancelled_calls, again.resources.cleaned) == (0, 0)  # idempotent
    assert (first.output, second.output) == ("box-p1!", "box-p1")
    assert ledger.made == ledger.torn == ["box-p1"] and closed.resources.cleaned == 1
    assert (late.ok, late.error_type) == (False, "cancelled") and "is over" in late.error


def test_the_cap_bounds_live_resources_and_waiting_for_a_slot_is_resource_wait():
    ledger = Ledger(delay=0.05)
    manager = ToolManager(tools_for(SandboxPool("box", ledger.setup, ledger.teardown, cap=2)))

    async def program(i: int):
        pid = f"p{i}"
        await manager.open_program(pid, manager.registry.tools())
        result = await manager.call("box_id", {}, program_id=pid)
        await asyncio.sleep(0.05)
        await manager.close_program(pid)
        return result

    async def all_programs():
        return await asyncio.gather(*(program(i) for i in range(6)))

    results = run(all_programs())
    assert all(r.ok for r in results) and ledger.most == 2 and not ledger.live
    waits = sorted(r.timings.resource_wait_s for r in results)
    assert waits[:2] == [0.0, 0.0] and waits[-1] >= 0.1  # the last pair waited two rounds
    assert manager.preparations.count("box") == 6
    assert manager.resources.pool_stats("box").leased == 0


def test_preparation_overlaps_with_the_program_and_a_call_waits_only_for_the_rest():
    ledger = Ledger(delay=0.3)
    manager = ToolManager(tools_for(SandboxPool("box", ledger.setup, ledger.teardown)))

    async def go():
        await manager.open_program("p", manager.registry.tools())
        await asyncio.sleep(0.2)  # the program's first LLM call, say
        result = await manager.call("box_id", {}, program_id="p")
        await manager.close_program("p")
        return result

    t = run(go()).timings
    assert 0.25 <= t.prepare_s < 0.6
    assert 0.03 <= t.prepare_wait_s <= 0.2  # only the part not hidden behind the 0.2 s
    assert t.resource_wait_s == 0.0


def test_before_start_prepares_everything_before_the_program_goes_on():
    ledger = Ledger(delay=0.2)
    settings = ToolManagerSettings(preparation="before_start")
    manager = ToolManager(tools_for(SandboxPool("box", ledger.setup, ledger.teardown)),
                          settings=settings)

    async def go():
        await manager.open_program("p", manager.registry.tools())
        assert ledger.made == ["box-p"]
        result = await manager.call("box_id", {}, program_id="p")
        await manager.close_program("p")
        return result

    assert run(go()).timings.prepare_wait_s == 0.0


def test_a_failed_preparation_is_an_error_result_naming_the_pool_and_the_parameter():
    ledger = Ledger(fail=True)
    manager = ToolManager(tools_for(SandboxPool("box", ledger.setup, ledger.teardown)))

    async def go():
        await manager.open_program("p", manager.registry.tools())
        result = await manager.call("box_id", {}, program_id="p")
        await manager.close_program("p")
        return result

    result = run(go())
    assert (result.ok, result.error_type) == (False, "ResourceError")
    assert result.error == ("resource 'box' for parameter 'box' could not be prepared: "
                            "ConnectionError: image registry unreachable")
    assert ledger.torn == []


def test_closing_during_preparation_tears_down_what_the_setup_made():
    ledger = Ledger(delay=0.2)
    manager = ToolManager(tools_for(SandboxPool("box", ledger.setup, ledger.teardown)))

    async def go():
        await manager.open_program("p", manager.registry.tools())
        await asyncio.sleep(0.05)
        return await manager.close_program("p")

    closed = run(go())
    assert closed.resources.cancelled == 1
    assert ledger.made == ledger.torn == ["box-p"] and not ledger.live


def test_a_resource_tool_outside_a_program_is_an_error_result():
    manager = ToolManager(tools_for(SandboxPool("box", str)))
    result = run(manager.call("box_id", {}))
    assert result.error_type == "ResourceError" and "exist only inside a program" in result.error


def test_ports_are_distinct_among_the_programs_of_a_process():
    registry = ToolRegistry()
    registry.register(lambda port: port, name="port_of", resources={"port": PortPool(cap=8)})
    manager = ToolManager(registry)

    async def go():
        ports = []
        for i in range(8):
            await manager.open_program(f"p{i}", registry.tools())
            ports.append((await manager.call("port_of", {}, program_id=f"p{i}")).output)
        for i in range(8):
            await manager.close_program(f"p{i}")
        return ports

    ports = run(go())
    assert len(set(ports)) == 8 and all(isinstance(p, int) and p > 0 for p in ports)


def test_two_different_pools_may_not_share_a_name():
    registry = ToolRegistry()
    registry.register(box_id, resources={"box": SandboxPool("box", str, cap=2)})
    registry.register(where, resources={"workspace": WorkspacePool(name="box")})
    manager = ToolManager(registry)
    with pytest.raises(ValueError, match="two different resource pools are named 'box'"):
        run(manager.open_program("p", registry.tools()))


def test_a_subprocess_tool_runs_in_the_programs_workspace(tmp_path):
    pool = WorkspacePool(root=tmp_path, cap=4)
    registry = ToolRegistry()
    registry.register(st.write_file, executor="subprocess", resources={"workspace": pool})
    manager = ToolManager(registry)

    async def go():
        await manager.open_program("prog-1", registry.tools())
        result = await manager.call("write_file", {"name": "notes.txt", "text": "x"},
                                    program_id="prog-1")
        inside = list(tmp_path.iterdir())
        await manager.close_program("prog-1")
        return result, inside

    result, inside = run(go())
    manager.close()
    assert result.ok, result.error
    assert Path(result.output["cwd"]) == inside[0] and result.output["files"] == ["notes.txt"]
    assert owner_of(inside[0].name) == Owner.current()
    assert list(tmp_path.iterdir()) == []


def test_a_populate_function_fills_the_workspace_and_its_failure_removes_it(tmp_path):
    def fill(path: Path) -> None:
        (path / "repo").mkdir()

    def broken(path: Path) -> None:
        (path / "half").write_text("written before failing")
        raise OSError("clone failed")

    registry = ToolRegistry()
    registry.register(where, resources={"workspace": WorkspacePool(root=tmp_path / "a",
                                                                    populate=fill)})
    registry.register(where, name="where_broken",
                      resources={"workspace": WorkspacePool(name="w2", root=tmp_path / "b",
                                                            populate=broken)})
    manager = ToolManager(registry)

    async def go():
        await manager.open_program("p", registry.tools())
        good = await manager.call("where", {}, program_id="p")
        listing = os.listdir(good.output)
        bad = await manager.call("where_broken", {}, program_id="p")
        await manager.close_program("p")
        return listing, bad

    listing, bad = run(go())
    assert listing == ["repo"]
    assert bad.error_type == "ResourceError" and "clone failed" in bad.error
    assert list((tmp_path / "a").iterdir()) == list((tmp_path / "b").iterdir()) == []


def test_sweep_removes_workspaces_of_dead_owners_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_owner = Owner(int(dead.stdout), 12345)
    stale = tmp_path / workspace_name(dead_owner, "crashed-program")
    reused = tmp_path / workspace_name(Owner(os.getpid(), 1), "pid-reused")  # wrong start
    live = tmp_path / workspace_name(Owner.current(), "running-program")
    foreign = tmp_path / "not-a-workspace"
    for path in (stale, reused, live, foreign):
        (path / "sub").mkdir(parents=True)
    (stale / "sub" / "ro").write_text("x")
    os.chmod(stale / "sub", 0o500)  # a tool made it read-only

    report = sweep(tmp_path)
    assert sorted(report.removed) == sorted([str(stale), str(reused)])
    assert report.kept == [str(live)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, foreign.name])


def test_a_setup_past_its_timeout_is_an_error_and_its_late_value_is_torn_down():
    ledger = Ledger(delay=0.3)
    pool = SandboxPool("box", ledger.setup, ledger.teardown, setup_timeout_s=0.1)
    manager = ToolManager(tools_for(pool))

    async def go():
        await manager.open_program("p", manager.registry.tools())
        result = await manager.call("box_id", {}, program_id="p")
        await manager.close_program("p")
        await asyncio.sleep(0.4)  # the setup ends later and is torn down then
        return result

    result = run(go())
    assert result.error_type == "ResourceError" and "setup_timeout_s=0.1" in result.error
    assert ledger.made == ledger.torn == ["box-p"]


async def ignores_cancellation() -> str:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        await asyncio.sleep(1.0)  # misbehaves: keeps going after being cancelled
    return "late"


def test_closing_waits_for_cancelled_calls_at_most_close_timeout_s():
    registry = ToolRegistry()
    registry.register(ignores_cancellation, executor="inline")
    registry.register(where, name="quick")
    manager = ToolManager(registry, settings=ToolManagerSettings(close_timeout_s=0.2,
                                                                 recent_programs=1))

    async def go():
        await manager.open_program("p", [])
        call = asyncio.ensure_future(manager.call("ignores_cancellation", {}, program_id="p"))
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        closed = await manager.close_program("p")
        took = asyncio.get_running_loop().time() - started
        await manager.close_program("q")  # only the latest closed program is remembered
        late = await manager.call("quick", {"workspace": "w"}, program_id="p")
        await asyncio.gather(call, return_exceptions=True)
        return closed, took, late

    closed, took, late = run(go())
    assert (closed.cancelled_calls, closed.unfinished_calls) == (1, 1)
    assert 0.15 <= took < 0.8
    assert late.ok  # "p" was forgotten, so its call was not refused


def test_a_pool_not_named_when_the_program_opened_is_prepared_on_first_need():
    ledger = Ledger()
    manager = ToolManager(tools_for(SandboxPool("box", ledger.setup, ledger.teardown)))

    async def go():
        await manager.open_program("p", [])
        assert ledger.made == []
        result = await manager.call("box_id", {}, program_id="p")
        await manager.close_program("p")
        return result

    assert run(go()).output == "box-p" and ledger.torn == ["box-p"]
