"""A gateway on the shared Ray instance, for the tests that drive one over HTTP."""
from __future__ import annotations

import pytest

MODEL = "llama-3.1-8b"


def start_gateway(tmp_path_factory, **options):
    from agentrt.runtime.serve import serve
    from agentrt.runtime.serve.responders import tool_rounds

    options.setdefault("responder", tool_rounds())
    return serve(workers=2, port=0, trace_dir=tmp_path_factory.mktemp("gateway"), **options)


@pytest.fixture(scope="module")
def gateway(ray_cluster, tmp_path_factory):
    """Loopback, no keys (the default), simulated engines 20x faster than modeled, the
    scripted model that calls the client's tools."""
    gw = start_gateway(tmp_path_factory, time_scale=0.05, idle_timeout_s=2.0)
    yield gw
    gw.stop()
