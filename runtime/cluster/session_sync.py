"""Sessions' prompts sent as what the receiver lacks.

Every LLM call carries its session's whole prompt: the block-hash chain
(`kvcache.prefix.TokenChain`) and, for responders and real engines, the conversation's
messages. Both grow by appending, so sent whole on every call a session's bytes grow
with the square of its length. Between two actors that keep talking about the same
sessions (runner -> scheduler, scheduler -> each worker) the sender therefore sends the
part after what the receiver already holds of the session:

    sender (per receiver)                           receiver
    session -> the chain / messages it last sent    session -> the chain / messages
                                                    it last received
    ChainDelta(base=n blocks, base_tip=hash of      head = held.hashes[:n], checked:
               block n-1, the chain after them)     held.hashes[n-1] == base_tip
    MessagesDelta(base=n, base_digest=digest of     head = held[:n], checked:
                  messages[:n], messages[n:])       held digest n == base_digest

Rules:

1. The base is the longest prefix the sender knows the receiver holds, found by
   comparing hash chains, so a conversation that was cut or rewritten sends from where
   it differs (block hashes chain over every token before them, so one hash names a
   whole prefix; messages are digested the same way, `message_digests`).
2. A receiver that does not hold the base (none held, too short, another tip) raises
   `Mismatch`, and the sender answers with the whole value: never a wrong prompt. A
   runner's call is answered `SyncMismatch` and sent again whole; a worker asks the
   scheduler for the value (`SessionSender.whole`) before it applies the command.
3. Both sides change their state for a session in the same order (a caller's calls
   and the scheduler's command batches are applied in the order they were sent), so
   the sender's view is the receiver's state, and a mismatch only follows lost state.
4. A session's state goes when it ends: a runner's at its release and its program's
   end; the scheduler's at the same calls; a worker's when it is told to release the
   session, hands it to a thief (a session that moves is sent whole to its new worker,
   which held nothing of it) or is told to forget it (`Forget`).

A value with no base to use (a session's first call) goes whole, as a plain
TokenChain or list, which every receiver also accepts from callers that send whole.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import msgpack

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime import wire
from agentrt.runtime.core.messages import LLMRequest

RECENT = 8  # whole values a sender keeps per session for a receiver's resend request


class _Programs:
    """Which program each session belongs to, to forget a program's sessions at once."""

    __slots__ = ("of", "sessions")

    def __init__(self) -> None:
        self.of: dict[str, str] = {}
        self.sessions: dict[str, set[str]] = {}

    def add(self, session_id: str, program_id: str) -> None:
        if self.of.get(session_id) != program_id:
            self.drop(session_id)
            self.of[session_id] = program_id
            self.sessions.setdefault(program_id, set()).add(session_id)

    def drop(self, session_id: str) -> None:
        program_id = self.of.pop(session_id, None)
        if program_id is not None:
            sessions = self.sessions[program_id]
            sessions.discard(session_id)
            if not sessions:
                del self.sessions[program_id]

    def take(self, program_id: str) -> list[str]:
        sessions = sorted(self.sessions.pop(program_id, ()))
        for session_id in sessions:
            del self.of[session_id]
        return sessions


@wire.register
@dataclass(slots=True)
class ChainDelta:
    """A TokenChain after its first `base` full blocks, which the receiver holds (the
    block whose hash is `base_tip` ends them). `chain`: `TokenChain.to_wire(base)`."""

    base: int
    base_tip: int
    chain: dict


@wire.register
@dataclass(slots=True)
class MessagesDelta:
    """Messages after the first `base`, which the receiver holds (`base_digest`: their
    digest, `message_digests`); `digests`: the digest after each new message."""

    base: int
    base_digest: int
    new: list
    digests: list


@wire.register
@dataclass(slots=True)
class SyncMismatch:
    """The scheduler's answer to a call whose session state it lacks: send it whole."""

    request_id: str
    reason: str


@wire.register
@dataclass(slots=True)
class Whole:
    """The scheduler's answer to a worker's resend request: the whole value (None when
    the scheduler no longer has it)."""

    chain: TokenChain | None = None
    messages: list | None = None


class Mismatch(Exception):
    """A delta's base is not what the receiver holds of the session."""

    def __init__(self, session_id: str, kind: str, delta: Any, reason: str) -> None:
        super().__init__(f"session {session_id!r}: {kind} delta on a base the receiver "
                         f"does not hold ({reason})")
        self.session_id, self.kind, self.delta, self.reason = session_id, kind, delta, reason


def message_digests(messages: Sequence[dict], start: int = 0, prior: int = 0) -> list[int]:
    """The digest after each message of `messages[start:]`, chained from `prior` (the
    digest of those before): digest i covers messages 0..i, in their msgpack form."""
    out, digest = [], prior
    for message in messages[start:]:
        digest = stable_hash(digest, msgpack.packb(message, use_bin_type=True))
        out.append(digest)
    return out


def _common(a: Sequence[int], b: Sequence[int], n: int) -> int:
    """How many leading entries of two chained-hash lists agree, among the first `n`
    (chained: agreement is a leading run, so a binary search finds it)."""
    n = min(n, len(a), len(b))
    if n and a[n - 1] == b[n - 1]:
        return n
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] == b[mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo


@dataclass(slots=True)
class _Sent:
    chain: TokenChain | None = None
    blocks: int = 0  # full blocks of `chain` when sent (hashes only ever get appended)
    messages: list | None = None
    digests: list[int] = dataclasses.field(default_factory=list)
    recent: deque = dataclasses.field(default_factory=lambda: deque(maxlen=RECENT))


class SessionSender:
    """What one receiver holds of each session, as this side sent it (rule 3)."""

    def __init__(self) -> None:
        self._sent: dict[str, _Sent] = {}
        self._programs = _Programs()

    def __len__(self) -> int:
        return len(self._sent)

    def holds(self, session_id: str) -> bool:
        return session_id in self._sent

    def chain(self, session_id: str, chain: TokenChain) -> TokenChain | ChainDelta:
        """`chain` as the receiver will get it: a delta on what it holds, or whole."""
        sent = self._sent.get(session_id)
        if sent is None:
            sent = self._sent[session_id] = _Sent()
        sent.recent.append(chain)
        held, blocks = sent.chain, sent.blocks
        sent.chain, sent.blocks = chain, len(chain.hashes)
        if held is None or held.block_size != chain.block_size or held.root != chain.root:
            return chain
        base = _common(held.hashes, chain.hashes, blocks)
        if not base:
            return chain
        return ChainDelta(base, chain.hashes[base - 1], chain.to_wire(base))

    def messages(self, session_id: str, messages: list | None,
                 digests: list[int] | None = None) -> list | MessagesDelta | None:
        """`messages` as the receiver will get them (None stays None). `digests`: their
        `message_digests` when the caller knows them."""
        if messages is None:
            return None
        if digests is None:
            digests = message_digests(messages)
        sent = self._sent.get(session_id)
        if sent is None:
            sent = self._sent[session_id] = _Sent()
        sent.recent.append((digests[-1] if digests else 0, len(messages), messages))
        base = _common(sent.digests, digests, len(sent.digests)) if sent.messages is not None else 0
        sent.messages, sent.digests = messages, digests
        return MessagesDelta(base, digests[base - 1] if base else 0, messages[base:],
                             digests[base:])

    def request(self, request: LLMRequest, digests: list[int] | None = None) -> LLMRequest:
        """A copy of `request` to encode for the receiver: its prefix and messages as
        deltas where the receiver holds a base."""
        session = request.session_id
        self._programs.add(session, request.program_id)
        return dataclasses.replace(request, prefix=self.chain(session, request.prefix),
                                   messages=self.messages(session, request.messages, digests))

    def whole(self, session_id: str, kind: str, delta: Any) -> Any:
        """The whole value a receiver could not rebuild from `delta` (a ChainDelta or
        MessagesDelta this sender made), or None if it is no longer kept."""
        sent = self._sent.get(session_id)
        if sent is None:
            return None
        for value in reversed(sent.recent):
            if kind == "chain" and isinstance(value, TokenChain):
                if value.to_wire(delta.base) == delta.chain:
                    return value
            elif kind == "messages" and isinstance(value, tuple):
                tip, count, messages = value
                if count == delta.base + len(delta.new) and tip == (
                        delta.digests[-1] if delta.digests else delta.base_digest):
                    return messages
        return None

    def forget(self, session_id: str) -> bool:
        """The receiver dropped the session (it ended, or left this receiver): the
        next value goes whole. Returns whether anything was held."""
        self._programs.drop(session_id)
        return self._sent.pop(session_id, None) is not None

    def forget_program(self, program_id: str) -> list[str]:
        """Forget every session of the program; returns them."""
        sessions = self._programs.take(program_id)
        for session_id in sessions:
            self._sent.pop(session_id, None)
        return sessions

    def sessions(self) -> list[str]:
        return list(self._sent)


@dataclass(slots=True)
class _Held:
    chain: TokenChain | None = None
    messages: list | None = None
    digests: list[int] = dataclasses.field(default_factory=list)


class SessionReceiver:
    """What this side holds of each session, rebuilt from a sender's deltas."""

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}
        self._programs = _Programs()

    def __len__(self) -> int:
        return len(self._held)

    def chain(self, session_id: str, value: TokenChain | ChainDelta) -> TokenChain:
        """The whole chain `value` stands for; it becomes what this side holds. Raises
        Mismatch when the delta's base is not held."""
        held = self._held.get(session_id)
        if isinstance(value, TokenChain):
            if held is None:
                held = self._held[session_id] = _Held()
            held.chain = value
            return value
        have = held.chain if held is not None else None
        base = value.base
        if base < 1:
            chain = TokenChain.from_wire(value.chain)
            self._held.setdefault(session_id, _Held()).chain = chain
            return chain
        if have is None:
            raise Mismatch(session_id, "chain", value, "nothing held")
        if len(have.hashes) < base or have.hashes[base - 1] != value.base_tip or (
                have.block_size != value.chain["block_size"]
                or have.root != value.chain["root"]):
            raise Mismatch(session_id, "chain", value,
                           f"holds {len(have.hashes)} blocks, another prefix")
        chain = TokenChain.from_wire(value.chain, have.hashes[:base])
        held.chain = chain
        return chain

    def messages(self, session_id: str, value: list | MessagesDelta | None) -> list | None:
        """The whole messages `value` stands for (None stays None). Raises Mismatch
        when the delta's base is not held."""
        if value is None:
            return None
        held = self._held.get(session_id)
        if held is None:
            held = self._held[session_id] = _Held()
        if isinstance(value, list):  # whole, from a caller that does not send deltas
            held.messages, held.digests = value, message_digests(value)
            return value
        base = value.base
        if base:
            if held.messages is None or len(held.digests) < base or (
                    held.digests[base - 1] != value.base_digest):
                raise Mismatch(session_id, "messages", value,
                               "nothing held" if held.messages is None else
                               f"holds {len(held.digests)} messages, another conversation")
            messages = held.messages[:base] + list(value.new)
            digests = held.digests[:base] + list(value.digests)
        else:
            messages, digests = list(value.new), list(value.digests)
        held.messages, held.digests = messages, digests
        return messages

    def request(self, request: LLMRequest) -> LLMRequest:
        """Rebuild a received request's prefix and messages in place; returns it."""
        session = request.session_id
        self._programs.add(session, request.program_id)
        request.prefix = self.chain(session, request.prefix)
        request.messages = self.messages(session, request.messages)
        return request

    def digests(self, request: LLMRequest) -> list[int] | None:
        """The digests of a request's messages, when they are what this side holds of
        its session (for sending them on without digesting them again)."""
        held = self._held.get(request.session_id)
        if held is None or request.messages is None or held.messages is not request.messages:
            return None
        return held.digests

    def set_whole(self, session_id: str, kind: str, value: Any) -> None:
        """A value the sender sent again whole (after a Mismatch) becomes what is held."""
        if kind == "chain":
            self.chain(session_id, value)
        else:
            self.messages(session_id, list(value))

    def forget(self, session_id: str) -> bool:
        self._programs.drop(session_id)
        return self._held.pop(session_id, None) is not None

    def forget_program(self, program_id: str) -> list[str]:
        """Forget every session of the program; returns them."""
        sessions = self._programs.take(program_id)
        for session_id in sessions:
            self._held.pop(session_id, None)
        return sessions

    def sessions(self) -> list[str]:
        return list(self._held)
