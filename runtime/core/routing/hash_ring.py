"""A consistent-hash ring with virtual nodes.

Each worker owns `vnodes` points on a ring of 63-bit integers, placed by a stable hash
of (ring salt, worker id, index). A key belongs to the owner of the first point at or
after it (wrapping round):

    0 ─── a#3 ─── b#0 ───── a#1 ── c#2 ──── ... ──── b#7 ─── 2^63
              key ──▶ b     key ──▶ c

Adding a worker moves only the keys that now land on its points; removing one moves
only the keys that were on its points. Placement depends only on the salt and the set
of workers, never on the order they joined.
"""
from __future__ import annotations

import bisect
from typing import Iterator

from agentrt.kvcache.prefix import stable_hash


class HashRing:
    __slots__ = ("salt", "vnodes", "_points", "_owners", "_members")

    def __init__(self, salt: str, vnodes: int = 64) -> None:
        if vnodes < 1:
            raise ValueError(f"vnodes must be >= 1, got {vnodes}")
        self.salt = salt
        self.vnodes = vnodes
        self._points: list[int] = []  # sorted
        self._owners: list[str] = []  # owner of the point at the same index
        self._members: set[str] = set()

    def add(self, worker_id: str) -> None:
        """Place a worker's points. Raises ValueError if it is already on the ring."""
        if worker_id in self._members:
            raise ValueError(f"worker {worker_id!r} is already on ring {self.salt!r}")
        self._members.add(worker_id)
        for i in range(self.vnodes):
            point = stable_hash(self.salt, worker_id, i)
            at = bisect.bisect_left(self._points, point)
            self._points.insert(at, point)
            self._owners.insert(at, worker_id)

    def remove(self, worker_id: str) -> None:
        """Take a worker's points off. Raises KeyError if it is not on the ring."""
        if worker_id not in self._members:
            raise KeyError(f"worker {worker_id!r} is not on ring {self.salt!r}")
        self._members.discard(worker_id)
        keep = [i for i, owner in enumerate(self._owners) if owner != worker_id]
        self._points = [self._points[i] for i in keep]
        self._owners = [self._owners[i] for i in keep]

    def owners_from(self, key: int) -> Iterator[str]:
        """Owners of the points from `key` clockwise, each worker once."""
        n = len(self._points)
        start = bisect.bisect_left(self._points, key)
        seen: set[str] = set()
        for i in range(n):
            owner = self._owners[(start + i) % n]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == len(self._members):
                    return

    def lookup(self, key: int) -> str:
        """The worker owning `key`. Raises LookupError on an empty ring."""
        if not self._points:
            raise LookupError(f"ring {self.salt!r} is empty: add a worker first")
        return self._owners[bisect.bisect_left(self._points, key) % len(self._points)]

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, worker_id: str) -> bool:
        return worker_id in self._members
