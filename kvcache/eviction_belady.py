"""Belady's oracle (offline, for evaluation): evict the block whose next use is farthest.

It must be told the future. A future access is `FutureAccess(time, session_id,
hashes)`: a request of `session_id` will use the chain `hashes` (its prompt's block
hashes) at about `time`. Two ways to feed it, mixable:

    offline   `load(accesses)` before the run: every request of the trace, e.g. the
              admission times and prompt chains recorded by a first run of it
    online    `expect(session_id, hashes, at)` as soon as the driver knows: at a tool
              call's start the next turn comes at start + the trace's tool duration

and one call per request when it has run: `accessed(session_id)` (on its RequestDone,
before the engine steps again and before announcing the session's next access;
harmless for a request nobody announced), which makes the session's next access the
following one. Times only ORDER the pending accesses; an access stays pending until
reported, so a run slower than the recording never skips one.

Compression: a session's chain only grows, so the requests that use a block are all
its session's requests from the first one that held it on. Per hash the oracle keeps
(session, index of that request); a block's next use is the first pending access of
its session at or after that index: O(1), or O(sessions) for a prefix shared by
several sessions. Blocks whose hash no pending access uses go first (next use inf),
least recently freed first; the same order breaks ties between equal next uses.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agentrt.kvcache.eviction import register_eviction_policy
from agentrt.kvcache.eviction_keyed import KeyedEviction


@dataclass(frozen=True, slots=True)
class FutureAccess:
    """At `time`, a request of `session_id` uses the chain `hashes`."""

    time: float
    session_id: str
    hashes: Sequence[int]


@register_eviction_policy("belady")
class BeladyEviction(KeyedEviction):
    """See the module doc. add/remove/pop are O(log n) (x owners of a shared hash);
    `expect` and `accessed` re-key the session's evictable blocks."""

    def __init__(self, accesses: Iterable[FutureAccess] = ()) -> None:
        super().__init__()  # heap key: (-next use, freed at)
        self._times: dict[str, list[float]] = {}  # session -> its access times, in order
        self._done: dict[str, int] = {}  # session -> accesses reported as run
        self._owners: dict[int, list[tuple[str, int]]] = {}  # hash -> (session, first)
        self._chain: dict[str, tuple[int, int | None]] = {}  # session -> (hashes, last)
        self._members: dict[str, set[int]] = {}  # session -> evictable blocks it uses
        self.load(accesses)

    # -- the future ------------------------------------------------------------------

    def load(self, accesses: Iterable[FutureAccess]) -> None:
        """`expect` each access, in the order given (per session: time order)."""
        for a in accesses:
            self.expect(a.session_id, a.hashes, a.time)

    def expect(self, session_id: str, hashes: Sequence[int], at: float) -> None:
        """A request of `session_id` will use `hashes` at `at`. Raises ValueError if
        `at` is earlier than the session's previous access or `hashes` does not extend
        the chain it used."""
        times = self._times.setdefault(session_id, [])
        if times and at < times[-1]:
            raise ValueError(f"access of {session_id!r} at {at} before its previous one "
                             f"at {times[-1]}; expect each session's accesses in time order")
        known, last = self._chain.get(session_id, (0, None))
        if known and (len(hashes) < known or hashes[known - 1] != last):
            raise ValueError(f"the chain of {session_id!r} does not extend its previous one")
        times.append(at)
        index = len(times) - 1
        for h in hashes[known:]:
            self._owners.setdefault(h, []).append((session_id, index))
            block_id = self._block.get(h)
            if block_id is not None:
                self._rekey(block_id)
        if len(hashes) > known:
            self._chain[session_id] = (len(hashes), hashes[-1])
        self._rekey_session(session_id)

    def accessed(self, session_id: str) -> bool:
        """The session's earliest pending access has run. Returns False (and changes
        nothing) when none pends: an access nobody announced, as a session's first
        turn in online use."""
        done = self._done.get(session_id, 0)
        if done >= len(self._times.get(session_id, ())):
            return False
        self._done[session_id] = done + 1
        self._rekey_session(session_id)
        return True

    def next_use(self, content_hash: int) -> float:
        """The time of the first pending access that uses `content_hash` (inf: none)."""
        best = math.inf
        for session_id, first in self._owners.get(content_hash, ()):
            times = self._times[session_id]
            i = max(first, self._done.get(session_id, 0))
            if i < len(times) and times[i] < best:
                best = times[i]
        return best

    # -- the pool's side -----------------------------------------------------------



    # -- helpers -------------------------------------------------------------------

    def _rekey_session(self, session_id: str) -> None:
        for block_id in sorted(self._members.get(session_id, ())):
            self._rekey(block_id)

    def _rekey(self, block_id: int) -> None:
        h = self._hash[block_id]
        for session_id, _ in self._owners.get(h, ()):
            self._members.setdefault(session_id, set()).add(block_id)
        self._heap.push(block_id, -self.next_use(h), self._freed[block_id])

    def _forget_extra(self, block_id: int) -> None:
        for session_id, _ in self._owners.get(self._hash[block_id], ()):
            members = self._members.get(session_id)
            if members is not None:
                members.discard(block_id)
                if not members:
                    del self._members[session_id]
