"""The host-memory tier: block contents moved out of GPU memory instead of dropped.

The tier stores content hashes only (the simulator moves no bytes); a hash here stands
for a block's KV copied to host memory, which a later prompt can reload at link
bandwidth instead of recomputing. Capacity is in blocks; when full, the least recently
offloaded block goes first.

Tiers are EXCLUSIVE: a hash is cached on the GPU (the pool) or here, never both. It
comes here when the pool evicts it (`offload`), and leaves when it is reloaded
(`take`), when the GPU commits the same content again (`discard`), or to make room.

Prefix closure ACROSS the tiers: the parent of every host block is cached on the GPU
or here (or it is a chain's first block). So along any chain the cached blocks are a
GPU run, then a host run, then nothing::

    chain   h0  h1  h2 | h3  h4 | h5 ...      match: 3 GPU blocks, then 2 host blocks
            GPU pool   | host   | neither

and `stretch` is a binary search. Why closure holds: the pool evicts leaf first, so a
block comes here after its cached children (which are here already or gone); a block
leaves here to make room only as a leaf (see below); reloading or recommitting puts
the parent back on the GPU. So nothing here ever loses its parent.

Why the oldest block is always a leaf here: a block enters while it is a GPU leaf,
after all of its children that are here (they entered when it was still on the GPU,
which it had to be while they were). Entering order is LRU order (nothing "touches" a
host block; a reload takes it out), so popping the oldest never orphans a child.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agentrt.kvcache.prefix import leading_run


@dataclass(frozen=True, slots=True)
class OffloadResult:
    """What one offload did: blocks stored here, and blocks pushed out to make room."""

    stored: int
    pushed_out: int


class HostTier:
    """Content hashes in host memory, with their parent hashes, in LRU order.

    All operations are O(1) per hash except `stretch` (O(log n)). Nothing here calls
    back into the pool; the manager keeps the two tiers exclusive (see module doc).
    """

    def __init__(self, capacity_blocks: int) -> None:
        if capacity_blocks < 1:
            raise ValueError(f"capacity_blocks must be >= 1, got {capacity_blocks}")
        self.capacity = capacity_blocks
        self._parent: OrderedDict[int, int | None] = OrderedDict()  # oldest first
        self._children: dict[int, int] = {}  # parent hash -> children held here
        self.stored_total = 0  # blocks ever offloaded here
        self.pushed_out_total = 0  # blocks ever pushed out to make room

    def __len__(self) -> int:
        return len(self._parent)

    def __contains__(self, content_hash: object) -> bool:
        return content_hash in self._parent

    def stretch(self, hashes: Sequence[int], start: int) -> int:
        """How many of `hashes[start:]` are here, as a leading run. Valid when
        `hashes[:start]` is the chain's GPU-cached prefix (closure makes the host
        blocks after it a leading run). O(log n)."""
        return leading_run(hashes, self._parent, start)

    def offload(self, evicted: Sequence[tuple[int, int | None]]) -> OffloadResult:
        """Store blocks the GPU evicted: (content hash, parent hash) pairs, a child
        before its parent (the pool's eviction order). Pushes out the oldest blocks
        when full. A hash already here is left where it is."""
        held, children = self._parent, self._children
        stored = pushed = 0
        for content_hash, parent_hash in evicted:
            if content_hash in held:
                continue
            if len(held) >= self.capacity:
                self._pop_oldest()
                pushed += 1
            held[content_hash] = parent_hash
            if parent_hash is not None:
                children[parent_hash] = children.get(parent_hash, 0) + 1
            stored += 1
        self.stored_total += stored
        self.pushed_out_total += pushed
        return OffloadResult(stored, pushed)

    def take(self, hashes: Sequence[int]) -> None:
        """Remove `hashes` (all here) because they are being reloaded onto the GPU;
        their children here stay, with the parent back on the GPU. KeyError if one
        is missing (nothing is removed then)."""
        missing = [h for h in hashes if h not in self._parent]
        if missing:
            raise KeyError(f"{len(missing)} hashes are not in the host tier, e.g. {missing[0]}")
        for h in hashes:
            self._remove(h)

    def discard(self, hashes: Sequence[int]) -> int:
        """The GPU now caches `hashes`: drop any host copies. Returns how many."""
        held = self._parent
        dropped = 0
        for h in hashes:
            if h in held:
                self._remove(h)
                dropped += 1
        return dropped

    def _remove(self, h: int) -> None:
        parent_hash = self._parent.pop(h)
        if parent_hash is not None:
            self._unchild(parent_hash)

    def _pop_oldest(self) -> None:
        h, parent_hash = self._parent.popitem(last=False)
        if self._children.get(h):
            raise AssertionError(f"host tier: oldest block {h} has children (LRU order broken)")
        if parent_hash is not None:
            self._unchild(parent_hash)

    def _unchild(self, parent_hash: int) -> None:
        children = self._children
        left = children[parent_hash] - 1
        if left:
            children[parent_hash] = left
        else:
            del children[parent_hash]

    def violations(self, on_gpu: Callable[[int], bool]) -> list[str]:
        """Broken invariants, given `on_gpu(hash)` (is it cached in the pool?):
        capacity, exclusivity, closure across tiers, child counts, leaf-first order."""
        out: list[str] = []
        held = self._parent
        if len(held) > self.capacity:
            out.append(f"host tier holds {len(held)} blocks > capacity {self.capacity}")
        children: Counter[int] = Counter(p for p in held.values() if p is not None)
        if dict(children) != self._children:
            out.append("host tier: child counts disagree with the stored parents")
        seen: set[int] = set()
        for h, parent_hash in held.items():
            if on_gpu(h):
                out.append(f"host block {h} is also cached on the GPU")
            if parent_hash is not None and parent_hash not in held and not on_gpu(parent_hash):
                out.append(f"host block {h}: parent {parent_hash} in neither tier (closure)")
            if parent_hash is not None and parent_hash in seen:
                out.append(f"host block {h} entered after its parent {parent_hash}")
            seen.add(h)
        return out
