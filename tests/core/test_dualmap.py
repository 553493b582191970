"""DualMap: two hashes of the prefix on consistent-hash rings, cheap scaling."""
import pytest

from agentrt.runtime.core.routing.registry import ClusterView, DualMap, HashRing, WorkerLoad, make_router
from tests.core.builders import make_request, make_stats

WORKERS = [f"w{i}" for i in range(8)]


def make_dualmap(workers=WORKERS, **options):
    router, view = make_router("dualmap", **options), ClusterView()
    for worker_id in workers:
        router.add_worker(worker_id)
        view.workers[worker_id] = WorkerLoad(worker_id)
    return router, view


def sessions(n):
    return [make_request(f"s{i}#0", program=f"p{i}", session=f"s{i}", tokens=300)
            for i in range(n)]


def test_ring_lookup_ignores_join_order_and_removal_moves_only_its_keys():
    a, b = HashRing("x", vnodes=16), HashRing("x", vnodes=16)
    for w in ["w0", "w1", "w2"]:
        a.add(w)
    for w in ["w2", "w0", "w1"]:
        b.add(w)
    keys = range(0, 2**63, 2**55)
    before = {k: a.lookup(k) for k in keys}
    assert before == {k: b.lookup(k) for k in keys}
    a.remove("w1")
    assert all(a.lookup(k) == w for k, w in before.items() if w != "w1")
    assert sorted(b.owners_from(12345)) == ["w0", "w1", "w2"]
    with pytest.raises(LookupError, match="empty"):
        HashRing("y").lookup(1)


def test_candidates_are_two_distinct_workers_kept_for_the_session():
    router, _ = make_dualmap()
    first = make_request("s#0", session="s", tokens=300)
    c1, c2 = router.candidates(first)
    assert c1 != c2 and {c1, c2} <= set(WORKERS)
    later = make_request("s#1", session="s", tokens=5000)  # the prompt grew
    assert router.candidates(later) == (c1, c2)
    solo, _ = make_dualmap(["w0"])
    assert solo.candidates(first) == ("w0", "w0")


def test_forks_sharing_a_prefix_share_their_candidates():
    router, _ = make_dualmap(key_tokens=256)
    # Both samples start with the same 300 tokens (the same synthetic run).
    fork_a = make_request("a#0", session="step", tokens=300)
    fork_b = make_request("b#0", session="step", tokens=300)
    fork_b.session_id = "step~1"
    assert router.candidates(fork_a) == router.candidates(fork_b)


def test_the_holder_wins_until_its_predicted_ttft_breaks_the_slo():
    router, view = make_dualmap(ttft_slo_s=1.0)
    request = make_request("s#1", session="s", tokens=300)
    c1, c2 = router.candidates(request)
    view.session_home["s"], view.session_tokens["s"] = c2, 300
    view.workers[c1].queued = 0
    view.workers[c2].queued = 3  # more loaded, but it holds the cache
    assert router.route(request, view) == c2
    hot = view.workers[c2]
    hot.mean_call_s, hot.stats = 1.0, make_stats(c2, running=1)  # 3 s of queueing
    assert router.route(request, view) == c1
    view.workers[c1].mean_call_s = 2.0
    view.workers[c1].queued = 2  # 4 s: slower than staying
    assert router.route(request, view) == c2


def test_without_a_holder_the_faster_candidate_then_the_less_loaded():
    router, view = make_dualmap()
    request = make_request("s#0", session="s", tokens=300)
    c1, c2 = router.candidates(request)
    assert router.route(request, view) == c1
    view.workers[c1].inflight = 1
    assert router.route(request, view) == c2


def pairs(router, requests):
    return {r.session_id: set(router.candidates(r)) for r in requests}


def test_adding_a_worker_remaps_only_the_keys_it_joins():
    requests = sessions(2000)
    router, _ = make_dualmap()
    before = pairs(router, requests)
    router.add_worker("w8")
    after = pairs(router, requests)
    changed = [s for s in before if before[s] != after[s]]
    assert all("w8" in after[s] for s in changed)
    # About 2/9 of the 2000 pairs gain w8.
    assert len(changed) == sum("w8" in pair for pair in after.values()) == 490


def test_removing_a_worker_remaps_only_the_keys_it_held():
    requests = sessions(2000)
    router, _ = make_dualmap()
    before = pairs(router, requests)
    router.remove_worker("w3")
    after = pairs(router, requests)
    changed = [s for s in before if before[s] != after[s]]
    # About 2/8 of the 2000 pairs held w3.
    assert len(changed) == sum("w3" in pair for pair in before.values()) == 528
    assert all("w3" not in pair for pair in after.values())


def test_bad_options_name_the_problem():
    with pytest.raises(ValueError, match="ttft_slo_s"):
        DualMap(ttft_slo_s=0.0)
    with pytest.raises(ValueError, match="vnodes"):
        DualMap(vnodes=0)
