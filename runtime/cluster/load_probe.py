"""What the scheduler actor's calls cost: its added latency per call and the bytes a
call carries over each hop.

Latency is measured from the moment the caller sends (its wall clock, stamped just
before the Ray call; every actor of a run reads the same clock, see `RunClock`) to the
moment the scheduler has sent the workers what it decided on that call (the end of its
control batch's flush: a dispatch command, if the call could go, has left). It covers
the caller's encoding, Ray's hop, the wait in the actor's event loop, the wait for the
caller's earlier calls (`CallerOrder`), the decision and the encoding of the commands;
not the worker's side. Kinds: "chat" (a runner's LLM call, each call of a fork group
counted once per group) and "report" (a worker's report of its engine).

Bytes are sampled per request id, for the calls `size_turns` names (by the turn number
in the id, `session#turn`): "runner" is the encoded call as it reached the scheduler,
"worker" the encoded command that sends it to its worker. Sizing a call encodes its
command once more, after its latency was taken.

Samples are kept in bounded rings (the newest `RING` of each kind), so a long-lived
scheduler's memory does not grow with its calls.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

RING = 200_000


class LoadProbe:
    def __init__(self) -> None:
        self.latency: dict[str, deque] = {}
        self.calls: dict[str, int] = {}
        self.size_turns: frozenset[int] = frozenset()
        self.sizes: dict[str, dict[str, int]] = {}  # request id -> hop -> bytes

    def took(self, kind: str, sent_at: float) -> None:
        """A call of `kind` sent at wall time `sent_at` is done with (0: unstamped)."""
        self.calls[kind] = self.calls.get(kind, 0) + 1
        if sent_at:
            ring = self.latency.get(kind)
            if ring is None:
                ring = self.latency[kind] = deque(maxlen=RING)
            ring.append(time.time() - sent_at)

    def wants_size(self, request_id: str) -> bool:
        if not self.size_turns:
            return False
        _, _, turn = request_id.rpartition("#")
        return turn.isdigit() and int(turn) in self.size_turns

    def sized(self, request_id: str, hop: str, size: int) -> None:
        self.sizes.setdefault(request_id, {})[hop] = size

    def figures(self) -> dict[str, Any]:
        """Plain values: per kind the number of calls and latency samples (seconds),
        and the sampled sizes."""
        return {"calls": dict(self.calls),
                "latency": {k: list(v) for k, v in self.latency.items()},
                "sizes": {k: dict(v) for k, v in self.sizes.items()}}

    def reset(self, size_turns: frozenset[int] = frozenset()) -> None:
        self.latency.clear()
        self.calls.clear()
        self.sizes.clear()
        self.size_turns = frozenset(size_turns)
