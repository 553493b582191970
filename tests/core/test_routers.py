"""Routers as pure strategy objects over a hand-built ClusterView."""
import pytest

from agentrt.runtime.core.routing.registry import ROUTERS, ClusterView, FlatCost, WorkerLoad, make_router
from tests.core.builders import make_request, make_stats


def make_view(*loads) -> ClusterView:
    """Workers w0, w1, ... with the given (queued, inflight) loads."""
    view = ClusterView()
    for i, (queued, inflight) in enumerate(loads):
        view.workers[f"w{i}"] = WorkerLoad(f"w{i}", queued=queued, inflight=inflight)
    return view


@pytest.mark.parametrize("name", ["least_loaded", "least_outstanding"])
def test_least_outstanding_counts_queued_and_inflight_calls(name):
    router = make_router(name)
    assert router.route(make_request("r"), make_view((2, 0), (0, 1), (1, 1))) == "w1"
    assert router.route(make_request("r"), make_view((1, 0), (0, 1))) == "w0"  # tie


def test_sticky_follows_the_session_home_while_it_is_in_the_cluster():
    view = make_view((5, 5), (0, 0))
    view.session_home["p0/s"] = "w0"
    router = make_router("sticky")
    assert router.route(make_request("r", program="p0"), view) == "w0"
    view.session_home["p0/s"] = "gone"
    assert router.route(make_request("r", program="p0"), view) == "w1"


@pytest.mark.parametrize("tokens, expected", [(2048, "w1"), (2049, "w0")])
def test_autellix_sends_short_prompts_to_the_least_loaded_and_long_ones_home(
        tokens, expected):
    view = make_view((3, 0), (0, 0))
    view.program_home["p0"] = "w0"
    request = make_request("r", program="p0", session="p0/other", tokens=tokens)
    assert make_router("autellix").route(request, view) == expected


def test_autellix_without_a_home_goes_to_the_least_loaded():
    request = make_request("r", program="new", tokens=9000)
    assert make_router("autellix").route(request, make_view((3, 0), (0, 0))) == "w1"


def test_predicted_ttft_is_queueing_plus_uncached_prefill():
    view = make_view((3, 1), (0, 0))
    view.cost = FlatCost(prefill_tokens_per_s=1000.0)
    busy = view.workers["w0"]
    busy.mean_call_s, busy.stats = 2.0, make_stats("w0", running=1)
    request = make_request("r", session="s", tokens=1000)
    view.session_home["s"], view.session_tokens["s"] = "w0", 600
    # w0: 3 queued + 0 engine-waiting calls, a seat every 2 s: 6 s; 400 new tokens.
    assert view.predicted_ttft(request, "w0") == pytest.approx(6.0 + 0.4)
    assert view.predicted_ttft(request, "w1") == pytest.approx(1.0)


def test_unknown_router_lists_valid_names():
    with pytest.raises(ValueError, match="autellix.*dualmap.*least_outstanding"):
        make_router("random")
    assert set(ROUTERS) >= {"round_robin", "least_outstanding", "sticky", "autellix",
                            "dualmap"}
