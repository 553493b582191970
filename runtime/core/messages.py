"""Requests, replies and engine events: the values that cross between the core, engines
and drivers.

Plain slotted dataclasses: they sit on hot paths (one per LLM call, one per engine event).
Everything here is transport-neutral; `runtime.wire` turns them into versioned msgpack
when they cross a process.

Life of one LLM call, with the timestamps each stage fills in::

    runner ──LLMRequest──▶ scheduler queue ──dispatch──▶ engine waiting ──▶ running
      arrival                              dispatched_at      first_scheduled_at
                                                              ... first_token_at
    runner ◀──RequestDone (finished_at, usage, text, tool calls)── engine

Times are seconds on the driver's clock (virtual in the simulator, monotonic wall
time scaled back to engine time in the Ray runtime).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentrt.kvcache.prefix import TokenChain


@dataclass(slots=True)
class LLMRequest:
    """One LLM call of one session.

    `prefix` describes the prompt as a chain of block hashes (see `kvcache.prefix`):
    it is all an engine needs to find the cached part of the prompt. `messages` and
    `tools` carry the conversation for responders and real engines; the simulator's
    counted workloads leave them empty.
    """

    request_id: str
    program_id: str
    session_id: str
    model: str
    prefix: TokenChain
    max_tokens: int
    arrival: float = 0.0
    program_arrival: float = 0.0
    tenant: str = "default"
    messages: list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    # Output length the workload already knows (trace replay); None lets the responder
    # decide.
    output_tokens_hint: int | None = None
    # True when the caller knows this is the program's last LLM call (no pin after it).
    last_call: bool = False
    # True when no LLM call of this session follows this one (its step ends with it).
    last_turn: bool = False
    # The program's agent type (its @program name, or a trace's `agent`).
    agent: str = ""
    # Tokens of the conversation before this call's new input, when the caller counts
    # them (trace replay); None: the core counts the session's last prompt and reply.
    context_before: int | None = None
    # Counted calls (trace replay) know what the reply does: the tool it calls, and how
    # long that tool runs (read only by offline oracles such as Belady eviction).
    tool_hint: str | None = None
    tool_hint_s: float | None = None
    # What the fleet logged about the program when it started (trace `features`: task
    # kind, repository size, ...), shared by its calls; None when unknown. Read by
    # policies that predict program length.
    features: dict[str, str | int | float] | None = None
    # LLM calls the whole program makes, as its trace says (read only by offline
    # oracles such as the shortest-remaining-first queue).
    program_calls_hint: int | None = None
    # A parallel sample (fork) of another request with the same prompt: the engine
    # admits it once that request has prefilled, so the prompt's KV is computed once
    # and shared (see runtime.engines.scheduler).
    fork_of: str | None = None
    trace_context: dict[str, str] | None = None
    # Set by the scheduler's queue policy when it dispatches; lower runs first.
    priority: tuple = ()

    @property
    def prompt_tokens(self) -> int:
        return self.prefix.num_tokens


@dataclass(slots=True)
class ToolCallSpec:
    """A tool call in the OpenAI shape: {"id", "type": "function", "function": {...}}."""

    call_id: str
    name: str
    arguments: str  # JSON text, as models emit it

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.call_id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class RequestDone:
    """An engine finished a request. Token counts obey
    `prompt_tokens == cached_tokens + prefilled_tokens - recomputed_tokens`, where
    recomputed tokens are work redone after a preemption."""

    request_id: str
    session_id: str
    program_id: str
    worker_id: str
    finished_at: float
    prompt_tokens: int
    cached_tokens: int
    prefilled_tokens: int
    output_tokens: int
    text: str = ""
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    finish_reason: str = "stop"  # "stop" | "length" | "tool_calls" | "aborted" | "error"
    # How the caller extends its TokenChain with this output (see TokenChain.extend_*):
    # token ids when the engine produced text, else a synthetic run key.
    output_token_ids: list[int] | None = None
    output_synthetic_key: int | None = None
    dispatched_at: float = 0.0
    first_scheduled_at: float = 0.0
    first_token_at: float = 0.0
    preemptions: int = 0
    recomputed_tokens: int = 0
    # When the scheduler got the call (the core's clock; set by the core).
    queued_at: float = 0.0
    # The core's TTL decision for the session when this reply ended in a tool call
    # (None otherwise, or without retention).
    kv_pin: PinNote | None = None
    # finish_reason "error": what failed, where, and what to do (a real engine's call
    # that could not be served; token counts are then 0). None otherwise.
    error: str | None = None
    # Who served it, for traces (OpenTelemetry GenAI conventions): the provider
    # ("vllm", "openai", ...; "" for simulated engines), the server as host:port, the
    # model the server says answered and its response id.
    provider: str = ""
    server: str = ""
    response_model: str = ""
    response_id: str = ""


@dataclass(slots=True)
class PinNote:
    """A TTL decision for the session of a reply that ended in a call to `tool`, as
    the trace shows it. Times are run-clock seconds (model seconds: wall seconds /
    time_scale on Ray): `ttl_s` is how long the KV is kept (until - now; 0 for offload
    and drop, inf for a pin until the next turn); `predicted_s` is the tool's median
    duration under the duration model (`duration_source`, from `duration_samples`
    observed calls). `blocks`: the full blocks of the session's context the decision
    holds or moves to host memory (0 for a drop); `worker_id`: the worker told to carry
    it out; `decided_at`: when."""

    tool: str
    action: str
    ttl_s: float
    reason: str
    duration_source: str
    duration_samples: int
    predicted_s: float
    blocks: int = 0
    worker_id: str = ""
    decided_at: float = 0.0


@dataclass(slots=True)
class Preempted:
    request_id: str
    session_id: str
    worker_id: str
    at: float
    reason: str


@dataclass(slots=True)
class Evicted:
    """Cached blocks of a session left the GPU (dropped, or moved to host memory)."""

    session_id: str
    worker_id: str
    at: float
    blocks: int
    offloaded: bool = False


@dataclass(slots=True)
class PinExpired:
    session_id: str
    worker_id: str
    at: float


EngineEvent = RequestDone | Preempted | Evicted | PinExpired


@dataclass(slots=True)
class EngineStats:
    """A snapshot of one worker, valid at the time it was taken."""

    worker_id: str
    running: int
    waiting: int
    kv_capacity_blocks: int
    kv_used_blocks: int
    kv_pinned_blocks: int
    kv_cached_blocks: int  # free but still holding reusable prefix content
    block_size: int
    prefix_hit_tokens: int
    prefix_miss_tokens: int
    busy_time: float
    steps: int
    # The running batch now: how many sequences decode, and their context tokens (what
    # a recompute or swap stalls; with the cost model, one decode iteration's time).
    decoding: int = 0
    running_context_tokens: int = 0

    @property
    def kv_free_blocks(self) -> int:
        return self.kv_capacity_blocks - self.kv_used_blocks

    def decision_view(self) -> tuple[int, int, int, int]:
        """What the core reads of a worker's last stats between its events (how many
        calls run and wait, the KV's size and block): a step that finished nothing and
        left this as it was decides nothing, unless `ClusterControl.step_ends_matter`.
        The rest (KV use, the decoding batch) is read only with a finished call's own
        stats, which come with it."""
        return (self.running, self.waiting, self.kv_capacity_blocks, self.block_size)

    @property
    def load(self) -> int:
        return self.running + self.waiting
