"""The load test against the loopback gateway, bounded in count (200 sessions x 2 turns
x 2 calls, the same again straight to the scheduler) and time: no call lost,
duplicated or crossed, and every /metrics scrape during the run parses as Prometheus
text. Latency figures are printed by `python -m agentrt.runtime.bench.gateway_load`,
not asserted here."""
from __future__ import annotations

import asyncio

import pytest

from agentrt.runtime.bench.gateway_load import problems, report, run_load

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]


def test_200_concurrent_multi_turn_sessions(gateway):
    result = asyncio.run(asyncio.wait_for(run_load(gateway, sessions=200, turns=2), 420))
    print(report(result, gateway.runtime.config.time_scale))
    assert result.gateway.calls == result.direct.calls == 800
    assert problems(result) == []
    assert result.scrapes >= 1
