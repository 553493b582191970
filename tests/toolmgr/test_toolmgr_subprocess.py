"""The subprocess executor: a sandboxed child per call, its tree ended on timeout and
cancellation, limits and network isolation enforced by the kernel."""
from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from agentrt.toolmgr import (
    RegisteredTool,
    SandboxTargetError,
    SubprocessExecutor,
    ToolManager,
    ToolRegistry,
)
from agentrt.toolmgr.sandbox_child import isolate_network
from tests.toolmgr import sandbox_tools as st

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="process-tree checks read /proc")


def gone(pid: int) -> bool:
    """No such process, or a zombie (it runs nothing); read from /proc directly."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return state.split()[1] in ("Z", "X")


def manager(*tools: tuple) -> ToolManager:
    registry = ToolRegistry()
    for fn, options in tools:
        registry.register(fn, executor="subprocess", **options)
    return ToolManager(registry)


def call(m: ToolManager, name: str, arguments: dict, **kw):
    async def go():
        return await m.call(name, arguments, "c1", **kw)

    try:
        return asyncio.run(go())
    finally:
        m.close()


def test_a_call_runs_in_a_child_in_a_scratch_directory_that_is_removed_after():
    result = call(manager((st.echo, {})), "echo", {"text": "hi", "number": "3"})
    assert result.ok and result.executor == "subprocess", result.error
    out = result.output
    assert (out["text"], out["number"]) == ("hi", 3)  # validated and coerced first
    assert out["pid"] != os.getpid() and result.sandbox.pid == out["pid"]
    assert Path(out["cwd"]).name.startswith("agentrt-call-") and out["tmpdir"] == out["cwd"]
    assert not Path(out["cwd"]).exists()


def test_async_functions_and_tool_exceptions_cross_the_process_boundary():
    assert call(manager((st.async_echo, {})), "async_echo", {"text": "up"}).output == "UP"
    failed = call(manager((st.fail, {})), "fail", {"message": "gone"})
    assert (failed.ok, failed.error_type, failed.error) == (False, "KeyError", "KeyError: 'gone'")


def test_a_timeout_ends_the_child_and_everything_it_started(tmp_path):
    pid_file = tmp_path / "pids"
    m = manager((st.spawn_and_hang, {"timeout_s": 1.5, "sandbox": {"kill_grace_s": 0.5}}))
    started = time.monotonic()
    result = call(m, "spawn_and_hang", {"pid_file": str(pid_file)})
    elapsed = time.monotonic() - started
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 3
    assert (result.ok, result.error_type) == (False, "timeout")
    assert "process tree (3 process(es)) was ended" in result.error
    assert all(gone(pid) for pid in pids), [p for p in pids if not gone(p)]
    assert elapsed < 1.5 + 0.5 + 2.0  # timeout + grace + the SIGKILL wait bound


def test_cancelling_the_call_ends_the_tree_before_the_cancellation_completes(tmp_path):
    pid_file = tmp_path / "pids"
    m = manager((st.spawn_and_hang, {"timeout_s": 60}))

    async def go() -> list[int]:
        task = asyncio.ensure_future(m.call("spawn_and_hang", {"pid_file": str(pid_file)}))
        while not (pid_file.exists() and len(pid_file.read_text().split()) == 3):
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return [int(p) for p in pid_file.read_text().split()]

    pids = asyncio.run(asyncio.wait_for(go(), 30))
    m.close()
    assert all(gone(pid) for pid in pids)


def test_a_child_that_ignores_sigterm_gets_sigkill_after_the_grace(tmp_path):
    pid_file = tmp_path / "pid"
    m = manager((st.ignore_sigterm_and_hang, {"timeout_s": 1, "sandbox": {"kill_grace_s": 0.3}}))
    started = time.monotonic()
    result = call(m, "ignore_sigterm_and_hang", {"pid_file": str(pid_file)})
    assert result.error_type == "timeout" and gone(int(pid_file.read_text()))
    assert time.monotonic() - started < 1 + 0.3 + 2.0


def test_processes_left_behind_by_a_returning_tool_are_ended(tmp_path):
    pid_file = tmp_path / "pid"
    result = call(manager((st.leave_daemon, {})), "leave_daemon", {"pid_file": str(pid_file)})
    assert result.ok and result.output == "returned"
    assert gone(int(pid_file.read_text()))
    assert any("left 1 process(es) running" in w for w in result.warnings)


def test_limits_are_set_in_the_child():
    result = call(manager((st.limits, {"timeout_s": 4.5, "sandbox": {"memory_mb": 1024,
                                                                     "open_files": 64}})),
                  "limits", {})
    assert result.output == {"cpu": 6, "as": 1024 * 1024 * 1024, "nofile": 64}


def test_cpu_time_limit_kills_a_busy_loop_before_its_timeout():
    m = manager((st.burn_cpu, {"timeout_s": 30, "sandbox": {"cpu_time_s": 1}}))
    started = time.monotonic()
    result = call(m, "burn_cpu", {})
    assert (result.ok, result.error_type) == (False, "cpu_limit")
    assert "SIGXCPU" in result.error and time.monotonic() - started < 10


def test_memory_and_open_file_limits_fail_the_call_with_a_hint():
    m = manager((st.allocate, {"sandbox": {"memory_mb": 256}}),
                (st.open_many, {"sandbox": {"open_files": 32}}))
    memory = call(m, "allocate", {"megabytes": 512})
    files = call(manager((st.open_many, {"sandbox": {"open_files": 32}})), "open_many", {"n": 64})
    assert memory.error_type == "MemoryError" and "memory_mb=256" in memory.error
    assert files.error_type == "OSError" and "open_files=32" in files.error


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def test_without_network_the_child_cannot_reach_even_loopback(listener):
    result = call(manager((st.connect, {})), "connect", {"port": listener})
    if not result.sandbox.network_isolated:
        pytest.skip(f"this OS does not permit network namespaces: {result.sandbox.detail}")
    assert (result.ok, result.error_type) == (False, "OSError")
    assert "unshare" in result.sandbox.detail


def test_network_true_keeps_the_parents_network(listener):
    result = call(manager((st.connect, {"sandbox": {"network": True}})), "connect",
                  {"port": listener})
    assert result.ok and result.output == "connected"
    assert result.sandbox.network_isolated is False and not result.warnings


def test_isolation_that_the_os_refuses_is_reported_not_fatal():
    refused = isolate_network(unshare=lambda flags: 1)  # EPERM for both attempts
    assert refused["isolated"] is False
    assert "not permitted" in refused["detail"] and "Operation not permitted" in refused["detail"]
    assert isolate_network(unshare=lambda flags: 0)["isolated"] is True


def test_parent_flags_and_warns_when_the_child_ran_without_isolation(caplog):
    from agentrt.toolmgr.subprocess_executor import ChildRun

    tool = RegisteredTool.from_function(st.echo, executor="subprocess")
    reply = b'{"network": {"isolated": false, "detail": "not permitted: EPERM"}, "ok": true, "value": 1}'
    outcome = SubprocessExecutor()._outcome(tool, tool.spec.sandbox_limits(),
                                            ChildRun(123, 0, reply, b""))
    assert outcome.value == 1 and outcome.sandbox.network_isolated is False
    assert outcome.warnings == ["no network isolation: not permitted: EPERM"]
    assert "runs without network isolation" in caplog.text


def test_values_and_arguments_that_json_cannot_carry_are_error_results():
    returned = call(manager((st.returns_set, {})), "returns_set", {})
    assert returned.error_type == "agentrt.toolmgr.NotJSONError"
    assert "cannot travel back from its sandbox as JSON" in returned.error


def test_functions_a_child_cannot_import_are_refused_with_what_to_do():
    with pytest.raises(SandboxTargetError, match="lambda or a nested function"):
        RegisteredTool.from_function(lambda x: x, name="anon", executor="subprocess")

    def nested(x: int) -> int:
        return x

    with pytest.raises(SandboxTargetError, match="define it at the top level of a module"):
        RegisteredTool.from_function(nested, executor="subprocess")


def test_a_function_not_reachable_by_its_name_is_an_error_result():
    def detached(x: int) -> int:
        return x

    detached.__qualname__ = "no_such_name"  # as a function of another process's __main__
    detached.__module__ = "__main__"
    result = call(manager((detached, {})), "detached", {"x": 1})
    assert result.error_type.endswith("SandboxTargetError")
    assert "not reachable by that name in the __main__ of another process" in result.error


def test_a_child_that_dies_without_a_reply_is_reported_with_its_stderr():
    result = call(manager((st.crash, {})), "crash", {})
    assert (result.ok, result.error_type) == (False, "sandbox_crash")
    assert "exited with status 3 without a reply" in result.error
    assert "about to crash" in result.error


def test_a_process_started_during_the_grace_in_a_new_session_is_found_and_killed(tmp_path):
    pid_file = tmp_path / "pid"
    m = manager((st.escape_on_sigterm, {"timeout_s": 1, "sandbox": {"kill_grace_s": 1.0}}))
    result = call(m, "escape_on_sigterm", {"pid_file": str(pid_file)})
    late = Path(str(pid_file) + ".late")
    assert result.error_type == "timeout" and late.exists()
    assert gone(int(pid_file.read_text())) and gone(int(late.read_text()))
