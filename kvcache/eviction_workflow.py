"""Workflow-aware eviction (SAGA, reconstructed): keep what the workflow will reuse soon.

Each evictable block belongs to the session whose chain holds its content hash (or to
several: then it is a SHARED prefix). The driver reports what sessions do; a block's
score is its session's

    score = p_reuse / E[time to next use] x rebuild cost per block

and the lowest score goes first (ties: least recently freed, then added first):

    session state            p_reuse                         E[next use]
    paused on tool T         P(turn | agent, T), as told     the tool's mean, as told
    resumed (next request)   1                               min_gap_s
    finished / unknown       0 (evicted first, LRU)          -
    shared prefix            score inf (kept longest; LRU among shared blocks)

The odds and the gap come from whoever watches the whole workflow (the cluster
control keeps the step transitions, `StepTransitions`, and the tools' duration model).

Only leaves are evictable (the pool's rule), so within a session the deepest blocks go
first and prefixes shared with other chains last. Scores are computed when a block
becomes evictable and when its session's state is reported; they do not decay between
reports. The engine feeds it through `session_paused`, `session_resumed`,
`session_finished`; without reports it is LRU.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from agentrt.kvcache.eviction import register_eviction_policy
from agentrt.kvcache.eviction_keyed import KeyedEviction

SHARED = "\x00shared"  # owner of a hash that several sessions' chains hold


class StepTransitions:
    """What follows what, per agent type: counts of (agent, src) -> dst.

    `probability` is (count(dst) + prior) / (total + 1): `prior` with no data, the
    observed frequency as data accumulates."""

    def __init__(self, prior: float = 0.9) -> None:
        if not 0.0 <= prior <= 1.0:
            raise ValueError(f"prior must be in [0, 1], got {prior}")
        self.prior = prior
        self._counts: dict[tuple[str, str], dict[str, int]] = {}

    def record(self, agent: str, src: str, dst: str) -> None:
        counts = self._counts.setdefault((agent, src), {})
        counts[dst] = counts.get(dst, 0) + 1

    def probability(self, agent: str, src: str, dst: str) -> float:
        counts = self._counts.get((agent, src))
        if not counts:
            return self.prior
        return (counts.get(dst, 0) + self.prior) / (sum(counts.values()) + 1)


@dataclass(slots=True)
class _Session:
    score: float = 0.0
    owned: list[int] = field(default_factory=list)  # hashes registered first by it
    registered: int = 0  # leading hashes of its chain registered
    last_hash: int | None = None
    blocks: set[int] = field(default_factory=set)  # its evictable blocks


@register_eviction_policy("workflow_aware")
class WorkflowAwareEviction(KeyedEviction):
    """See the module doc. add/remove/touch/pop are O(log n); a session report is
    O(new hashes + its evictable blocks x log n)."""

    def __init__(self, min_gap_s: float = 1e-3) -> None:
        self.min_gap_s = min_gap_s
        super().__init__()
        self._owner: dict[int, str] = {}  # content hash -> session id or SHARED
        self._sessions: dict[str, _Session] = {}
        self._member: dict[int, str] = {}  # evictable block -> session whose set has it

    # -- the pool's side -----------------------------------------------------------



    # -- the workflow's side -------------------------------------------------------

    def session_paused(
        self, session_id: str, hashes: Sequence[int], now: float, *, p_reuse: float,
        gap_s: float, rebuild_cost_s: float | None = None,
    ) -> None:
        """`session_id` (chain `hashes`, extending what it reported before) waits on a
        tool: it calls again with probability `p_reuse`, in about `gap_s` seconds;
        rebuilding its whole context would take `rebuild_cost_s` (recompute or host
        reload, whichever the engine would do; None: 1 s per block)."""
        s = self._register(session_id, hashes)
        per_block = (rebuild_cost_s / max(1, len(hashes))) if rebuild_cost_s is not None else 1.0
        self._set_score(s, p_reuse * per_block / max(gap_s, self.min_gap_s))

    def session_resumed(self, session_id: str, hashes: Sequence[int], now: float) -> None:
        """The session's next request arrived: its blocks are needed next."""
        s = self._register(session_id, hashes)
        self._set_score(s, max(s.score, 1.0 / self.min_gap_s))

    def session_finished(self, session_id: str) -> None:
        """The session will not run again: its blocks score 0 (shared ones stay)."""
        s = self._sessions.pop(session_id, None)
        if s is None:
            return
        for h in s.owned:
            if self._owner.get(h) == session_id:
                del self._owner[h]
        for block_id in sorted(s.blocks):
            self._rekey(block_id)

    def score(self, block_id: int) -> float:
        """The current score of an evictable block (KeyError if it is not one)."""
        key = self._heap.key(block_id)
        if key is None:
            raise KeyError(f"block {block_id} is not evictable")
        return key[0]

    # -- helpers -------------------------------------------------------------------

    def _register(self, session_id: str, hashes: Sequence[int]) -> _Session:
        s = self._sessions.get(session_id)
        if s is None:
            s = self._sessions[session_id] = _Session()
        start = s.registered
        if start and (len(hashes) < start or hashes[start - 1] != s.last_hash):
            start = 0  # not an extension: register the whole chain again
        for h in hashes[start:]:
            owner = self._owner.get(h)
            if owner is None:
                self._owner[h] = session_id
                s.owned.append(h)
            elif owner != session_id and owner != SHARED:
                self._owner[h] = SHARED
            else:
                continue
            block_id = self._block.get(h)
            if block_id is not None:
                self._rekey(block_id)
        s.registered, s.last_hash = len(hashes), hashes[-1] if hashes else None
        return s

    def _set_score(self, s: _Session, score: float) -> None:
        s.score = score
        for block_id in sorted(s.blocks):
            self._rekey(block_id)

    def _rekey(self, block_id: int) -> None:
        self._unlink(block_id)
        owner = self._owner.get(self._hash[block_id])
        if owner == SHARED:
            score = math.inf
        elif owner is not None:
            self._sessions[owner].blocks.add(block_id)
            self._member[block_id] = owner
            score = self._sessions[owner].score
        else:
            score = 0.0
        self._heap.push(block_id, score, self._freed[block_id])

    def _unlink(self, block_id: int) -> None:
        """Take the block out of the session set it is in, if any."""
        member = self._member.pop(block_id, None)
        s = self._sessions.get(member) if member is not None else None
        if s is not None:
            s.blocks.discard(block_id)

    def _forget_extra(self, block_id: int) -> None:
        self._unlink(block_id)
