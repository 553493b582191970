"""The decoding sequences of one engine, advanced a tick (one iteration) at a time.

Decoding costs no per-sequence Python work per tick: each sequence is filed under the
tick at which its next token overflows its KV blocks (`grow`) and the tick at which it
samples its last output (`finish`), and the batch's context sum is a running total::

    tick:        t      t+1    t+2    ...    t+15   t+16
    grow:        A      .      B      ...    .      A      every sequence grows once
    finish:      .      .      .      ...    C      .      per block_size ticks

Since a sequence's next growth is always less than one block ahead, the growth
pattern of the coming ticks repeats every `block_size` ticks until a sequence leaves;
`iterations_within` uses that to bound a fused run of pure-decode iterations by the
free KV blocks in O(block_size). `run` then advances the ticks of such a run with a
few float operations per tick, calling back only at ticks where a block is due.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from agentrt.runtime.engines.simulated.decode_cost import DecodeCost
from agentrt.runtime.engines.simulated.sequence import DECODE, Seq


@dataclass(frozen=True, slots=True)
class DecodeRun:
    """What `DecodeBatch.run` did: `iterations` ticks, the last ending at `end`,
    `busy` seconds of step time in all."""

    iterations: int
    end: float
    busy: float


class DecodeBatch:
    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.tick = 0
        self.size = 0  # decoding sequences
        self.context = 0  # sum of their KV tokens before `tick`
        self._grow_at: dict[int, list[Seq]] = {}
        self._finish_at: dict[int, list[Seq]] = {}

    # -- membership --------------------------------------------------------------------

    def add(self, seq: Seq) -> None:
        """`seq` finished its prefill (its `out_done` and `synced` are current) and
        decodes from the current tick on."""
        seq.state, seq.d0, seq.out0, seq.kv0 = DECODE, self.tick, seq.out_done, seq.synced
        seq.finish_tick = seq.d0 + seq.n_out - seq.out0 - 1
        self._finish_at.setdefault(seq.finish_tick, []).append(seq)
        self.file_growth(seq)
        self.size += 1
        self.context += seq.kv0

    def remove(self, seq: Seq) -> None:
        """Take `seq` out before the current tick's iteration; sets its `out_done`."""
        seq.out_done = seq.outputs(self.tick)
        self.size -= 1
        self.context -= seq.kv_tokens(self.tick)
        _unfile(self._grow_at, seq.grow_tick, seq)
        _unfile(self._finish_at, seq.finish_tick, seq)

    def file_growth(self, seq: Seq) -> None:
        """File `seq` under the first tick whose token overflows its `synced` tokens'
        blocks, unless it finishes before."""
        slots = -(-seq.synced // self.block_size) * self.block_size
        seq.grow_tick = seq.d0 + slots - seq.kv0
        if seq.grow_tick <= seq.finish_tick:
            self._grow_at.setdefault(seq.grow_tick, []).append(seq)

    # -- the clock ---------------------------------------------------------------------

    def due_growth(self) -> list[Seq]:
        """Sequences whose token at the current tick needs a new block, in admission
        order (removed from the index; `file_growth` files them again)."""
        due = self._grow_at.pop(self.tick, None)
        return sorted(due, key=lambda s: s.admit_idx) if due else []

    def advance(self) -> int:
        """Run the current tick: each sequence decodes one token. Returns the context
        the iteration reads (every sequence's KV including the token decoded)."""
        self.context += self.size
        self.tick += 1
        return self.context

    def run(
        self, now: float, stop: float, limit: int, cost: DecodeCost,
        grow: Callable[[float], None],
    ) -> DecodeRun:
        """Run 1 to `limit` ticks from `now`, each starting before `stop` (the first
        always runs). At a tick where a sequence is due to grow, `grow(start)` appends
        its block (the caller has checked the free blocks: `iterations_within`). Step
        times are added one by one, as consecutive single steps would add them."""
        size, due = self.size, self._grow_at
        base, per_context, allreduce = cost.base, cost.per_context, cost.allreduce
        tick, context, t, busy, done = self.tick, self.context, now, 0.0, 0
        while done < limit and (done == 0 or t < stop):
            if tick in due:
                self.tick, self.context = tick, context
                grow(t)
            context += size
            tick += 1
            duration = (base + context * per_context) + allreduce  # DecodeCost.step_time
            t += duration
            busy += duration
            done += 1
        self.tick, self.context = tick, context
        return DecodeRun(done, t, busy)

    def finishing(self, tick: int) -> list[Seq]:
        """Sequences that sampled their last output at `tick` (removed from the index)."""
        return self._finish_at.pop(tick, [])

    # -- bounds for a fused run --------------------------------------------------------

    def iterations_to_first_finish(self) -> int:
        """Iterations from the current tick through the first one that finishes a
        sequence (1: the current one). Needs a non-empty batch."""
        return min(self._finish_at) - self.tick + 1

    def iterations_within(self, free_blocks: int) -> float:
        """The most iterations from the current tick whose KV growth fits in
        `free_blocks`, if no sequence leaves before the last (inf when none grows).

        k = r * block_size + s iterations need r blocks per growing sequence plus one
        per sequence whose next growth is less than s ticks away; solved for k.
        """
        bs, tick = self.block_size, self.tick
        phases = sorted((t - tick, len(seqs)) for t, seqs in self._grow_at.items())
        growing = sum(n for _, n in phases)
        if not growing:
            return math.inf
        rounds, left = divmod(free_blocks, growing)
        for phase, n in phases:
            assert 0 <= phase < bs, f"growth filed {phase} ticks ahead"
            if left < n:
                return rounds * bs + phase
            left -= n
        raise AssertionError("unreachable: left < growing")

    # -- checks ------------------------------------------------------------------------

    def violations(self, decoding: list[Seq]) -> list[str]:
        """Broken invariants, given the sequences that should be decoding."""
        out = []
        if self.size != len(decoding):
            out.append(f"decode count {self.size} != {len(decoding)} decoding")
        if self.context != sum(s.kv_tokens(self.tick) for s in decoding):
            out.append("decode context sum drifted")
        for seq in decoding:
            if seq not in self._finish_at.get(seq.finish_tick, ()):
                out.append(f"{seq.rid}: not filed under its finish tick")
            filed = seq in self._grow_at.get(seq.grow_tick, ())
            if filed != (seq.grow_tick <= seq.finish_tick):
                out.append(f"{seq.rid}: growth filing does not match its ticks")
        return out


def _unfile(index: dict[int, list[Seq]], tick: int, seq: Seq) -> None:
    bucket = index.get(tick)
    if bucket and seq in bucket:
        bucket.remove(seq)
        if not bucket:
            del index[tick]
