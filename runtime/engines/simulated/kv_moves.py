"""Moving a simulated engine's KV: reloads and prefetches from its host tier over the
host link, and sessions arriving from peers (`receive`) over NVLink or the network.
Copies on one link run one after another; an admission that needs a copy waits until
it lands. A mixin of `SimulatedEngine` (its `kv`, `perf`, `_sched`, `block_size`)."""
from __future__ import annotations

from agentrt.kvcache.prefix import TokenChain


class KVMoves:
    """The engine's host-link and peer-link copies (see the module doc)."""

    def _link_stall(self, now: float, batch) -> float:
        """How long the iteration waits on the host link: reloads at admission queue
        behind copies in flight and stall the batch for their transfer; an admission
        whose prefetch is still landing waits for it."""
        stall = batch.prefetch_wait
        if batch.reloaded:
            stall = max(stall, self._copy_to_gpu(batch.reloaded, now) - now)
        return stall

    def _copy_to_gpu(self, tokens: int, now: float) -> float:
        """Queue a host-to-GPU copy of `tokens` on the link; returns when it lands."""
        self._link_free_at = max(now, self._link_free_at) + self.perf.reload_time(tokens)
        return self._link_free_at

    def prefetch(self, session_id: str, prefix: TokenChain, now: float) -> int:
        """Start copying the host-cached blocks of `prefix` (a session paused on a
        tool) back to the GPU as free cached blocks, behind the link's queued copies;
        the session's next admission waits until they land. Returns the blocks moved
        (0 without a host tier, host blocks or free room)."""
        n = self.kv.reload(prefix, now)
        if n:
            tokens = n * self.block_size
            self._sched.prefetch_ready[session_id] = self._copy_to_gpu(tokens, now)
            self.prefetched_tokens += tokens
        return n

    def movable_blocks(self, prefix: TokenChain) -> int:
        """Leading full blocks of `prefix` held here, on the GPU or in the host tier:
        what a session moving to another worker can take along."""
        on_gpu = self.kv.pool.cached_prefix_blocks(prefix.hashes)
        host = self.kv.host
        return on_gpu + (host.stretch(prefix.hashes, on_gpu) if host is not None else 0)

    def receive(self, session_id: str, prefix: TokenChain, blocks: int, now: float,
                link: str = "nvlink") -> int:
        """A session moves here with its KV: the first `blocks` full blocks of `prefix`
        are copied in from a peer over `link` (as far as free blocks allow) and its next
        admission waits until the copy lands; copies over the peer link run in order.
        Returns the tokens received."""
        n = self.kv.adopt(prefix, blocks, now)
        if not n:
            return 0
        tokens = n * self.block_size
        self._peer_free_at = max(now, self._peer_free_at) + self.perf.transfer_time(tokens, link)
        self._sched.prefetch_ready[session_id] = self._peer_free_at
        self.received_tokens += tokens
        return tokens
