"""The tool-overhead benchmark runs end to end (figures are printed, not checked)."""
from __future__ import annotations

import pytest

from agentrt.runtime.bench import tool_overhead


@pytest.mark.slow
def test_the_benchmark_prints_every_executor_and_both_preparations(capsys):
    assert tool_overhead.main(["--calls", "3", "--programs", "4", "--concurrency", "2",
                               "--llm-s", "0.05", "--prepare-s", "0.05", "--no-ray"]) == 0
    out = capsys.readouterr().out
    for label in ("inline", "thread", "subprocess, stdlib function",
                  "subprocess, agentrt tool module", "overlap", "before_start"):
        assert label in out
