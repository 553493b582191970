"""The journal benchmark measures what it says: every write it times lands."""
from __future__ import annotations

from agentrt.runtime.bench import journal_cost


def test_the_benchmark_times_every_write_and_the_journal_holds_them(capsys):
    rows = journal_cost.run(steps=40, concurrency=[1, 4], size=64, url=None)
    counts = {(r["programs at once"], r["operation"]): r["count"] for r in rows}
    assert counts == {(1, "step"): 40, (1, "tool call"): 40, (1, "program"): 1,
                      (4, "step"): 40, (4, "tool call"): 40, (4, "program"): 4}
    assert all(0 < r["p50_ms"] <= r["p99_ms"] for r in rows)
    assert journal_cost.main(["--steps", "8", "--concurrency", "2"]) == 0
    assert "sqlite (WAL)" in capsys.readouterr().out
