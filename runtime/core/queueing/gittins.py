"""Gittins-index queueing over learned program sizes, and its clairvoyant reference.

`gittins`: a call's program is ranked by the Gittins index of its remaining service
(`runtime.core.prediction`: the distribution of program sizes, in LLM calls, learned
online from finished programs given their features, by the predictor named in
`predictor`; conditioned on the calls the program has finished). The Gittins policy minimises mean response time in an M/G/1
queue whose job sizes are unknown but drawn from a known distribution (Gittins 1979;
Aalto, Ayesta and Righter, "On the Gittins index in the M/G/1 queue", Queueing Systems
63, 2009; Scully and Harchol-Balter, "The Gittins policy in the M/G/1 queue", WiOpt
2021): it serves first what is likely to finish soon for little more service, so short
programs are not stuck behind long ones, and a program that has run long without
finishing drops behind those the distribution says are nearly done.

    key(call) = (0, arrival)                    waited >= max_wait_s: starving, FIFO
              = (1, -index(program), arrival)   otherwise; higher index first

Warm start: with `history` (a file path), the predictor first learns from the programs
that file records as finished, and every program that finishes here is added to it
(`runtime.core.prediction.history`), so a scheduler that restarts, or the next run,
starts from what earlier ones learned instead of cold.

Starvation protection: a call that has waited `max_wait_s` (since its arrival, or since
its last recall) goes ahead of every call that has not, in arrival order (`expires`
tells the queue when), so a long program's calls wait at most about that long behind
shorter ones. Cold start: until `min_samples` programs have finished, the index is
1 / (1 + attained calls), i.e. least-attained-service order.

`oracle_srpt` (evaluation only): told each program's true size by the trace
(`LLMRequest.program_calls_hint`), ranks by calls left, fewest first (shortest
remaining processing time); calls without the hint go last, in arrival order.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Sequence

from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.prediction.base import Features
from agentrt.runtime.core.prediction.history import Finished, SizeHistory, SizeHistoryError
from agentrt.runtime.core.prediction.registry import make_predictor
from agentrt.runtime.core.queueing.policy import QueuePolicy

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Program:
    keys: Any  # what the predictor keeps of it (`SizePredictor.keys`)
    agent: str
    features: Features
    attained: int = 0  # calls finished
    index: float = 1.0  # Gittins index after `attained` calls


class Gittins(QueuePolicy):
    """See the module doc. Options: `max_wait_s` (starvation bound), `predictor` (a
    name in `runtime.core.prediction.registry`), `history` (a file of finished programs
    to start from and add to; None: start cold, keep nothing), `history_keep` (how many
    of its latest programs to learn from at start) and the predictor's own options.
    Raises ValueError on a bad option or a history file it cannot use."""

    name = "gittins"
    timed = True

    def __init__(self, max_wait_s: float = 60.0, predictor: str = "loglinear",
                 history: str | None = None, history_keep: int = 2000,
                 **predictor_options: Any) -> None:
        if max_wait_s <= 0:
            raise ValueError(f"max_wait_s must be > 0, got {max_wait_s}")
        self.max_wait_s = max_wait_s
        self.predictor = make_predictor(predictor, **predictor_options)
        self.history = None if history is None else SizeHistory(history, history_keep)
        self._history_failing = False
        if self.history is not None:
            for done in self.history.records:
                self.predictor.observe(self.predictor.keys(done.agent, done.features),
                                       done.calls)
        self._programs: dict[str, _Program] = {}
        self._since: dict[str, float] = {}  # request id -> when it was recalled

    def index_of(self, program_id: str) -> float | None:
        """The program's current index (None for a program not seen)."""
        state = self._programs.get(program_id)
        return None if state is None else state.index

    def key(self, request: LLMRequest, now: float) -> tuple:
        if now >= self._due(request):
            return (0, 0.0, request.arrival)
        state = self._programs.get(request.program_id)
        return (1, -(state.index if state is not None else 1.0), request.arrival)

    def expires(self, request: LLMRequest, now: float) -> float:
        due = self._due(request)
        return due if due > now else math.inf

    def _due(self, request: LLMRequest) -> float:
        return self._since.get(request.request_id, request.arrival) + self.max_wait_s

    # -- feedback ------------------------------------------------------------------
    def on_submit(self, request: LLMRequest, now: float) -> None:
        if request.program_id not in self._programs:
            keys = self.predictor.keys(request.agent, request.features)
            state = self._programs[request.program_id] = _Program(
                keys, request.agent, request.features)
            state.index = self.predictor.predict(keys, 0).index

    def on_requeue(self, request: LLMRequest, now: float, ran_s: float) -> None:
        self._since[request.request_id] = now

    def on_done(self, done: RequestDone, now: float, dispatched_at: float) -> Sequence[str]:
        self._since.pop(done.request_id, None)
        state = self._programs.get(done.program_id)
        if state is None:
            return ()
        state.attained += 1
        self.predictor.running(done.program_id, state.keys, state.attained)
        state.index = self.predictor.predict(state.keys, state.attained).index
        return (done.program_id,)

    def on_forget(self, request: LLMRequest) -> None:
        self._since.pop(request.request_id, None)

    def on_program_end(self, program_id: str, now: float) -> None:
        state = self._programs.pop(program_id, None)
        if state is not None and state.attained:
            self.predictor.observe(state.keys, state.attained, program_id)
            if self.history is not None:
                self._record(Finished(state.agent, state.features, state.attained))

    def _record(self, done: Finished) -> None:
        """Add a finished program to the history. A file that cannot be written costs
        the next scheduler its warm start, not this one its programs: logged (once
        until it works again), and scheduling goes on from what is learned here."""
        try:
            self.history.append(done)
        except SizeHistoryError as e:
            if not self._history_failing:
                log.error("%s; programs finishing from now on are learned from but not "
                          "kept for the next scheduler", e)
            self._history_failing = True
        else:
            self._history_failing = False


class OracleSRPT(QueuePolicy):
    """See the module doc (evaluation only: it reads the trace's program sizes)."""

    name = "oracle_srpt"

    def __init__(self) -> None:
        self._attained: dict[str, int] = {}

    def key(self, request: LLMRequest, now: float) -> tuple:
        size = request.program_calls_hint
        if size is None:
            return (math.inf, request.arrival)
        return (size - self._attained.get(request.program_id, 0), request.arrival)

    def on_done(self, done: RequestDone, now: float, dispatched_at: float) -> Sequence[str]:
        self._attained[done.program_id] = self._attained.get(done.program_id, 0) + 1
        return (done.program_id,)

    def on_program_end(self, program_id: str, now: float) -> None:
        self._attained.pop(program_id, None)
