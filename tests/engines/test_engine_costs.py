"""What routing is told of engines whose KV never moves (hosted APIs, HTTP servers):
a session's context is prefilled again, never reloaded from a host tier or copied from
a peer, so the core never chooses a move it cannot carry out."""
from __future__ import annotations

import math

import pytest

from agentrt.runtime.engines.factory import LatencyCost, ServerCost


@pytest.mark.parametrize("cost, prefill_8k", [
    (LatencyCost(ttft_s=0.25, prompt_token_s=1e-4), 0.25 + 8192 * 1e-4),
    (ServerCost(prefill_tokens_per_s=4096.0), 2.0),
])
def test_kv_that_stays_put_is_recomputed_never_moved(cost, prefill_8k):
    assert cost.prefill_time(8192) == pytest.approx(prefill_8k)
    assert cost.recompute_time(8192) == pytest.approx(prefill_8k)
    assert math.isinf(cost.reload_time(8192))
    assert math.isinf(cost.transfer_time(8192)) and math.isinf(cost.transfer_time(1, "rdma"))
