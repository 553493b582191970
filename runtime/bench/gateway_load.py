"""The gateway under load on loopback: concurrent multi-turn sessions, bounded in count
and time, checked call by call, with the gateway's overhead over calling the scheduler
directly.

    python -m agentrt.runtime.bench.gateway_load [--sessions 200] [--turns 2]
        [--workers 2] [--time-scale 0.1] [--timeout-s 600]

Each session is one program of `turns` user turns; a turn is two calls, as an agent
makes them: the scripted model calls the offered tool (its arguments carry the turn's
marker), the client "runs" it (a seeded 0-50 ms sleep) and sends the result, the model
answers "done: <result>". Every reply is checked against its own request's marker, so a
lost, duplicated or crossed reply is counted; the gateway's request counter and the
scheduler's call counts must equal the calls made. The session's last call ends its
program (`X-Agentrt-Program-End`).

The same sessions run twice, one phase after the other, on the same cluster:

- gateway: HTTP through Ray Serve's proxy and the gateway replica (httpx clients);
- direct: the same LLMRequests sent to the scheduler actor from this process, the way a
  program runner sends them (`ActorBackend`): no HTTP, no gateway.

Per call, overhead = the client's latency - the engine time (from the scheduler's
receipt of the call to the engine's end: `x-agentrt-engine-ms` for the gateway, the
RequestDone's times for the direct path), so the queueing and batching the two phases
see differently drop out. Printed: p50 and p99 of latency and overhead for each phase
and the gateway's extra over direct at p50 and p99. During the gateway phase `/metrics`
is scraped every half second and each scrape must parse as Prometheus text. The engines
are simulated (figures labelled so); the machine's cores are shared by the clients,
the gateway, the scheduler and the workers.

Both phases' clients run in a Ray actor (`LoadClient`), not in this process: Ray runs
its workers at a lower CPU priority (niceness 15) than the driver, so a client here
would outrank the proxy, the gateway and the scheduler it measures, and the two phases
would not compete for the cores alike. The gateway phase's client is aiohttp (lighter
per request than httpx at hundreds of connections).
"""
from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
import httpx
import ray
from prometheus_client.parser import text_string_to_metric_families

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.cluster.runner_actor import ActorBackend
from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.core.session_chain import request_id
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.serve.replies import completion

MODEL = "llama-3.1-8b"
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


@dataclass
class Phase:
    name: str
    latency_s: list[float] = field(default_factory=list)
    overhead_s: list[float] = field(default_factory=list)
    replica_s: list[float] = field(default_factory=list)
    """Gateway phase: the replica's own share of the overhead (processing - engine)."""
    failures: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def calls(self) -> int:
        return len(self.latency_s)

    @property
    def duplicated(self) -> int:
        return len(self.request_ids) - len(set(self.request_ids))


@dataclass
class LoadResult:
    sessions: int
    turns: int
    gateway: Phase
    direct: Phase
    scrapes: int = 0
    scrape_errors: list[str] = field(default_factory=list)
    counted: dict[str, float] = field(default_factory=dict)

    @property
    def expected_calls(self) -> int:
        return self.sessions * self.turns * 2


Call = Callable[[str, list[dict[str, Any]], bool], Any]


async def _session(i: int, turns: int, call: Call, phase: Phase, seed: int) -> None:
    """One session's turns through `call(program, messages, last)`, which returns the
    reply as a chat completion dict; every reply is checked against its request."""
    rng = random.Random(seed * 100_003 + i)
    program = f"{phase.name}-{i}"
    messages: list[dict[str, Any]] = []
    for t in range(turns):
        marker = f"s{i}t{t}"
        messages.append({"role": "user", "content": f"look up {marker}"})
        reply = await call(program, messages, False)
        calls = reply["choices"][0]["message"].get("tool_calls") or []
        if not calls or marker not in calls[0]["function"]["arguments"]:
            raise AssertionError(f"{program} turn {t}: expected a lookup of {marker}, got "
                                 f"{reply['choices'][0]['message']}")
        messages.append(reply["choices"][0]["message"])
        await asyncio.sleep(rng.uniform(0.0, 0.05))  # the tool runs
        messages.append({"role": "tool", "tool_call_id": calls[0]["id"],
                         "content": f"value-{marker}"})
        reply = await call(program, messages, t == turns - 1)
        text = reply["choices"][0]["message"]["content"]
        if text != f"done: value-{marker}":
            raise AssertionError(f"{program} turn {t}: expected the answer for {marker}, "
                                 f"got {text!r}")
        messages.append({"role": "assistant", "content": text})


async def _run_phase(phase: Phase, sessions: int, turns: int, call: Call, seed: int) -> None:
    start = time.perf_counter()
    results = await asyncio.gather(*(_session(i, turns, call, phase, seed)
                                     for i in range(sessions)), return_exceptions=True)
    phase.wall_s = time.perf_counter() - start
    phase.failures += [f"{type(r).__name__}: {r}" for r in results if isinstance(r, Exception)]


def _gateway_call(http: aiohttp.ClientSession, url: str, phase: Phase) -> Call:
    async def call(program: str, messages: list[dict[str, Any]], last: bool) -> Any:
        headers = {"X-Agentrt-Program": program}
        if last:
            headers["X-Agentrt-Program-End"] = "true"
        body = {"model": MODEL, "messages": messages, "tools": [TOOL], "max_tokens": 64}
        start = time.perf_counter()
        async with http.post(url, json=body, headers=headers) as response:
            if response.status != 200:
                raise AssertionError(f"{program}: HTTP {response.status}: "
                                     f"{await response.text()}")
            reply = await response.json()
        latency = time.perf_counter() - start
        engine = float(response.headers["x-agentrt-engine-ms"]) / 1e3
        processing = float(response.headers["x-agentrt-processing-ms"]) / 1e3
        phase.latency_s.append(latency)
        phase.overhead_s.append(latency - engine)
        phase.replica_s.append(processing - engine)
        phase.request_ids.append(response.headers["x-agentrt-request-id"])
        return reply
    return call


def _direct_call(scheduler: Any, clock: Any, block_size: int, phase: Phase) -> Call:
    """What a program runner does for `ctx.chat`, without a gateway."""
    backend, tokenizer = ActorBackend(scheduler), SimpleTokenizer()
    turns: dict[str, int] = {}
    arrivals: dict[str, float] = {}

    async def call(program: str, messages: list[dict[str, Any]], last: bool) -> Any:
        start = time.perf_counter()
        if program not in turns:
            turns[program], arrivals[program] = 0, time.time()
            await backend.program_started(program)
        tokens = tokenizer.encode_prompt(messages, [TOOL])
        request = LLMRequest(
            request_id=request_id(program, turns[program]), program_id=program,
            session_id=program, model=MODEL,
            prefix=TokenChain.from_tokens(tokens, block_size=block_size), max_tokens=64,
            arrival=time.time(), program_arrival=arrivals[program], messages=list(messages),
            tools=[TOOL], last_call=last, last_turn=last)
        turns[program] += 1
        done = await backend.chat(request)
        reply = completion(done, completion_id=request.request_id, model=MODEL, created=0)
        if last:
            await backend.program_finished(program)
        latency = time.perf_counter() - start
        phase.latency_s.append(latency)
        phase.overhead_s.append(latency - (done.finished_at - done.queued_at) * clock.scale)
        phase.request_ids.append(done.request_id)
        return reply
    return call


async def _scrape(url: str, stop: asyncio.Event, result: LoadResult) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        while not stop.is_set():
            try:
                text = (await http.get(url)).text
                families = list(text_string_to_metric_families(text))
                if not any(f.name == "agentrt_worker_kv_used_blocks" for f in families):
                    raise ValueError("no agentrt_worker_kv_used_blocks family")
                result.scrapes += 1
            except Exception as exc:  # counted and reported, not raised mid-run
                result.scrape_errors.append(f"{type(exc).__name__}: {exc}")
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass


def _counted(metrics_text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == "agentrt_gateway_requests_total" and s.labels.get("endpoint") == "chat":
                out[f"gateway_chat_{s.labels['status']}"] = s.value
    return out


@ray.remote(num_cpus=0)
class LoadClient:
    """Runs one phase's sessions from a Ray worker process (see the module doc)."""

    async def gateway(self, url: str, sessions: int, turns: int, seed: int) -> Phase:
        phase = Phase("gateway")
        connector = aiohttp.TCPConnector(limit=sessions + 16)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            call = _gateway_call(http, url + "/v1/chat/completions", phase)
            await _run_phase(phase, sessions, turns, call, seed)
        return phase

    async def direct(self, scheduler: Any, clock: Any, block_size: int, sessions: int,
                     turns: int, seed: int) -> Phase:
        phase = Phase("direct")
        await _run_phase(phase, sessions, turns,
                         _direct_call(scheduler, clock, block_size, phase), seed)
        return phase


async def run_load(gateway: Any, sessions: int = 200, turns: int = 2,
                   seed: int = 0) -> LoadResult:
    """Both phases against a running gateway (`runtime.serve.serve`); no time limit
    here (the caller bounds it)."""
    runtime = gateway.runtime
    client = LoadClient.remote()
    try:
        before = runtime.scheduler_counters()
        stop = asyncio.Event()
        result = LoadResult(sessions, turns, Phase("gateway"), Phase("direct"))
        scraper = asyncio.create_task(_scrape(gateway.url + "/metrics", stop, result))
        result.gateway = await client.gateway.remote(gateway.url, sessions, turns, seed)
        stop.set()
        await scraper
        async with httpx.AsyncClient(timeout=30) as http:
            result.counted = _counted((await http.get(gateway.url + "/metrics")).text)
        middle = runtime.scheduler_counters()
        result.direct = await client.direct.remote(runtime.scheduler, runtime.clock,
                                                   runtime.config.block_size, sessions,
                                                   turns, seed)
        after = runtime.scheduler_counters()
    finally:
        ray.kill(client)
    for name, a, b in (("gateway", before, middle), ("direct", middle, after)):
        for key in ("submitted", "completed"):
            result.counted[f"scheduler_{key}_{name}"] = b[key] - a[key]
    return result


def problems(result: LoadResult) -> list[str]:
    """Everything that says a call was lost, duplicated or crossed, or a scrape failed."""
    out = []
    n = result.expected_calls
    for phase in (result.gateway, result.direct):
        out += [f"{phase.name}: {f}" for f in phase.failures[:5]]
        if phase.calls != n:
            out.append(f"{phase.name}: {phase.calls} calls answered of {n}")
        if phase.duplicated:
            out.append(f"{phase.name}: {phase.duplicated} request ids answered twice")
        for key in ("submitted", "completed"):
            got = result.counted.get(f"scheduler_{key}_{phase.name}")
            if got != n:
                out.append(f"{phase.name}: the scheduler {key} {got} calls, not {n}")
    if result.counted.get("gateway_chat_200") != n:
        out.append(f"the gateway counted {result.counted.get('gateway_chat_200')} answered "
                   f"calls, not {n}")
    if not result.scrapes or result.scrape_errors:
        out.append(f"/metrics: {result.scrapes} scrapes parsed, errors: "
                   f"{result.scrape_errors[:3]}")
    return out


def report(result: LoadResult, time_scale: float) -> str:
    ms = lambda v: f"{v * 1e3:8.2f}"
    g, d = result.gateway, result.direct
    lines = [f"gateway load (simulated engines, time scale {time_scale:g}): {result.sessions} "
             f"concurrent sessions x {result.turns} turns x 2 calls = {result.expected_calls} "
             "calls per phase",
             f"{'phase':8} {'calls':>6} {'wall s':>7} {'lat p50':>8} {'lat p99':>8} "
             f"{'ovh p50':>8} {'ovh p99':>8}   (ms)"]
    for p in (g, d):
        lines.append(f"{p.name:8} {p.calls:6d} {p.wall_s:7.2f} {ms(percentile(p.latency_s, .5))} "
                     f"{ms(percentile(p.latency_s, .99))} {ms(percentile(p.overhead_s, .5))} "
                     f"{ms(percentile(p.overhead_s, .99))}")
    lines.append("gateway overhead over direct: p50 "
                 f"{ms(percentile(g.overhead_s, .5) - percentile(d.overhead_s, .5)).strip()} ms,"
                 f" p99 {ms(percentile(g.overhead_s, .99) - percentile(d.overhead_s, .99)).strip()}"
                 " ms")
    lines.append(f"of which inside the gateway replica (processing - engine): p50 "
                 f"{ms(percentile(g.replica_s, .5)).strip()} ms, p99 "
                 f"{ms(percentile(g.replica_s, .99)).strip()} ms; the rest is HTTP, Ray "
                 "Serve's proxy and the client")
    lines.append(f"/metrics scraped {result.scrapes} times during the gateway phase, all "
                 f"parsed" if not result.scrape_errors else
                 f"/metrics: {len(result.scrape_errors)} scrapes failed")
    found = problems(result)
    lines.append("no call lost, duplicated or crossed" if not found else
                 "PROBLEMS: " + "; ".join(found))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--timeout-s", type=float, default=600.0,
                        help="the whole run stops after this long (both phases)")
    parser.add_argument("--trace-dir", default="runs")
    args = parser.parse_args(argv)
    from agentrt.runtime.serve import serve
    from agentrt.runtime.serve.responders import tool_rounds

    with serve(workers=args.workers, time_scale=args.time_scale, responder=tool_rounds(),
               port=0, trace_dir=args.trace_dir,
               max_inflight=max(1024, args.sessions)) as gateway:
        result = asyncio.run(asyncio.wait_for(
            run_load(gateway, args.sessions, args.turns), args.timeout_s))
    print(report(result, args.time_scale))
    return 0 if not problems(result) else 1


if __name__ == "__main__":
    raise SystemExit(main())
