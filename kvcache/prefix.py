"""Prompt identity as a chain of block hashes.

A prompt is cut into blocks of `block_size` tokens. Each FULL block gets a hash that
covers its own tokens and, through its parent's hash, every token before it::

    root ──▶ h0 = hash((root, c0)) ──▶ h1 = hash((h0, c1)) ──▶ ... ──▶ partial block
              c0: tokens 0..15            c1: tokens 16..31             (not hashed yet)

Two prompts share a cached prefix exactly as far as their hash lists agree, so "how
much of this prompt is cached" is a question about leading hashes only.

Block content `c` is a tuple of pieces; a piece is either a real token id (int) or a
synthetic run `(key, start, end)` standing for tokens `(key, start) .. (key, end - 1)`.
Synthetic runs let a simulator describe a 40k-token prompt with a few keys and still get
per-block hashes in O(blocks). Every value hashed is an int or a tuple of ints, whose
Python hash does not depend on PYTHONHASHSEED, so hashes agree across processes.
"""
from __future__ import annotations

import hashlib
from collections.abc import Container, Sequence
from typing import Any

# A piece of block content: a real token id, or a synthetic run (key, start, end).
Piece = int | tuple[int, int, int]


def stable_hash(*parts: int | str | bytes) -> int:
    """A 63-bit non-negative hash of `parts`, identical in every process.

    Each part is encoded as a type tag, an 8-byte length and its bytes, so that
    ("ab", "c") and ("a", "bc") differ, and 1 differs from "1". Raises TypeError on
    any other type.
    """
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        tag, data = _encode(part)
        h.update(tag)
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return int.from_bytes(h.digest(), "big") & ((1 << 63) - 1)


def _encode(part: int | str | bytes) -> tuple[bytes, bytes]:
    if isinstance(part, int):
        return b"i", part.to_bytes(part.bit_length() // 8 + 1, "big", signed=True)
    if isinstance(part, str):
        return b"s", part.encode("utf-8")
    if isinstance(part, (bytes, bytearray)):
        return b"b", bytes(part)
    raise TypeError(f"stable_hash takes int, str or bytes parts, got {type(part).__name__}")


class TokenChain:
    """The identity of a token sequence as chained block hashes.

    Invariants: `len(hashes) == num_tokens // block_size`; the partial block holds the
    remaining `num_tokens % block_size` tokens. Extending by `a + b` in one call gives
    the same chain as extending by `a` then `b` (for real tokens; a synthetic run's
    offsets restart at 0 on every call, so the call sequence is part of its identity).
    """

    __slots__ = ("block_size", "root", "hashes", "num_tokens", "_partial")

    def __init__(self, block_size: int = 16, root: int = 0) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_size = block_size
        self.root = root
        self.hashes: list[int] = []
        self.num_tokens = 0
        self._partial: list[Piece] = []

    @classmethod
    def from_tokens(
        cls, token_ids: Sequence[int], block_size: int = 16, root: int = 0
    ) -> TokenChain:
        chain = cls(block_size, root)
        chain.extend_tokens(token_ids)
        return chain

    # -- reading -------------------------------------------------------------------

    @property
    def num_full_blocks(self) -> int:
        return len(self.hashes)

    @property
    def num_partial_tokens(self) -> int:
        """Tokens in the trailing partial block (not covered by `hashes`)."""
        return self.num_tokens % self.block_size

    def parent_of(self, i: int) -> int:
        """The hash block `i` chains from: `hashes[i - 1]`, or `root` for block 0."""
        if not 0 <= i <= len(self.hashes):
            raise IndexError(f"block {i} out of range 0..{len(self.hashes)}")
        return self.hashes[i - 1] if i else self.root

    # -- extending -----------------------------------------------------------------

    def extend_tokens(self, token_ids: Sequence[int]) -> None:
        """Append real token ids. O(len(token_ids))."""
        if not isinstance(token_ids, (list, tuple)):
            tolist = getattr(token_ids, "tolist", None)
            token_ids = tolist() if tolist is not None else [int(t) for t in token_ids]
        bs, n = self.block_size, len(token_ids)
        pos = self._fill_partial(token_ids)
        while n - pos >= bs:
            self._push(tuple(token_ids[pos : pos + bs]))
            pos += bs
        if pos < n:
            self._partial = list(token_ids[pos:])
        self.num_tokens += n

    def extend_synthetic(self, key: int, count: int) -> None:
        """Append `count` synthetic tokens `(key, 0) .. (key, count - 1)`.

        O(blocks touched): each whole block inside the run is hashed from the single
        piece `(key, start, end)`.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if not isinstance(key, int):
            raise TypeError(f"key must be an int (see stable_hash), got {type(key).__name__}")
        bs = self.block_size
        start = 0
        fill = self.num_tokens % bs
        if fill and count:
            start = min(bs - fill, count)
            self._partial.append((key, 0, start))
            if fill + start == bs:
                self._seal()
        while count - start >= bs:
            self._push(((key, start, start + bs),))
            start += bs
        if start < count:
            self._partial = [(key, start, count)]
        self.num_tokens += count

    def _fill_partial(self, token_ids: Sequence[int]) -> int:
        """Top up a non-empty partial block from `token_ids`; return how many it took."""
        fill = self.num_tokens % self.block_size
        if not fill:
            return 0
        take = min(self.block_size - fill, len(token_ids))
        self._partial.extend(token_ids[:take])
        if fill + take == self.block_size:
            self._seal()
        return take

    def _seal(self) -> None:
        self._push(tuple(self._partial))
        self._partial = []

    def _push(self, content: tuple) -> None:
        parent = self.hashes[-1] if self.hashes else self.root
        self.hashes.append(hash((parent, content)))

    # -- copying, comparing, wire ----------------------------------------------------

    def copy(self) -> TokenChain:
        """An independent chain with the same content. O(blocks), one list copy."""
        other = TokenChain.__new__(TokenChain)
        other.block_size = self.block_size
        other.root = self.root
        other.hashes = self.hashes.copy()
        other.num_tokens = self.num_tokens
        other._partial = self._partial.copy()
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenChain):
            return NotImplemented
        return (
            self.block_size == other.block_size
            and self.root == other.root
            and self.num_tokens == other.num_tokens
            and self.hashes == other.hashes
            and self._partial == other._partial
        )

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        tip = f"{self.hashes[-1]:#x}" if self.hashes else "-"
        return (
            f"TokenChain(num_tokens={self.num_tokens}, blocks={len(self.hashes)}, "
            f"block_size={self.block_size}, tip={tip})"
        )

    def to_wire(self, skip: int = 0) -> dict[str, Any]:
        """msgpack-safe form: ints, lists and str-keyed dicts only. `skip` leaves out the
        first `skip` block hashes (a receiver that holds them passes them back to
        `from_wire` as `head`)."""
        return {
            "block_size": self.block_size,
            "root": self.root,
            "num_tokens": self.num_tokens,
            "hashes": self.hashes[skip:] if skip else list(self.hashes),
            "partial": [p if isinstance(p, int) else list(p) for p in self._partial],
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any], head: Sequence[int] = ()) -> TokenChain:
        """Inverse of `to_wire`; `head`: the block hashes `to_wire` skipped. Raises
        ValueError if the counts disagree."""
        chain = cls(int(d["block_size"]), int(d["root"]))
        chain.hashes = [*head, *(int(h) for h in d["hashes"])]
        chain.num_tokens = int(d["num_tokens"])
        chain._partial = [p if isinstance(p, int) else tuple(p) for p in d["partial"]]
        partial_tokens = sum(1 if isinstance(p, int) else p[2] - p[1] for p in chain._partial)
        if chain.num_tokens != len(chain.hashes) * chain.block_size + partial_tokens:
            raise ValueError(
                f"inconsistent TokenChain wire form: num_tokens={chain.num_tokens}, "
                f"{len(chain.hashes)} full blocks of {chain.block_size}, "
                f"{partial_tokens} partial tokens"
            )
        return chain


def leading_run(hashes: Sequence[int], members: Container[int], start: int = 0) -> int:
    """How many of `hashes[start:]` are in `members`, counted as a leading run.

    Valid only when membership is prefix-closed along the list (true, then false), as it
    is for a chain's cached blocks: then O(log n) lookups by binary search.
    """
    lo, hi = start, len(hashes)
    while lo < hi:
        mid = (lo + hi) // 2
        if hashes[mid] in members:
            lo = mid + 1
        else:
            hi = mid
    return lo - start
