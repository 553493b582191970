"""The cluster control's decisions as messages to a worker actor.

The scheduler actor's transport turns each decision for a worker into one of these and
sends a worker all of its commands from one control call as one ordered batch
(`WorkerActor.apply`), so an abort never overtakes the call it aborts and a pin never
overtakes the reply it is for.

A command's `prefix` (and a sent request's prefix and messages) crosses as a delta on
what the worker holds of the session (`runtime.cluster.session_sync`); the worker
rebuilds it before applying the command.
"""
from __future__ import annotations

from dataclasses import dataclass

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime import wire
from agentrt.runtime.cluster import session_sync  # noqa: F401  (its wire types)
from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.core.retention.decision import PauseHint, PinDecision


@wire.register
@dataclass(slots=True)
class Send:
    requests: list[LLMRequest]


@wire.register
@dataclass(slots=True)
class Abort:
    request_id: str


@wire.register
@dataclass(slots=True)
class Release:
    session_id: str


@wire.register
@dataclass(slots=True)
class Retain:
    session_id: str
    prefix: TokenChain
    decision: PinDecision
    program_id: str


@wire.register
@dataclass(slots=True)
class Prefetch:
    session_id: str
    prefix: TokenChain


@wire.register
@dataclass(slots=True)
class PauseHintCmd:
    session_id: str
    prefix: TokenChain
    hint: PauseHint


@wire.register
@dataclass(slots=True)
class ResumeHintCmd:
    session_id: str
    prefix: TokenChain


@wire.register
@dataclass(slots=True)
class HandOver:
    """To a stolen session's source: send what it holds of `prefix` to `dst` over
    `link`, then release the session. `move` numbers the move (the thief's `Expect`
    names the same one)."""

    session_id: str
    prefix: TokenChain
    dst: str
    link: str
    move: int


@wire.register
@dataclass(slots=True)
class Expect:
    """To a stolen session's thief: its KV is on the way (move `move`, from the
    source's `HandOver`); hold the session's calls until it lands (or a timeout
    passes). The KV may land before this command: then nothing is held."""

    session_id: str
    move: int


@wire.register
@dataclass(slots=True)
class Forget:
    """The session ended: drop what this worker holds of its prompt (its chain and
    messages, `session_sync`); the engine is told nothing."""

    session_id: str


@wire.register
@dataclass(slots=True)
class WatchSteps:
    """Report every engine step (`on`), or only steps that change what the core reads
    (see `ClusterControl.step_ends_matter`)."""

    on: bool


@wire.register
@dataclass(slots=True)
class Batch:
    commands: list
