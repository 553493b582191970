"""The simple routers: baselines, session affinity and the Autellix rule.

    round_robin        next worker in join order (what a plain load balancer does)
    least_loaded       fewest outstanding calls (queued here + in flight), ties by
                       join order
    least_outstanding  the baselines' name for the same rule: the load balancer's
                       "least outstanding requests"
    sticky             the session's home worker (where its KV lives) while it is in
                       the cluster, else the least loaded worker
    autellix           prompts of at most `long_prompt_tokens` to the least loaded
                       worker; longer ones to the program's worker (where its latest
                       call went), else the least loaded
"""
from __future__ import annotations

from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.core.routing.base import ClusterView, Router


class StickyAffinity(Router):
    name = "sticky"

    def route(self, request: LLMRequest, view: ClusterView) -> str:
        home = view.session_home.get(request.session_id)
        if home is not None and home in view.workers:
            return home
        return view.least_loaded()


class LeastLoaded(Router):
    name = "least_loaded"

    def route(self, request: LLMRequest, view: ClusterView) -> str:
        return view.least_loaded()


class LeastOutstanding(LeastLoaded):
    name = "least_outstanding"


class RoundRobin(Router):
    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def route(self, request: LLMRequest, view: ClusterView) -> str:
        ids = list(view.workers)
        worker_id = ids[self._next % len(ids)]
        self._next += 1
        return worker_id


class AutellixRouter(Router):
    name = "autellix"

    def __init__(self, long_prompt_tokens: int = 2048) -> None:
        if long_prompt_tokens < 0:
            raise ValueError(f"long_prompt_tokens must be >= 0, got {long_prompt_tokens}")
        self.long_prompt_tokens = long_prompt_tokens

    def route(self, request: LLMRequest, view: ClusterView) -> str:
        if request.prompt_tokens > self.long_prompt_tokens:
            home = view.program_home.get(request.program_id)
            if home is not None and home in view.workers:
                return home
        return view.least_loaded()
