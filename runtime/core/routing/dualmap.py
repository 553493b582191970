"""DualMap: cache affinity and load balance from two hashes of the prompt prefix.

A session's key is the block hash of its first prompt at `key_tokens` deep (or its last
full block if shorter): sessions that share that much prefix (forks of one step, the
same long context) share a key, and every later turn of a session reuses the key of
its first. Two independent hashes of the key fall on two consistent-hash rings and
give two distinct candidate workers:

    key ──hash1──▶ ring 1 ──▶ c1
        ──hash2──▶ ring 2 ──▶ c2   (the next worker along ring 2 when it is c1)

    holder = the candidate that is the session's home (holds its cache), if any
    holder and predicted TTFT(holder) <= slo      ──▶ holder
    holder and the SLO is broken                  ──▶ the candidate with the lower TTFT
    no holder                                     ──▶ the candidate with the lower TTFT
                                                      (then fewer calls, then c1)

TTFT is predicted by `ClusterView.predicted_ttft`: expected queueing on the worker
plus prefill of what it does not hold. A hot spot is thus relieved only onto the
other candidate, never scattered. Adding or removing a worker changes a session's
candidate pair only when the worker is, or becomes, one of the pair.
"""
from __future__ import annotations

from agentrt.kvcache.prefix import stable_hash
from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.core.routing.base import ClusterView, Router
from agentrt.runtime.core.routing.hash_ring import HashRing


class DualMap(Router):
    name = "dualmap"

    def __init__(self, ttft_slo_s: float = 2.0, vnodes: int = 64,
                 key_tokens: int = 2048) -> None:
        if ttft_slo_s <= 0 or key_tokens < 1:
            raise ValueError(f"need ttft_slo_s > 0 and key_tokens >= 1; got "
                             f"ttft_slo_s={ttft_slo_s}, key_tokens={key_tokens}")
        self.ttft_slo_s = ttft_slo_s
        self.key_tokens = key_tokens
        self._rings = (HashRing("dualmap-1", vnodes), HashRing("dualmap-2", vnodes))
        self._keys: dict[str, tuple[int, int]] = {}  # session id -> its two ring keys

    def add_worker(self, worker_id: str) -> None:
        for ring in self._rings:
            ring.add(worker_id)

    def remove_worker(self, worker_id: str) -> None:
        for ring in self._rings:
            ring.remove(worker_id)

    def forget_session(self, session_id: str) -> None:
        self._keys.pop(session_id, None)

    def prefix_key(self, request: LLMRequest) -> int:
        """The hash the session's placement derives from (see the module docstring)."""
        hashes = request.prefix.hashes
        depth = min(len(hashes), max(1, self.key_tokens // request.prefix.block_size))
        return hashes[depth - 1] if depth else stable_hash("session", request.session_id)

    def candidates(self, request: LLMRequest) -> tuple[str, str]:
        """The two workers the request may go to (the same one twice on a one-worker
        cluster). Raises LookupError when no worker was added."""
        keys = self._keys.get(request.session_id)
        if keys is None:
            key = self.prefix_key(request)
            keys = self._keys[request.session_id] = (stable_hash("dualmap-1", key),
                                                     stable_hash("dualmap-2", key))
        first = self._rings[0].lookup(keys[0])
        for second in self._rings[1].owners_from(keys[1]):
            if second != first:
                return first, second
        return first, first

    def route(self, request: LLMRequest, view: ClusterView) -> str:
        c1, c2 = self.candidates(request)
        home = view.session_home.get(request.session_id)
        ttft = {c: view.predicted_ttft(request, c) for c in (c1, c2)}
        if home in ttft and ttft[home] <= self.ttft_slo_s:
            return home
        if home in ttft:  # the holder breaks the SLO: move only if the other is faster
            other = c2 if home == c1 else c1
            return other if ttft[other] < ttft[home] else home
        workers = view.workers
        return min((c1, c2), key=lambda c: (ttft[c], workers[c].load, c != c1))
