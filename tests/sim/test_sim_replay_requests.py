"""A trace replayed on the runtime's step contexts sends the very requests the
simulator's player sends: same ids, same prompts block for block, same output caps and
hints, same last-call flags. (No Ray: the replayed program runs against a fake
scheduler.)"""
from __future__ import annotations

import asyncio
import time

import pytest

from agentrt.kvcache.prefix import stable_hash
from agentrt.programs.workloads import ProgramSpec, StepSpec, TraceError, TurnSpec, generate
from agentrt.runtime.config import DEFAULT_PRICES
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.runner.execution import execute_program
from agentrt.runtime.runner.replay import trace_program
from agentrt.runtime.sim.player import ProgramPlayer
from agentrt.toolmgr import ToolManager, ToolRegistry

MODEL = "llama-3.1-8b"


def reply(request: LLMRequest) -> RequestDone:
    """What an engine answers to a counted call: the hinted length, a synthetic run."""
    return RequestDone(
        request_id=request.request_id, session_id=request.session_id,
        program_id=request.program_id, worker_id="w0", finished_at=0.0,
        prompt_tokens=request.prompt_tokens, cached_tokens=0,
        prefilled_tokens=request.prompt_tokens, output_tokens=request.output_tokens_hint,
        output_synthetic_key=stable_hash("out", request.request_id))


class RecordingBackend:
    def __init__(self) -> None:
        self.requests: dict[str, LLMRequest] = {}
        self.tools: list[tuple[str, str, float]] = []

    async def program_started(self, program_id: str) -> None: ...

    async def program_finished(self, program_id: str) -> None: ...

    async def chat(self, request: LLMRequest) -> RequestDone:
        self.requests[request.request_id] = request
        await asyncio.sleep(0)
        return reply(request)

    async def abort(self, request_id: str) -> None: ...

    async def release_session(self, session_id: str) -> None: ...

    def tool_finished(self, session_id: str, tool: str, seconds: float,
                      prior_s: float | None) -> None:
        self.tools.append((session_id, tool, seconds))


def played(spec: ProgramSpec) -> dict[str, LLMRequest]:
    """Every request the player makes for `spec`, answering each at once."""
    player = ProgramPlayer(MODEL)
    _, todo = player.start(spec, 0.0)
    out: dict[str, LLMRequest] = {}
    while todo:
        request = todo.pop(0)
        out[request.request_id] = request
        outcome = player.on_done(reply(request), 0.0)
        if outcome.tool_duration is not None:
            outcome = player.after_tool(request.session_id, 0.0)
        todo.extend(outcome.new_requests)
    return out


def replayed(spec: ProgramSpec, backend: RecordingBackend | None = None
             ) -> dict[str, LLMRequest]:
    backend = backend if backend is not None else RecordingBackend()
    result = asyncio.run(execute_program(
        trace_program(spec), (), {}, program_id=spec.program_id,
        arrival=0.0, backend=backend, tools=ToolManager(ToolRegistry()),
        tokenizer=SimpleTokenizer(), default_model=MODEL, served_models=(MODEL,),
        block_size=16, prices=dict(DEFAULT_PRICES), clock=time.time, time_scale=1e-3))
    assert result.status == "succeeded", result.error
    return backend.requests


def fan_out() -> ProgramSpec:
    """plan, then two parallel steps, then a join; `left` has a human turn."""
    turns = lambda *rows: [TurnSpec(*row) for row in rows]
    return ProgramSpec("fan", [
        StepSpec("join", turns((50, 10)), deps=("left", "right")),  # listed first
        StepSpec("plan", turns((300, 20, "bash", 0.1), (40, 12)), prefix_id="sys",
                 prefix_tokens=100),
        StepSpec("left", turns((70, 9, "grep", 0.1), (30, 5, None, 0.0, 0.2), (99, 99)),
                 deps=("plan",)),
        StepSpec("right", turns((33, 17)), deps=("plan",), prefix_id="sys",
                 prefix_tokens=100),
    ])


def session_with_subagents() -> ProgramSpec:
    """A coding session: a person's follow-up, two subagents forked from the main
    conversation (one nesting a third), a compaction, features."""
    return ProgramSpec("session", [
        StepSpec("main", [
            TurnSpec(900, 40, "read", 0.05),
            TurnSpec(300, 30, think_s=0.3),  # a human turn
            TurnSpec(200, 20, "task", spawns=("sub_a", "sub_b")),
            TurnSpec(400, 25, "shell", 0.1, summary_tokens=256),  # compacted
            TurnSpec(50, 10)], prefix_id="sys", prefix_tokens=160),
        StepSpec("sub_a", [TurnSpec(60, 12, "grep", 0.02), TurnSpec(40, 8)]),
        StepSpec("sub_b", [TurnSpec(70, 9, "task", spawns=("sub_c",)), TurnSpec(20, 6)]),
        StepSpec("sub_c", [TurnSpec(30, 7, summary_tokens=None)]),
    ], agent="coder", features={"task_kind": "bugfix", "repo_tokens": 90_000})


@pytest.mark.parametrize("spec", [fan_out(), session_with_subagents(),
                                  *generate("swe", 3, seed=1), *generate("dag", 2, seed=2)],
                         ids=lambda s: s.program_id)
def test_replay_sends_the_players_requests(spec):
    theirs, ours = played(spec), replayed(spec)
    assert sorted(ours) == sorted(theirs)
    for request_id, sent in ours.items():
        expected = theirs[request_id]
        assert sent.prefix == expected.prefix, request_id
        assert (sent.session_id, sent.max_tokens, sent.output_tokens_hint, sent.last_call) \
            == (expected.session_id, expected.max_tokens, expected.output_tokens_hint,
                expected.last_call), request_id
        fields = ("last_turn", "agent", "context_before", "tool_hint", "tool_hint_s",
                  "features", "program_calls_hint")
        assert [getattr(sent, f) for f in fields] == [getattr(expected, f) for f in fields]


def test_replayed_tools_report_the_traced_durations_in_run_seconds():
    backend = RecordingBackend()
    replayed(fan_out(), backend)
    assert sorted(backend.tools) == [("fan/left", "grep", 0.1), ("fan/left", "human", 0.2),
                                     ("fan/plan", "bash", 0.1)]


def test_every_turn_is_played_and_forks_start_from_the_parents_conversation():
    spec = session_with_subagents()
    requests = played(spec)
    assert len(requests) == spec.num_calls == 10
    assert requests["session/main#1"].tool_hint == "human"
    assert requests["session/main#1"].tool_hint_s == 0.3
    assert requests["session/main#2"].tool_hint_s is None  # waits on its subagents
    fork = requests["session/main#2"].prefix.num_tokens + 20
    assert requests["session/sub_a#0"].prefix.num_tokens == fork + 60
    parent = requests["session/main#2"].prefix.hashes
    assert requests["session/sub_a#0"].prefix.hashes[:len(parent)] == parent
    assert requests["session/main#3"].prefix.num_tokens == 160 + 256 + 400  # compacted
    assert requests["session/main#4"].last_call
    assert not any(r.last_call for rid, r in requests.items() if rid != "session/main#4")


def test_replay_keeps_the_trace_shape():
    graph = trace_program(fan_out()).build()
    assert [n.node_id for n in graph.nodes] == ["plan", "left", "right", "join"]
    assert graph.deps("join") == ("left", "right")
    assert graph.ready(done=set(), running=set()) == ["plan"]


def test_step_ids_that_cannot_name_a_step_are_refused():
    spec = ProgramSpec("p", [StepSpec("fix bug", [TurnSpec(10, 5)])])
    with pytest.raises(ValueError, match="'fix bug' cannot name a step"):
        trace_program(spec)


def test_a_malformed_program_is_refused_naming_the_field():
    spec = ProgramSpec("p", [StepSpec("s", [TurnSpec(10, 5), TurnSpec(10, 5, think_s=3.0)])])
    with pytest.raises(TraceError, match=r"^program 'p': steps\[0\]\.turns\[1\]\.think_s: "
                                         r"must be 0 on a step's last turn"):
        trace_program(spec)
