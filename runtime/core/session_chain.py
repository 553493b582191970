"""One session's conversation as a `TokenChain`, grown by the rules every driver shares.

A counted conversation (a trace's turns, in token counts) is described by synthetic runs
whose keys depend only on stable names, so the engine's prefix cache sees the same
blocks whichever driver plays it:

    [shared prefix      ][turn 0 input       ][turn 0 output][turn 1 input       ]...
     stable_hash(         stable_hash(         the engine's    stable_hash(
       "prefix", id)        "in", session, 0)  output key        "in", session, 1)

The simulator's `ProgramPlayer` and the runtime's `ctx.chat_tokens` both grow their
sessions through this class, and both name a session's calls with `request_id`, so
the two drivers cannot drift apart.
"""
from __future__ import annotations

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import RequestDone


def request_id(session_id: str, turn: int) -> str:
    """The id of a session's call number `turn` (0 for its first call)."""
    return f"{session_id}#{turn}"


class SessionChain:
    """The growing prompt of one session. Mutated only by `add_input` and `add_output`,
    which must alternate (input, output, input, ...)."""

    __slots__ = ("session_id", "chain", "prefix_id", "prefix_tokens")

    def __init__(self, session_id: str, block_size: int, prefix_id: str | None = None,
                 prefix_tokens: int = 0) -> None:
        self.session_id = session_id
        self.prefix_id = prefix_id
        self.prefix_tokens = prefix_tokens
        self.chain = self._opening(block_size)

    @classmethod
    def fork(cls, parent: SessionChain, session_id: str) -> SessionChain:
        """A subagent's session: its conversation starts as a copy of `parent`'s now,
        and a compaction restarts it from `parent`'s shared prefix."""
        child = cls.__new__(cls)
        child.session_id = session_id
        child.prefix_id, child.prefix_tokens = parent.prefix_id, parent.prefix_tokens
        child.chain = parent.chain.copy()
        return child

    def _opening(self, block_size: int) -> TokenChain:
        chain = TokenChain(block_size)
        if self.prefix_id and self.prefix_tokens:
            chain.extend_synthetic(stable_hash("prefix", self.prefix_id), self.prefix_tokens)
        return chain

    @property
    def num_tokens(self) -> int:
        return self.chain.num_tokens

    def add_input(self, turn: int, tokens: int, summary_tokens: int | None = None
                  ) -> TokenChain:
        """Append turn `turn`'s input; returns the prompt to send (a copy, which later
        turns do not change). With `summary_tokens`, the conversation is compacted
        first: it restarts from the shared prefix and a summary of that many tokens.
        Raises ValueError on negative counts."""
        if tokens < 0 or (summary_tokens is not None and summary_tokens < 0):
            raise ValueError(f"token counts must be >= 0, got input {tokens}, "
                             f"summary {summary_tokens}")
        if summary_tokens is not None:
            self.chain = self._opening(self.chain.block_size)
            self.chain.extend_synthetic(stable_hash("summary", self.session_id, turn),
                                        summary_tokens)
        self.chain.extend_synthetic(stable_hash("in", self.session_id, turn), tokens)
        return self.chain.copy()

    def add_output(self, done: RequestDone) -> None:
        """Append the reply the engine produced: its token ids when it produced text,
        else its synthetic run."""
        if done.output_token_ids is not None:
            self.chain.extend_tokens(done.output_token_ids)
        else:
            self.chain.extend_synthetic(done.output_synthetic_key, done.output_tokens)


def reply_chain(prompt: TokenChain, done: RequestDone) -> TokenChain:
    """A session's context after a call: its prompt, then the reply (the engine's token
    ids, or its synthetic run), as `SessionChain.add_output` grows it. A new chain."""
    chain = prompt.copy()
    if done.output_token_ids is not None:
        chain.extend_tokens(done.output_token_ids)
    else:
        chain.extend_synthetic(done.output_synthetic_key, done.output_tokens)
    return chain
