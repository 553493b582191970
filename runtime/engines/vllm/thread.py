"""The vLLM engine's thread: the only code that calls into vLLM.

It builds vLLM (`VllmCore`), then loops: take the queued commands (submit, abort,
release, retain, call), apply them, run one `LLMEngine.step()` if anything is in
flight, turn finished calls into RequestDones and scheduler notes into Preempted /
PinExpired, feed vLLM's KV events to the mirror, snapshot the stats, and hand the
events to `deliver` (which moves them onto the caller's event loop). While idle it
sleeps on the queue, waking for the next hold deadline.

Failures: a call vLLM refuses when it is added (bad sampling values, a prompt over
the context) ends in a RequestDone with finish_reason "error" and vLLM's message; if a
step raises, every call in flight ends that way, `failed` says why, and the thread
stops (the engine refuses later calls). A call never hangs.
"""
from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from agentrt.kvcache.prefix import stable_hash
from agentrt.runtime.core.messages import (
    EngineEvent, LLMRequest, PinExpired, Preempted, RequestDone,
)
from agentrt.runtime.core.retention import make_ttl_policy
from agentrt.runtime.core.session_chain import reply_chain
from agentrt.runtime.engines.vllm.calls import Call
from agentrt.runtime.engines.vllm.config import VllmSettings
from agentrt.runtime.engines.vllm.mirror import BlockMirror
from agentrt.runtime.engines.vllm.stats import snapshot

log = logging.getLogger(__name__)

IDLE_WAKE_S = 1.0  # the longest an idle engine thread sleeps with holds to expire
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "seed", "stop",
                 "presence_penalty", "frequency_penalty", "repetition_penalty")
STOP = object()


class EngineThread(threading.Thread):
    """See the module doc. `deliver(events)` is called from this thread."""

    def __init__(self, worker_id: str, model: str, settings: VllmSettings,
                 clock: Callable[[], float], ttl: str | None,
                 deliver: Callable[[list[EngineEvent]], None]) -> None:
        super().__init__(daemon=True, name=f"vllm-{worker_id}")
        self.worker_id, self.model, self.settings = worker_id, model, settings
        self.clock, self.deliver = clock, deliver
        self.commands: queue.Queue = queue.Queue()
        self.ready: concurrent.futures.Future = concurrent.futures.Future()
        self.core: Any = None
        self.prompts: Any = None
        self.tools: Any = None
        self.mirror: BlockMirror | None = None
        self.stats_snapshot = None
        self.problems: list[str] = []
        self.retained: dict[str, int] = {}
        self.failed: str | None = None
        self.busy_time, self.steps, self.hit_tokens, self.prompt_tokens = 0.0, 0, 0, 0
        self._calls: dict[str, Call] = {}
        self.configure(ttl)

    def configure(self, ttl: str | None) -> None:
        """Take `ttl`'s knobs (pin cap, pressure rule; None: no holds). Before `start`,
        or in this thread."""
        policy = make_ttl_policy(ttl) if ttl is not None else None
        self.holding = policy is not None
        self.cap_fraction = self.settings.pin_cap_fraction or (
            policy.pin_cap_fraction if policy is not None else 1.0)
        self.pressure_rule = policy.pressure_rule if policy is not None else "pins_first"
        if self.core is not None:
            self.core.scheduler.bind(self.clock, self.cap_fraction, self.pressure_rule)

    # -- the loop ------------------------------------------------------------------
    def run(self) -> None:
        from agentrt.runtime.engines.vllm.core import VllmCore
        from agentrt.runtime.engines.vllm.prompts import Prompts
        from agentrt.runtime.engines.vllm.tools import ToolCalls

        try:
            core = VllmCore(self.settings)
            core.scheduler.bind(self.clock, self.cap_fraction, self.pressure_rule)
            self.prompts = Prompts(self.settings.model, core.tokenizer, core.block_size)
            self.tools = ToolCalls(self.settings.tool_call_parser, core.tokenizer, self.model)
            self.mirror = BlockMirror(core.block_size)
            self.core = core
            self.stats_snapshot = snapshot(self)
        except BaseException as error:  # VllmEngine.start re-raises it in the caller
            self.ready.set_exception(error)
            return
        self.ready.set_result(None)
        try:
            self._serve(core)
        except Exception as error:  # a step failed: end every call, stop serving
            log.exception("%s: vLLM failed", self.worker_id)
            self.failed = f"{type(error).__name__}: {error}"
            self._fail_all()
        finally:
            core.shutdown()

    def _fail_all(self) -> None:
        """After a failure: every call in flight or still queued ends in an error,
        every queued `call` raises; nothing waits for this thread any more."""
        now, events = self.clock(), []
        calls, self._calls = list(self._calls.values()), {}
        events += [self._error(call, self.failed, now) for call in calls]
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            if command is STOP:
                continue
            if command[0] == "submit":
                events.append(self._error(Call(command[1], [], command[3]), self.failed, now))
            elif command[0] == "call":
                command[2].set_exception(RuntimeError(f"vLLM failed: {self.failed}"))
        self.deliver(events)

    def _serve(self, core: Any) -> None:
        while True:
            commands = self._take_commands(core)
            if STOP in commands:
                return
            events: list[EngineEvent] = []
            for command in commands:
                self._apply(core, command, events)
            if core.has_work():
                started = time.perf_counter()
                outputs = core.step()
                self.busy_time += time.perf_counter() - started
                self.steps += 1
                now = self.clock()
                events += self._hold_events(core)
                events += self._outputs(core, outputs, now)
            else:
                core.scheduler.expire(self.clock())
                core.scheduler.flush_kv_events()
                events += self._hold_events(core)
            self.mirror.apply(core.scheduler.kv_event_publisher.take())
            self.stats_snapshot = snapshot(self)
            if events:
                self.deliver(events)

    def _take_commands(self, core: Any) -> list[Any]:
        """Queued commands; blocks while the engine is idle (until a command comes or
        the next hold deadline passes)."""
        out = []
        if not core.has_work():
            deadline = core.scheduler.holds.next_deadline()
            wait = min(IDLE_WAKE_S, max(0.0, deadline - self.clock()))
            try:
                out.append(self.commands.get(timeout=wait if wait > 0 else None))
            except queue.Empty:
                return out
        while True:
            try:
                out.append(self.commands.get_nowait())
            except queue.Empty:
                return out

    def _apply(self, core: Any, command: Any, events: list[EngineEvent]) -> None:
        kind = command[0]
        if kind == "submit":
            _, request, ids, now = command
            ids = ids if ids is not None else self.prompts.token_ids(request)
            call = Call(request, ids, now)
            try:
                core.add(request.request_id, ids, self._sampling(request))
            except Exception as error:  # vLLM refused this call (VLLMValidationError, ...)
                events.append(self._error(call, f"vLLM refused the call: "
                                                f"{type(error).__name__}: {error}",
                                          self.clock()))
                return
            self._calls[request.request_id] = call
        elif kind == "abort":
            call = self._calls.pop(command[1], None)
            if call is not None:
                core.abort([command[1]])
                core.scheduler.release(call.request.session_id)
        elif kind == "release":
            core.scheduler.release(command[1])
        elif kind == "retain":
            _, session, decision, now, program = command
            result = core.scheduler.retain(session, decision, now, program)
            key = result.status or decision.action
            self.retained[key] = self.retained.get(key, 0) + 1
        elif kind == "call":
            _, fn, future = command
            try:
                result = fn(core)
            except BaseException as error:
                future.set_exception(error)
                return
            # What the caller reads next (stats, the exact view) includes the commands
            # applied so far.
            self.mirror.apply(core.scheduler.kv_event_publisher.take())
            self.stats_snapshot = snapshot(self)
            future.set_result(result)

    # -- calls ---------------------------------------------------------------------
    def _sampling(self, request: LLMRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        from agentrt.runtime.engines.vllm import scheduler as keys

        options = {k: v for k, v in request.sampling.items() if k in SAMPLING_KEYS}
        n = request.max_tokens
        if request.messages is None:  # a counted call: exactly its reply length
            n = min(n, request.output_tokens_hint or n)
            options.update(min_tokens=n, ignore_eos=True)
        options.update(self.tools.sampling_overrides(request))
        hold = self.holding and not (request.last_call or request.last_turn)
        return SamplingParams(
            max_tokens=n, output_kind=RequestOutputKind.DELTA, **options,
            extra_args={keys.SESSION: request.session_id, keys.PROGRAM: request.program_id,
                        keys.REQUEST: request.request_id, keys.HOLD: hold,
                        keys.ARRIVAL: float(request.program_arrival),
                        keys.LAST: bool(request.last_call)})

    def _outputs(self, core: Any, outputs: list[Any], now: float) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        for output in outputs:
            call = self._calls.get(output.request_id)
            if call is None or not call.add(output, now):
                continue
            del self._calls[output.request_id]
            done = call.done(self.worker_id, now, self.tools.parse)
            self.prompt_tokens += done.prompt_tokens
            self.hit_tokens += done.cached_tokens
            if call.request.messages is None:
                self.prompts.remember(reply_chain(call.request.prefix, done),
                                      call.prompt_ids + call.output_ids)
            core.scheduler.resolve(done.session_id, keep=bool(done.tool_calls))
            events.append(done)
        return events

    def _hold_events(self, core: Any) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        for event in core.scheduler.take_hold_events():
            if event.kind == "preempted":
                call = self._calls.get(event.key)
                if call is not None:
                    call.preemptions += 1
                    events.append(Preempted(event.key, call.request.session_id,
                                            self.worker_id, event.at, "kv_full"))
            else:
                events.append(PinExpired(event.key, self.worker_id, event.at))
        return events

    def _error(self, call: Call, message: str, now: float) -> RequestDone:
        """A call that could not be served: no tokens, `error` says why."""
        request = call.request
        return RequestDone(
            request.request_id, request.session_id, request.program_id, self.worker_id,
            finished_at=now, prompt_tokens=0, cached_tokens=0, prefilled_tokens=0,
            output_tokens=0, finish_reason="error", error=f"{self.worker_id}: {message}",
            output_synthetic_key=stable_hash("vllm-reply", request.request_id),
            dispatched_at=call.submitted_at, first_scheduled_at=call.submitted_at,
            first_token_at=now)
