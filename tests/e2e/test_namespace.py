"""agentrt installs under one namespace: a project with its own `programs`, `runtime`
and `kvcache` packages imports agentrt and runs programs with it, and both sides see
their own modules (before, `import agentrt` there failed with ImportError: cannot
import name 'Candidate' from 'programs')."""
from __future__ import annotations

import subprocess
import sys

import pytest

MAIN = '''
import programs, runtime, kvcache   # the project's own packages
import agentrt
from agentrt import program, step

@step
async def greet(ctx, who):
    reply = await ctx.chat([{"role": "user", "content": f"say hello to {who}"}])
    return {"who": who, "mine": [programs.Candidate, runtime.NAME, kvcache.cache()],
            "tokens": reply.usage.completion_tokens}

@program
def hello(who):
    return greet(who)

if __name__ == "__main__":
    report = agentrt.run(hello, [{"who": "a"}, {"who": "b"}], workers=1, runners=1,
                         time_scale=0.05, trace_dir="runs")
    print("statuses", [r.status for r in report.results])
    print("outputs", [r.outputs["mine"] for r in report.results])
    print("agentrt's", agentrt.Candidate.__module__, "theirs", programs.Candidate)
'''


def make_project(root) -> None:
    for package, body in (("programs", 'Candidate = "my own Candidate"\n'),
                          ("runtime", 'NAME = "my runtime"\n'),
                          ("kvcache", 'def cache():\n    return "my kvcache"\n')):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(body)
    (root / "main.py").write_text(MAIN)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_project_with_its_own_programs_runtime_and_kvcache_runs_agentrt(tmp_path):
    make_project(tmp_path)
    proc = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "statuses ['succeeded', 'succeeded']" in out
    mine = "['my own Candidate', 'my runtime', 'my kvcache']"
    assert f"outputs [{mine}, {mine}]" in out  # the steps saw the project's packages
    assert "agentrt's agentrt.programs.choices theirs my own Candidate" in out
