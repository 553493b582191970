"""One request inside the simulated engine, across admissions and preemptions.

    submit ─▶ WAITING ─admit─▶ PREFILL ─last chunk─▶ DECODE ─last token─▶ (done)
                 ▲                │                     │
                 └──── preempt ───┴─────────────────────┘

While decoding, a sequence does no per-token work: its progress is a function of the
decode tick (see `DecodeBatch`). Usage counters follow RequestDone's identity
`prompt_tokens == cached + prefilled - recomputed`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import LLMRequest, RequestDone, ToolCallSpec
from agentrt.runtime.engines.simulated.responder import Responder, Response

WAITING, PREFILL, DECODE = "waiting", "prefill", "decode"


def output_key(request_id: str) -> int:
    """The synthetic run key of a request's output (RequestDone.output_synthetic_key)."""
    return stable_hash("out", request_id)


def respond_once(responder: Responder, seed: int, req: LLMRequest) -> Response:
    """Ask `responder` for the reply to `req` with an rng that depends only on (seed,
    request), so a reply never depends on batching order. A counted call that knows
    its reply calls a tool (`tool_hint`, trace replay) gets that call when the
    responder gave none. Raises ValueError if the responder breaks its contract."""
    r = responder.respond(req, random.Random(stable_hash(seed, req.request_id)))
    if req.tool_hint is not None and not r.tool_calls and r.finish_reason != "length":
        r.tool_calls = [ToolCallSpec(f"{req.request_id}:tool", req.tool_hint, "{}")]
        r.finish_reason = "tool_calls"
    if not 1 <= r.output_tokens <= req.max_tokens or (
        r.token_ids is not None and len(r.token_ids) != r.output_tokens
    ):
        raise ValueError(
            f"responder {type(responder).__name__} broke its contract on "
            f"{req.request_id!r}: output_tokens={r.output_tokens} (max_tokens "
            f"{req.max_tokens}), token_ids of length "
            f"{None if r.token_ids is None else len(r.token_ids)}"
        )
    return r


@dataclass(slots=True, eq=False)
class Seq:
    """Per-request state. Before decode tick t a decoding sequence holds
    `kv0 + t - d0` tokens of KV and has sampled `out0 + t - d0` outputs."""

    req: LLMRequest
    order: int  # submit order
    submitted_at: float
    chain: TokenChain  # what the current admission computes: prompt + outputs so far
    state: str = WAITING
    resumed: bool = False
    response: Response | None = None
    admit_idx: int = 0
    computed: int = 0  # leading tokens of `chain` with KV
    out_done: int = 0  # output tokens sampled (set when leaving decode)
    synced: int = 0  # tokens the KV manager holds for it (lags by < 1 block in decode)
    # Decode clock: first decode tick, outputs and KV tokens then.
    d0: int = 0
    out0: int = 0
    kv0: int = 0
    grow_tick: int = -1  # next tick whose token needs a new block
    finish_tick: int = -1  # tick whose iteration samples the last output
    # Usage: `covered` is how far into the prompt it ever had KV.
    covered: int = 0
    cached: int = 0
    prefilled: int = 0
    recomputed: int = 0
    preemptions: int = 0
    first_scheduled_at: float | None = None
    first_token_at: float | None = None

    @property
    def rid(self) -> str:
        return self.req.request_id

    @property
    def n_out(self) -> int:
        return self.response.output_tokens if self.response else 0

    def kv_tokens(self, tick: int) -> int:
        """KV tokens held before decode tick `tick` (decoding sequences only)."""
        return self.kv0 + tick - self.d0

    def outputs(self, tick: int) -> int:
        """Outputs sampled before decode tick `tick` (decoding sequences only)."""
        return self.out0 + tick - self.d0

    def add_cached(self, tokens: int) -> None:
        got = min(tokens, self.req.prompt_tokens)
        self.cached += max(0, got - self.covered)
        self.covered = max(self.covered, got)

    def add_prefilled(self, start: int, n: int) -> None:
        """Count a chunk [start, start + n); what lies below `covered` or past the
        prompt (outputs recomputed after a preemption) is recomputation."""
        end = min(start + n, self.req.prompt_tokens)
        new = max(0, end - max(start, self.covered))
        self.prefilled += n
        self.recomputed += n - new
        self.covered = max(self.covered, end)

    def output_chain(self, outputs: int) -> TokenChain:
        """The request's prefix extended by its first `outputs` output tokens."""
        if outputs == 0:
            return self.req.prefix
        chain = self.req.prefix.copy()
        ids = self.response.token_ids
        if ids is not None:
            chain.extend_tokens(ids[:outputs])
        else:
            chain.extend_synthetic(output_key(self.rid), outputs)
        return chain

    def queue_key(self) -> tuple:
        """Order in the waiting queue: priority, resumed first, then submit order."""
        return (self.req.priority, 0 if self.resumed else 1, self.order, self.rid)

    def done_event(self, worker_id: str, end: float) -> RequestDone:
        """The RequestDone of a sequence that sampled its last output at `end`."""
        r, req = self.response, self.req
        return RequestDone(
            request_id=req.request_id, session_id=req.session_id,
            program_id=req.program_id, worker_id=worker_id, finished_at=end,
            prompt_tokens=req.prompt_tokens, cached_tokens=self.cached,
            prefilled_tokens=self.prefilled, output_tokens=r.output_tokens, text=r.text,
            tool_calls=list(r.tool_calls), finish_reason=r.finish_reason,
            output_token_ids=r.token_ids,
            output_synthetic_key=None if r.token_ids is not None else output_key(self.rid),
            dispatched_at=self.submitted_at, first_scheduled_at=self.first_scheduled_at,
            first_token_at=self.first_token_at, preemptions=self.preemptions,
            recomputed_tokens=self.recomputed,
        )
