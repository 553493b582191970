"""KV retention in the Ray runtime: the driver's side of TTL policies, spread over the
actors that hold the facts.

    runner     ctx.call_tool measures the tool ─ToolTiming─▶ scheduler ─FeedLog─▶ workers
               a program ends ─────────────────ProgramEnded─▶   (with each worker's
                                                                 next batch of work)
    worker     a step's RequestDone ends in a tool call (at the step's end, as in the
               simulator): PinRequest (engine_facts, ProgramFacts) ─▶ TTLPolicy.decide
               ─▶ ModelClock.on_engine ─▶ apply_decision on engine.pins
               ─▶ RequestDone.kv_pin (PinNote), which the runner puts on the chat span
               ─▶ with a host tier, a prefetch at the decision's time (worker's loop)
    engine     the pin passes to the session's next request when that is admitted,
               expires at iteration starts, and is dropped when the step ends
               (`release_session` ─▶ `SimulatedEngine.release`)

Every worker keeps a copy of the cluster's duration model and its own instance of the
TTL policy. The feed gives all copies the same facts in the order the scheduler got
them, so they agree; a worker decides with every timing recorded before the call it
ran was dispatched. Durations are kept on the model clock (measured wall seconds /
`time_scale`), the clock policies and the simulator think in. Queueing delays (the
Continuum rule's Tq) are fed to a worker's policy from the calls that worker ran.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime import wire
from agentrt.runtime.core.messages import EngineEvent, LLMRequest, PinNote, RequestDone
from agentrt.runtime.core.retention import (
    Applied,
    ModelClock,
    PinRequest,
    ProgramFacts,
    TTLPolicy,
    apply_decision,
    make_ttl_policy,
    pin_note,
)
from agentrt.runtime.engines.facts import engine_facts
from agentrt.runtime.engines.simulated.engine import SimulatedEngine
from agentrt.toolmgr.durations import DurationModel


@wire.register
@dataclass(slots=True)
class ToolTiming:
    """One tool call as a runner measured it: wall seconds, and the tool's declared
    prior mean (`ToolSpec.duration_prior_s`, wall seconds) if it has one."""

    tool: str
    seconds: float
    prior_s: float | None = None


@wire.register
@dataclass(slots=True)
class ProgramEnded:
    """A program finished after `turns` LLM calls (the Continuum rule's eta)."""

    program_id: str
    turns: int


class FeedLog:
    """Retention facts (wire-encoded `ToolTiming` and `ProgramEnded`) in the order the
    scheduler received them. `take(worker)` returns those the worker has not had yet;
    entries every worker has had are dropped."""

    COMPACT_AT = 1024  # entries kept before dropping those every worker has had

    def __init__(self) -> None:
        self._entries: deque[bytes] = deque()
        self._base = 0  # index of _entries[0] since the log began
        self._cursor: dict[str, int] = {}  # worker -> index of its next entry

    def add_worker(self, worker_id: str) -> None:
        """A worker joins: it gets every entry still kept."""
        self._cursor[worker_id] = self._base

    def append(self, entry: bytes) -> None:
        self._entries.append(entry)

    def take(self, worker_id: str) -> list[bytes]:
        start = self._cursor[worker_id]
        out = list(islice(self._entries, start - self._base, None))
        self._cursor[worker_id] = self._base + len(self._entries)
        if len(self._entries) >= self.COMPACT_AT:
            self._compact()
        return out

    def __len__(self) -> int:
        return len(self._entries)

    def _compact(self) -> None:
        low = min(self._cursor.values(), default=self._base + len(self._entries))
        while self._base < low:
            self._entries.popleft()
            self._base += 1


class WorkerRetention:
    """One worker's side: its copy of the duration model and its policy instance,
    deciding for the calls its engine finishes. `engine` runs on `clock`'s engine
    clock; `min_samples` is the duration model's (observed calls before a tool's own
    CDF alone predicts it)."""

    def __init__(self, ttl: str, engine: SimulatedEngine, clock: ModelClock,
                 min_samples: int = 100) -> None:
        self.policy: TTLPolicy = make_ttl_policy(ttl)
        self.durations = DurationModel(min_samples=min_samples)
        self.engine = engine
        self.clock = clock
        self.decisions: dict[str, int] = {}  # action -> count
        self._requests: dict[str, LLMRequest] = {}  # submitted here, not finished
        self._context: dict[str, int] = {}  # session -> tokens after its last turn here
        self._turns: dict[str, int] = {}  # program -> its calls finished here
        self._primed: set[str] = set()
        # (engine time, session, context) of prefetches decided and not yet handed to
        # the worker's event loop (`take_prefetches`)
        self._prefetches: list[tuple[float, str, TokenChain]] = []
        self.prefetched = 0  # prefetches that moved blocks

    # -- facts from elsewhere ------------------------------------------------------
    def learn(self, feed: Iterable[bytes]) -> None:
        """Take the scheduler's feed entries, in order."""
        scale = self.clock.scale
        for data in feed:
            fact = wire.decode(data)
            if isinstance(fact, ToolTiming):
                if fact.prior_s is not None and fact.tool not in self._primed:
                    self._primed.add(fact.tool)
                    self.durations.set_prior(fact.tool, fact.prior_s / scale)
                self.durations.record(fact.tool, max(0.0, fact.seconds) / scale)
            elif isinstance(fact, ProgramEnded):
                self._turns.pop(fact.program_id, None)
                self.policy.on_program_finished(fact.program_id, fact.turns)
            else:
                raise ValueError(f"unexpected retention feed entry {type(fact).__name__}")

    def submitted(self, request: LLMRequest) -> None:
        self._requests[request.request_id] = request

    def aborted(self, request_id: str) -> None:
        self._requests.pop(request_id, None)

    def released(self, session_id: str) -> None:
        """The session's step ended (the engine dropped its pin)."""
        self._context.pop(session_id, None)

    # -- decisions -----------------------------------------------------------------
    def step_finished(self, events: Iterable[EngineEvent], now: float) -> None:
        """After an engine step whose events are `events`, at engine time `now`:
        feedback for every finished call, and a TTL decision (applied, and noted on
        the RequestDone as `kv_pin`) for each that ended in a tool call."""
        for event in events:
            if isinstance(event, RequestDone):
                request = self._requests.pop(event.request_id, None)
                if request is not None:
                    self._finished(request, event, now)

    def _finished(self, request: LLMRequest, done: RequestDone, now: float) -> None:
        before = self._context.get(done.session_id, 0)
        chain = reply_chain(request.prefix, done)
        self._context[done.session_id] = chain.num_tokens
        self._turns[done.program_id] = self._turns.get(done.program_id, 0) + 1
        if done.first_scheduled_at:
            delay = max(0.0, done.first_scheduled_at - request.arrival) / self.clock.scale
            lost = before > 0 and done.cached_tokens < before - 1  # as the simulator counts
            self.policy.on_queue_delay(delay, lost)
        if done.tool_calls and done.finish_reason != "aborted":
            done.kv_pin = self._decide(request, done, chain, now)

    def _decide(self, request: LLMRequest, done: RequestDone, chain: TokenChain,
                now: float) -> PinNote:
        """The turn waits on its first tool call's tool."""
        clock, tool = self.clock, done.tool_calls[0].name
        model_now = clock.to_model(now)
        facts = ProgramFacts(request.program_id, clock.to_model(request.program_arrival),
                             self._turns[done.program_id], request.last_call)
        pin_request = PinRequest(done.session_id, tool, chain.num_tokens, model_now, facts,
                                 engine_facts(self.engine, chain.num_tokens))
        decision = self.policy.decide(pin_request, self.durations)
        self.decisions[decision.action] = self.decisions.get(decision.action, 0) + 1
        on_engine = clock.on_engine(decision)
        applied = apply_decision(on_engine, self.engine.pins,
                                 done.session_id, chain, now, request.program_id)
        if on_engine.prefetch_at is not None and self.engine.kv.host is not None:
            self._prefetches.append((on_engine.prefetch_at, done.session_id, chain))
        return pin_note(Applied(decision, applied.pin, applied.offload), tool, model_now,
                        self.durations, decided_at=now)


    # -- prefetch ------------------------------------------------------------------
    def take_prefetches(self) -> list[tuple[float, str, TokenChain]]:
        """The prefetches decided since the last call: (engine time, session, context),
        for the worker to run `prefetch` at those times."""
        due, self._prefetches = self._prefetches, []
        return due

    def prefetch(self, session_id: str, chain: TokenChain, now: float) -> int:
        """Copy the session's host blocks back to the GPU unless its next call already
        came (that one reloads on admission); returns the blocks moved."""
        if any(r.session_id == session_id for r in self._requests.values()):
            return 0
        if session_id not in self._context:  # the step ended meanwhile
            return 0
        moved = self.engine.prefetch(session_id, chain, now)
        self.prefetched += bool(moved)
        return moved


def reply_chain(prompt: TokenChain, done: RequestDone) -> TokenChain:
    """The session's context after the call: its prompt, then the reply (the engine's
    token ids, or its synthetic run), as `SessionChain.add_output` grows it."""
    chain = prompt.copy()
    if done.output_token_ids is not None:
        chain.extend_tokens(done.output_token_ids)
    else:
        chain.extend_synthetic(done.output_synthetic_key, done.output_tokens)
    return chain
