"""The ray executor: a call as a Ray task with the tool's own resources; a timeout
cancels the task and kills its worker."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from agentrt.toolmgr import ToolManager, ToolRegistry
from tests.toolmgr import sandbox_tools as st
from tests.toolmgr.test_toolmgr_subprocess import gone

pytestmark = pytest.mark.ray


def call(m: ToolManager, name: str, arguments: dict):
    try:
        return asyncio.run(asyncio.wait_for(m.call(name, arguments), 120))
    finally:
        m.close()


def manager(fn, **options) -> ToolManager:
    registry = ToolRegistry()
    registry.register(fn, executor="ray", **options)
    return ToolManager(registry)


def test_without_ray_running_the_call_says_what_to_do():
    import ray

    if ray.is_initialized():
        pytest.skip("Ray was started by an earlier test of this session")
    result = call(manager(st.echo), "echo", {"text": "x"})
    assert result.error_type == "RuntimeError" and "call ray.init() first" in result.error


def test_a_call_runs_as_a_task_with_the_declared_resources(ray_cluster):
    result = call(manager(st.assigned_resources, ray={"num_cpus": 1}), "assigned_resources", {})
    assert result.ok and result.executor == "ray", result.error
    assert result.output["pid"] != os.getpid()
    assert result.output["resources"] == {"CPU": 1.0}


def test_the_tools_exception_comes_back_with_its_type(ray_cluster):
    result = call(manager(st.fail), "fail", {"message": "missing"})
    assert (result.ok, result.error_type, result.error) == (False, "KeyError", "KeyError: 'missing'")


def test_a_timeout_cancels_the_task_and_kills_its_worker(ray_cluster, tmp_path):
    pid_file = tmp_path / "pid"
    result = call(manager(st.sleep_and_record, timeout_s=3), "sleep_and_record",
                  {"pid_file": str(pid_file), "seconds": 600})
    assert (result.ok, result.error_type) == (False, "timeout")
    assert "its Ray task was cancelled" in result.error
    pid = int(pid_file.read_text())
    end = time.monotonic() + 20
    while not gone(pid) and time.monotonic() < end:
        time.sleep(0.1)
    assert gone(pid)
