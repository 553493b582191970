"""A sequence's blocks, as the manager tracks them.

The committed part is referenced through its last block (the pool keeps the blocks
before it in use); each uncommitted block is referenced directly::

    b3 ─ b8 ─ b9 ─ b12  |  b13 b14       committed = 4, tip = b12, tail = [b13, b14]
    (cached, shared)       (fresh)       num_blocks = 6
"""
from __future__ import annotations

from dataclasses import dataclass

from agentrt.kvcache.block_pool import BlockPool


@dataclass(slots=True)
class SeqBlocks:
    num_tokens: int
    committed: int  # leading blocks whose content is registered
    tip: int | None  # block id of block `committed - 1`; the sequence's reference
    last_hash: int | None  # its content hash
    tail: list[int]  # uncommitted blocks, in order, one reference each

    @property
    def num_blocks(self) -> int:
        return self.committed + len(self.tail)

    def violations(self, seq_id: str, pool: BlockPool) -> list[str]:
        """Broken invariants of this sequence against the pool's state."""
        out = []
        bs = pool.block_size
        if self.num_blocks != -(-self.num_tokens // bs):
            out.append(f"seq {seq_id!r}: {self.num_blocks} blocks for {self.num_tokens} tokens")
        blocks = pool.blocks
        if any(blocks[bid].hash is not None for bid in self.tail):
            out.append(f"seq {seq_id!r}: a tail block is committed")
        tip_hash = blocks[self.tip].hash if self.tip is not None else None
        if (self.tip is None) != (self.committed == 0) or tip_hash != self.last_hash:
            out.append(f"seq {seq_id!r}: tip block does not hold the last committed hash")
        elif self.tip is not None and len(pool.ancestry(self.tip)) != self.committed:
            out.append(f"seq {seq_id!r}: tip depth != {self.committed} committed blocks")
        return out
