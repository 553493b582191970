"""Tools on the Ray runtime: a sandboxed tool and a per-program workspace work inside
runner actors, and the workspace is gone when the program is."""
from __future__ import annotations

import pytest

import agentrt
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig
from agentrt.toolmgr import WorkspacePool
from tests.toolmgr import sandbox_tools as st

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

def test_sandboxed_tools_with_workspaces_run_in_runner_actors(ray_cluster, tmp_path):
    root = tmp_path / "workspaces"
    write = agentrt.tool(name="write_file", executor="subprocess",
                         resources={"workspace": WorkspacePool(root=root, cap=4)})(st.write_file)

    @agentrt.program(name="writes_in_workspace")
    def writes(text: str):
        return write("out.txt", text)

    config = RuntimeConfig(workers=1, time_scale=0.2, runners=1, trace_dir=tmp_path / "runs")
    with Runtime(config) as rt:
        report = rt.run(writes, [{"text": "a"}, {"text": "b"}, {"text": "c"}])
    assert [r.status for r in report.results] == ["succeeded"] * 3, report.results[0].error
    for result in report.results:
        assert result.outputs["files"] == ["out.txt"]
        assert result.outputs["cwd"].startswith(str(root))
    assert list(root.iterdir()) == []
