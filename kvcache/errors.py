"""Errors raised by the KV cache accounting.

Capacity errors carry the numbers a caller needs to decide what to do (wait, preempt,
route elsewhere); `KVIntegrityError` is an `AssertionError` so that integrity checks
read like assertions in tests.
"""
from __future__ import annotations


class NoFreeBlocksError(RuntimeError):
    """The block pool cannot hand out `requested` blocks: only `free` are allocatable."""

    def __init__(self, requested: int, free: int) -> None:
        super().__init__(
            f"cannot allocate {requested} blocks: only {free} free "
            f"(check can_allocate first, or release/evict blocks)"
        )
        self.requested = requested
        self.free = free


class KVCacheFullError(RuntimeError):
    """A sequence cannot be admitted or grown: it needs `needed` blocks, `free` exist."""

    def __init__(self, what: str, needed: int, free: int) -> None:
        super().__init__(
            f"KV cache full: {what} needs {needed} blocks but only {free} are free "
            f"(check can_allocate/can_append first, or free/unhold sequences)"
        )
        self.needed = needed
        self.free = free


class KVIntegrityError(AssertionError):
    """Accounting is inconsistent; `violations` lists every broken invariant found."""

    def __init__(self, violations: list[str]) -> None:
        shown = "\n  ".join(violations[:20])
        more = f"\n  ... and {len(violations) - 20} more" if len(violations) > 20 else ""
        super().__init__(f"{len(violations)} KV integrity violation(s):\n  {shown}{more}")
        self.violations = violations
