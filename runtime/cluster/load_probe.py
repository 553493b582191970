"""What the scheduler actor's calls cost: its added latency per call and the bytes a
call carries over each hop.

Latency ends when the scheduler has sent the workers what it decided on the call (the
end of its control batch's flush: a dispatch command, if the call could go, has left),
and is taken from two starts:

- `latency`: the caller's send (its wall clock, stamped just before the Ray call;
  every actor of a run reads the same clock, see `RunClock`): the caller's encoding,
  Ray's hop, the wait in the actor's event loop, the wait for the caller's earlier
  calls (`CallerOrder`), the decision and the encoding of the commands;
- `in_actor`: the call's method starting in the actor (the call has reached the
  scheduler): the wait for earlier calls, the decision and the commands' encoding.

Neither covers the worker's side. Kinds: "chat" (a runner's LLM call, each call of a
fork group counted once per group) and "report" (a worker's report of its engine).

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
        self.in_actor: dict[str, deque] = {}
        self.calls: dict[str, int] = {}
        self.size_turns: frozenset[int] = frozenset()
        self.sizes: dict[str, dict[str, int]] = {}  # request id -> hop -> bytes

    def took(self, kind: str, sent_at: float, entered: float) -> None:
        """A call of `kind` sent at wall time `sent_at` (0: unstamped), whose method
        started at `entered`, is done with."""
        self.calls[kind] = self.calls.get(kind, 0) + 1
        now = time.time()
        for rings, start in ((self.latency, sent_at), (self.in_actor, entered)):
            if start:
                ring = rings.get(kind)
                if ring is None:
                    ring = rings[kind] = deque(maxlen=RING)
                ring.append(now - start)

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
                "in_actor": {k: list(v) for k, v in self.in_actor.items()},
                "sizes": {k: dict(v) for k, v in self.sizes.items()}}

    def reset(self, size_turns: frozenset[int] = frozenset()) -> None:
        self.latency.clear()
        self.in_actor.clear()
        self.calls.clear()
        self.sizes.clear()
        self.size_turns = frozenset(size_turns)
