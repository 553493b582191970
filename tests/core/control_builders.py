"""Builders for cluster-control tests: a transport that records every decision and
carries it out on real simulated engines, and a small stepping loop."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.control import ClusterControl, ControlSettings
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.engines.factory import EngineFactory
from agentrt.runtime.engines.simulated.engine import SimulatedEngine
from agentrt.runtime.engines.simulated.perf_model import PerfModel
from agentrt.runtime.engines.simulated.responder import ScriptedResponder
from agentrt.runtime.engines.tokenizer import SimpleTokenizer

MODEL = "llama-3.1-8b"


def calls_tool(request: LLMRequest, rng) -> dict:
    """The model always calls `pytest`, unless the request says it is the last turn."""
    if request.last_turn:
        return {"text": "done"}
    return {"text": "", "tool_calls": [{"name": "pytest", "arguments": {}}]}


@dataclass
class RecordingTransport:
    """Records every call (name, worker, details) and applies it to `engines`."""

    engines: dict[str, SimulatedEngine] = field(default_factory=dict)
    calls: list[tuple] = field(default_factory=list)
    wakes: list[float] = field(default_factory=list)
    now: float = 0.0

    def named(self, name: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == name]

    def send(self, worker_id, requests):
        self.calls.append(("send", worker_id, [r.request_id for r in requests]))
        for r in requests:
            self.engines[worker_id].submit(r, self.now)

    def abort(self, worker_id, request_id):
        self.calls.append(("abort", worker_id, request_id))
        self.engines[worker_id].abort(request_id, self.now)

    def release(self, worker_id, session_id):
        self.calls.append(("release", worker_id, session_id))
        self.engines[worker_id].release(session_id, self.now)

    def retain(self, worker_id, session_id, prefix, decision, program_id):
        self.calls.append(("retain", worker_id, session_id, decision))
        self.engines[worker_id].retain(session_id, prefix, decision, self.now, program_id)

    def prefetch(self, worker_id, session_id, prefix):
        self.calls.append(("prefetch", worker_id, session_id))
        self.engines[worker_id].prefetch(session_id, prefix, self.now)

    def pause_hint(self, worker_id, session_id, prefix, hint):
        self.calls.append(("pause_hint", worker_id, session_id, hint))

    def resume_hint(self, worker_id, session_id, prefix):
        self.calls.append(("resume_hint", worker_id, session_id))

    def move(self, move):
        self.calls.append(("move", move.src, move.dst, move.session_id))

    def wake_at(self, time):
        self.wakes.append(time)


def make_control(workers: int = 1, ttl: str | None = "agentrt", host: bool = False,
                 responder=None, eviction: str = "lru", **settings: Any
                 ) -> tuple[ClusterControl, RecordingTransport]:
    """A control over `workers` simulated 8B/H100 engines whose model calls `pytest`."""
    factory = EngineFactory(responder=responder or ScriptedResponder(calls_tool), ttl=ttl,
                            host_fraction=0.5 if host else 0.0, eviction=eviction)
    transport = RecordingTransport()
    control = ClusterControl(ControlSettings(ttl=ttl, record=True, **settings), transport,
                             cost=PerfModel(MODEL, "h100", 1))
    for i in range(workers):
        engine = factory(f"w{i}")
        transport.engines[engine.worker_id] = engine
        control.add_worker(engine.info)
    return control, transport


def make_call(session: str = "p/s", turn: int = 0, words: int = 300, *,
              prefix: TokenChain | None = None, **fields: Any) -> LLMRequest:
    messages = [{"role": "user", "content": " ".join(["word"] * words)}]
    tokens = SimpleTokenizer().encode_prompt(messages, None)
    program = session.split("/")[0]
    return LLMRequest(request_id=f"{session}#{turn}", program_id=program,
                      session_id=session, model=MODEL,
                      prefix=prefix or TokenChain.from_tokens(tokens, 16), max_tokens=64,
                      messages=messages, agent="coder", **fields)


def run_until_done(control: ClusterControl, transport: RecordingTransport,
                   now: float, delivered: list | None = None) -> tuple[list[RequestDone], float]:
    """Step every engine with work until at least one call finishes; each step's events
    go to the control as a driver would deliver them. Returns the finished calls."""
    finished: list[RequestDone] = []
    while not finished:
        busy = [w for w, e in transport.engines.items() if e.has_work()]
        assert busy, "nothing runs"
        for worker_id in busy:
            engine = transport.engines[worker_id]
            result = engine.step(now)
            now += result.duration
            transport.now = now
            done = [e for e in result.events if isinstance(e, RequestDone)]
            with control.batch(now):
                control.on_step(worker_id, result.events, engine.stats(), now,
                                delivered.append if delivered is not None else None)
            finished += done
    return finished, now
