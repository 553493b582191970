"""Eviction policies: which free cached block the pool gives up first.

The pool owns the mechanism (what is evictable); a policy only orders the evictable
blocks. Policies are picked by name from a registry::

    @register_eviction_policy("lru")
    class LRUEviction(EvictionPolicy): ...

    make_eviction_policy("lru")          # -> LRUEviction()
    make_eviction_policy("nope")         # ValueError listing the valid names

Registered here: "lru". In `kvcache.eviction_workflow`: "workflow_aware"; in
`kvcache.eviction_belady`: "belady" (both imported by the package, so always listed).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from agentrt.kvcache.block_pool import BlockPool


class EvictionPolicy(ABC):
    """An ordered set of the block ids that may be evicted right now.

    Contract with the pool (`kvcache.block_pool.BlockPool`):

    - The pool calls `add` when a block becomes evictable (cached, ref count 0, no
      cached child) and `remove` when it stops being evictable without being evicted
      (acquired again, or it gained a cached child). It never adds an id twice or
      removes an id it did not add; policies may raise KeyError if it does.
    - `add(..., oldest=True)` marks a block whose last use is no later than that of any
      block in the set (a parent exposed by evicting its last cached child); policies
      that order by recency should place it first in line.
    - `pop_victim` removes and returns the block to evict next, or None when empty.
      The pool evicts exactly the block returned.
    - `touch` reports a use of a block that stays evictable (a read that takes no
      reference); the pool itself does not call it today.
    - All methods mutate only the policy; none may call back into the pool. Given the
      same call sequence, a policy returns the same victims (no global RNG, no clock).
    - `exposed_parent_next` (class attribute) promises that a block added with
      `oldest=True` is the next `pop_victim` when nothing is called in between. The
      pool then evicts such a parent at once when it needs another victim, skipping
      the add/pop round trip (a freed chain goes leaf to root in one sweep), so the
      policy never sees it.
    """

    exposed_parent_next: bool = False

    def bind(self, pool: BlockPool) -> None:
        """Called once by the pool that owns this policy, before any other call. A
        policy that scores blocks by content may keep `pool` to READ a block's hash
        (`pool.blocks[block_id].hash`) inside `add`; it must never mutate the pool."""

    @abstractmethod
    def add(self, block_id: int, now: float, oldest: bool = False) -> None:
        """`block_id` became evictable at time `now`."""

    @abstractmethod
    def remove(self, block_id: int) -> None:
        """`block_id` is no longer evictable."""

    @abstractmethod
    def touch(self, block_id: int, now: float) -> None:
        """`block_id` (evictable) was used at `now`."""

    @abstractmethod
    def pop_victim(self) -> int | None:
        """Remove and return the next block to evict, or None if there is none."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of evictable blocks."""

    @abstractmethod
    def __contains__(self, block_id: object) -> bool:
        """True if `block_id` is currently evictable."""


_POLICIES: dict[str, Callable[..., EvictionPolicy]] = {}
P = TypeVar("P", bound=Callable[..., EvictionPolicy])


def register_eviction_policy(name: str) -> Callable[[P], P]:
    """Class decorator: make a policy constructible by `name`. Returns the class."""

    def register(factory: P) -> P:
        if name in _POLICIES:
            raise ValueError(f"eviction policy {name!r} is already registered")
        _POLICIES[name] = factory
        return factory

    return register


def eviction_policy_names() -> list[str]:
    return sorted(_POLICIES)


def make_eviction_policy(name: str, **options: Any) -> EvictionPolicy:
    """A fresh policy registered under `name`; `options` go to its constructor.

    Raises ValueError naming the valid policies if `name` is unknown.
    """
    factory = _POLICIES.get(name)
    if factory is None:
        raise ValueError(
            f"unknown eviction policy {name!r}; valid names: {', '.join(eviction_policy_names())}"
        )
    return factory(**options)


@register_eviction_policy("lru")
class LRUEviction(EvictionPolicy):
    """Least recently used first. All operations O(1).

    Order is the order of `add` calls (a block becomes evictable when its last
    reference goes, which is its last use); `oldest=True` jumps to the front.
    """

    exposed_parent_next = True

    def __init__(self) -> None:
        self._order: OrderedDict[int, None] = OrderedDict()

    def add(self, block_id: int, now: float, oldest: bool = False) -> None:
        if block_id in self._order:
            raise KeyError(f"block {block_id} is already evictable")
        self._order[block_id] = None
        if oldest:
            self._order.move_to_end(block_id, last=False)

    def remove(self, block_id: int) -> None:
        del self._order[block_id]

    def touch(self, block_id: int, now: float) -> None:
        self._order.move_to_end(block_id)

    def pop_victim(self) -> int | None:
        if not self._order:
            return None
        return self._order.popitem(last=False)[0]

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, block_id: object) -> bool:
        return block_id in self._order
