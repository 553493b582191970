"""The driver API: start (or attach to) Ray, place the actors, run programs.

    with Runtime(RuntimeConfig(workers=4)) as rt:
        report = rt.run(my_program, [{"task": "..."}, ...])
        report = rt.replay(load_trace("trace.jsonl"))   # a recorded trace, for real

Without `RAY_ADDRESS` a local Ray instance is started (and stopped at exit) with one
`sim_gpu` resource per simulated worker; with it, the runtime attaches to that cluster
(`ray job submit` sets it) and places workers on its `sim_gpu` resources when it has
them.

With the journal on (the default, `journal_url`), every program's inputs, steps, tool
calls and outcome are journaled; `Runtime(config, run_id=ID)` or `run(..., resume=ID)`
runs only what the journal does not hold (runtime.journal.run_journal). SIGINT and
SIGTERM stop a run between waits: `run` raises RunInterrupted with the partial report.
"""
from __future__ import annotations

import os
import time
import uuid
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import ray
from opentelemetry import trace as otel
from ray.exceptions import RayActorError, RayTaskError

from agentrt.programs import ProgramDef
from agentrt.programs.workloads.spec import ProgramSpec
from agentrt.runtime import tracing, wire
from agentrt.runtime.cluster.clock import RunClock
from agentrt.runtime.cluster.runner_actor import ProgramRunner
from agentrt.runtime.cluster.scheduler_actor import SchedulerActor
from agentrt.runtime.cluster.worker_actor import WorkerActor
from agentrt.runtime.config import RuntimeConfig
from agentrt.runtime.core import decisions as records
from agentrt.runtime.core.decisions import Decision, Dispatch
from agentrt.runtime.engines.factory import pool_factories
from agentrt.runtime.engines.simulated.responder import Responder
from agentrt.runtime.interrupts import SIGNAL_NAMES, RunInterrupted, StopSignals
from agentrt.runtime.journal import OFF, ResumeError, sqlite_url
from agentrt.runtime.journal.run_journal import RunJournal
from agentrt.runtime.report import RunReport
from agentrt.runtime.results import FAILED, ProgramResult
from agentrt.runtime.runner.choices import (
    PlanningSettings, check_declared_models, check_priced,
)
from agentrt.runtime.runner.replay import trace_program
from agentrt.runtime.run_paths import resolve_runs_dir

_POLL_S = 1.0  # the run loop looks at stop signals at least this often

Progress = Callable[[int, int, ProgramResult], None]


@dataclass(slots=True)
class _Launch:
    """One program run to start: `start_at` wall seconds after the run begins."""

    program: ProgramDef
    kwargs: dict[str, Any]
    program_id: str
    start_at: float


class Runtime:
    def __init__(self, config: RuntimeConfig | None = None, *,
                 responder: Responder | None = None, run_id: str | None = None,
                 **overrides: Any) -> None:
        """`run_id` names the run (its folder, its journal); a run the journal already
        holds is resumed by `run`. Default: a new id from the time."""
        base = config or RuntimeConfig()
        self.config = base.model_copy(update=overrides) if overrides else base
        if overrides:
            self.config = RuntimeConfig(**self.config.model_dump())  # re-validate
        # Absolute once, here: a Ray job's working folder is temporary (run_paths).
        self.config = self.config.model_copy(
            update={"trace_dir": resolve_runs_dir(self.config.trace_dir)})
        self.responder = responder
        self.run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self._resume = False  # the run must already be in the journal
        self._journal: RunJournal | None = None
        self._started_ray = False
        self._scheduler = None
        self._workers: list[Any] = []
        self._runners: list[Any] = []
        self._trace_writer: tracing.JsonLinesWriter | None = None
        self._cluster = ""
        self._launched = 0  # program ids stay unique across runs of one runtime

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> "Runtime":
        """Ray starts with the first run (after its programs validate), or `start()`."""
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        """Start the cluster (`start_cluster`) and the program runners."""
        cfg = self.config
        self.start_cluster()
        prices = {m: (p.input_per_m, p.output_per_m) for m, p in cfg.prices.items()}
        planning = self.planning.to_plain()
        self._runners = [
            ProgramRunner.remote(self._scheduler, cfg.served_models()[0],
                                 list(self.planning.served),
                                 cfg.block_size, prices, planning, self.clock)
            for _ in range(cfg.runners)]
        # Wait until the runners are up, so the first programs do not pay their start.
        ray.get([r.leftover_spans.remote() for r in self._runners], timeout=120)
        trace_path = self.run_dir / "trace.jsonl"
        self._trace_writer = tracing.JsonLinesWriter(trace_path)

    def start_cluster(self) -> None:
        """Connect to Ray and start the scheduler actor and the workers, without
        runners: what a front end that makes its own calls needs (the gateway,
        `runtime.serve`)."""
        cfg = self.config
        self.clock = clock = RunClock(time.time(), cfg.time_scale)
        pools = pool_factories(cfg, responder=self.responder, pending_holds=True,
                               origin=clock.origin)
        costs = {pool.model: factory.cost() for pool, factory in pools}
        tracing.setup("agentrt-driver")
        self._connect()
        self._scheduler = SchedulerActor.remote(cfg.control_settings(), clock,
                                                costs[pools[0][0].model], costs,
                                                cfg.worker_health_timeout_s)
        placement = self._placement()
        self._workers = []
        for pool, factory in pools:
            options = {**placement, **_key_environment(pool)}
            self._workers += [
                WorkerActor.options(**options).remote(
                    f"w{len(self._workers) + i}", factory, clock, self._scheduler)
                for i in range(pool.workers)]
        infos = ray.get([w.start.remote() for w in self._workers], timeout=120)
        # One call, so workers join in order (the router breaks ties by that order).
        ray.get(self._scheduler.register_workers.remote(list(zip(infos, self._workers))),
                timeout=60)

    @property
    def scheduler(self) -> Any:
        """The scheduler actor's handle (None before `start` / `start_cluster`)."""
        return self._scheduler

    def stop(self) -> None:
        if self._runners:
            try:  # OTLP batches in the runners go out before the actors are killed
                ray.get([r.flush_traces.remote() for r in self._runners], timeout=30)
            except Exception as exc:  # a dead runner must not keep the rest running
                warnings.warn(f"could not flush runner traces: {exc}")
        tracing.flush()
        for actor in [*self._runners, *self._workers, self._scheduler]:
            if actor is not None:
                ray.kill(actor)
        self._runners, self._workers, self._scheduler = [], [], None
        if self._trace_writer is not None:
            self._trace_writer.close()
            self._trace_writer = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    # -- running -------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        """This run's folder (absolute): trace.jsonl, journal.sqlite, results.jsonl."""
        return Path(self.config.trace_dir) / self.run_id

    @property
    def journal_url(self) -> str | None:
        """Where this run journals (None: journal off)."""
        url = self.config.journal_url
        if url == OFF:
            return None
        return url or sqlite_url(self.run_dir / "journal.sqlite")

    def run(self, program: ProgramDef, inputs: Sequence[dict[str, Any]] | dict[str, Any],
            progress: Progress | None = None, *, program_ids: Sequence[str] | None = None,
            arrivals: Sequence[float] | None = None, resume: str | None = None) -> RunReport:
        """Run `program` once per input (kwargs dicts), at most
        `max_concurrent_programs` at a time. Every input's graph is built and validated
        first, so an invalid program fails before anything runs.

        `program_ids` names the runs (one unique id per input; default
        `{name}-{n:05d}`). `arrivals` starts input i no earlier than `arrivals[i]` wall
        seconds after the call (default: as soon as a slot is free).

        `resume` names an earlier run to resume (the same programs and inputs): programs
        whose outcome it journaled are not run (their results come from the journal),
        the others resume from their journaled steps and tool calls. Raises ResumeError
        (before Ray starts) for a run the journal does not hold or other inputs, and
        RunInterrupted (with the partial report) when SIGINT or SIGTERM stops the run."""
        if resume is not None:
            self._adopt(resume)
        inputs = [inputs] if isinstance(inputs, dict) else list(inputs)
        ids = self._program_ids(program, len(inputs), program_ids)
        starts = _check_arrivals(arrivals, len(inputs))
        self.validate(program, inputs)
        return self._run([_Launch(program, kwargs, pid, at)
                          for kwargs, pid, at in zip(inputs, ids, starts)], progress)

    def replay(self, specs: Sequence[ProgramSpec],
               progress: Progress | None = None) -> RunReport:
        """Replay recorded traces (`runtime.replay.trace_program`): each program keeps
        its trace id and starts at its trace arrival, both arrivals and tool waits
        scaled by `time_scale` like the engines, so the run is the trace's simulation
        on the real runtime."""
        scale = self.config.time_scale
        programs = [trace_program(spec) for spec in specs]
        ids = [spec.program_id for spec in specs]
        _check_unique(ids)
        for p in programs:
            p.build()
        return self._run([_Launch(p, {}, pid, spec.arrival * scale)
                          for p, pid, spec in zip(programs, ids, specs)], progress)

    def validate(self, program: ProgramDef, inputs: Sequence[dict[str, Any]]) -> None:
        """Build and validate the program's graph for every input, and check the models
        its steps declare, without starting anything: an invalid program raises here
        (ProgramValidationError, ChoiceDeclarationError) before Ray starts."""
        for kwargs in inputs:
            graph = program.build(**kwargs)
            check_declared_models(graph, self.planning)
            check_priced(program, graph, self.config)

    @property
    def planning(self) -> PlanningSettings:
        """How runners plan steps that declare choices (from the config)."""
        cfg = self.config
        return PlanningSettings(
            planner=cfg.planner, min_success=cfg.admission_min_success, prices=cfg.prices,
            served_model=cfg.served_models()[0], stand_ins=cfg.stand_ins, gpu=cfg.gpu,
            tp=cfg.tp, pools=tuple(p.model_dump() for p in cfg.worker_pools()),
            time_scale=cfg.time_scale, seed=cfg.seed)

    def decisions(self) -> list[Decision]:
        """Every decision the core made so far, in order (`runtime.core.decisions`);
        empty unless the runtime records decisions (`record_decisions=True`)."""
        self._require_started()
        rows = ray.get(self._scheduler.decisions.remote(), timeout=60)
        return [getattr(records, kind)(*fields) for kind, fields in rows]

    def dispatch_log(self) -> list[Dispatch]:
        """Every (worker, request) the scheduler dispatched so far, in order; empty
        unless the runtime records decisions (`record_decisions=True`)."""
        return [d for d in self.decisions() if type(d) is Dispatch]

    def scheduler_counters(self) -> dict[str, int]:
        """The scheduler's counts so far: calls submitted, dispatched, completed, queued,
        in flight, stolen by idle workers, and sessions moved by those steals."""
        self._require_started()
        return ray.get(self._scheduler.summary.remote(), timeout=60)

    def check_integrity(self) -> None:
        """Every worker's KV accounting is consistent (raises otherwise)."""
        self._ask_workers("check_integrity")

    def _ask_workers(self, method: str) -> list[Any]:
        """Call `method` on every worker still in routing, in worker order (a worker
        that died or hung left it: the scheduler's summary names it in lost_workers).
        None before the cluster started (a resume with nothing left to run)."""
        if self._scheduler is None:
            return []
        try:
            lost = ray.get(self._scheduler.summary.remote(), timeout=60)["lost_workers"]
        except RayActorError:  # the scheduler is gone: ask every worker that answers
            lost = {}
        live = [w for i, w in enumerate(self._workers) if f"w{i}" not in lost]
        refs = [getattr(w, method).remote() for w in live]
        out = []
        for ref in refs:
            try:
                out.append(ray.get(ref, timeout=60))
            except RayActorError:
                continue
        return out

    def _run(self, launches: list[_Launch], progress: Progress | None) -> RunReport:
        """Journaled outcomes first (before Ray starts: a bad resume fails fast), then
        the rest on the cluster."""
        journal = self._open_journal(len(launches))
        done: list[ProgramResult] = []
        if journal is not None:
            done, todo = journal.plan([launch.program_id for launch in launches],
                                      [launch.kwargs for launch in launches])
            launches = [launches[i] for i in todo]
        if launches:  # a resume of a run that had finished needs no cluster
            self._require_started()
        for i, result in enumerate(done):
            if progress is not None:
                progress(i + 1, len(done) + len(launches), result)
        start = time.time()
        with StopSignals() as stop:
            results, unfinished = self._run_launches(launches, progress, stop, len(done))
        self._write_spans(tracing.drain())
        wall = time.time() - start
        workers = self._ask_workers("stats")
        report = RunReport(results=sorted(done + results, key=lambda r: r.program_id),
                           wall_time_s=wall, trace_path=self.run_dir / "trace.jsonl",
                           time_scale=self.config.time_scale, workers=workers,
                           cluster=self._cluster, run_id=self.run_id,
                           journal=journal.store.url if journal is not None else None,
                           unfinished=unfinished,
                           stopped_by=SIGNAL_NAMES.get(stop.signum) if stop.signum else None)
        if stop.signum:
            raise RunInterrupted(report, stop.signum)
        return report

    def _run_launches(self, launches: list[_Launch], progress: Progress | None,
                      stop: StopSignals, done: int) -> tuple[list[ProgramResult], list[str]]:
        """Start each launch at its offset while fewer than `max_concurrent_programs`
        run; collect results as they finish, until all have or a stop signal comes.
        Returns the results and the ids of programs that did not finish (stopped)."""
        limit = self.config.max_concurrent_programs
        waiting = deque(sorted(launches, key=lambda launch: launch.start_at))  # stable
        pending: dict[Any, tuple] = {}  # ref -> (program id, span, runner index, start)
        results: list[ProgramResult] = []
        refs: dict[int, Any] = {}  # each program in Ray's object store once
        total = done + len(launches)
        start = time.time()
        while (waiting or pending) and not stop.signum:
            while waiting and len(pending) < limit and waiting[0].start_at <= (
                    time.time() - start):
                ref, entry = self._launch(waiting.popleft(), refs)
                pending[ref] = entry
            timeout = _POLL_S  # wait for a result, until the next start is due, or a poll
            if waiting and len(pending) < limit:
                timeout = min(_POLL_S, max(0.0, waiting[0].start_at - (time.time() - start)))
            if not pending:
                time.sleep(timeout)
                continue
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
            for ref in ready:
                entry = pending.pop(ref)
                result = self._collect(ref, entry)
                self._close(entry[1], result)
                results.append(result)
                if progress is not None:
                    progress(done + len(results), total, result)
        for program_id, span, *_ in pending.values():
            span.set_attribute("agentrt.program.status", "interrupted")
            span.end()
        unfinished = [entry[0] for entry in pending.values()] + [w.program_id for w in waiting]
        return sorted(results, key=lambda r: r.program_id), sorted(unfinished)

    def _collect(self, ref: Any, entry: tuple) -> ProgramResult:
        """A launched program's result; a program whose runner died fails with the
        reason (the scheduler drops what it kept of it, the runner is replaced so later
        programs run), and the rest of the run goes on."""
        program_id, span, runner_index, arrival = entry
        try:
            return wire.decode(ray.get(ref))
        except RayTaskError as error:  # the runner raised outside the program's steps
            why = f"its program runner raised {str(error.cause or error).splitlines()[0]}"
        except RayActorError as error:
            self._replace_runner(runner_index)
            why = (f"its program runner died ({type(error).__name__}); see the Ray logs "
                   f"for why, and run it again")
        try:
            ray.get(self._scheduler.program_abandoned.remote(program_id), timeout=30)
        except Exception:  # the scheduler is gone too: nothing left to tidy
            pass
        return ProgramResult(
            program_id=program_id, name=span.name.removeprefix("invoke_workflow "),
            tenant=span.attributes.get("agentrt.tenant", "default"), status=FAILED, arrival=arrival, finished_at=time.time(),
            error=why)

    def _replace_runner(self, index: int) -> None:
        """A fresh runner in the dead one's place (once per death)."""
        runner = self._runners[index]
        try:
            ray.get(runner.leftover_spans.remote(), timeout=5)
            return  # still alive: replaced already
        except Exception:
            pass
        cfg = self.config
        prices = {m: (p.input_per_m, p.output_per_m) for m, p in cfg.prices.items()}
        self._runners[index] = ProgramRunner.remote(
            self._scheduler, cfg.served_models()[0], list(self.planning.served),
            cfg.block_size, prices, self.planning.to_plain(), self.clock)

    def _launch(self, launch: _Launch, refs: dict[int, Any]):
        program, program_id = launch.program, launch.program_id
        if id(program) not in refs:
            refs[id(program)] = ray.put(program)
        index = self._launched % len(self._runners)
        runner = self._runners[index]
        self._launched += 1
        links, resumed = self._journal.links(program_id) if self._journal else ([], {})
        span = tracing.tracer().start_span(f"invoke_workflow {program.name}", links=links)
        span.set_attributes({tracing.OPERATION: "invoke_workflow",
                             tracing.WORKFLOW_NAME: program.name,
                             "agentrt.program.id": program_id,
                             "agentrt.tenant": program.options.tenant, **resumed})
        journal = None
        if self._journal is not None:
            journal = self._journal.started(program_id, program.name, launch.kwargs, span)
        carrier = tracing.inject(otel.set_span_in_context(span))
        arrival = time.time()
        ref = runner.run_program.remote(refs[id(program)], (), launch.kwargs, program_id,
                                        arrival, carrier, journal=journal)
        return ref, (program_id, span, index, arrival)

    # -- journal -------------------------------------------------------------------
    def _adopt(self, run_id: str) -> None:
        """Make this runtime resume `run_id` (before it started another run)."""
        if run_id != self.run_id and self._trace_writer is not None:
            raise ResumeError(f"resume={run_id!r}, but this runtime already runs "
                              f"{self.run_id!r}; resume with a new Runtime (or "
                              f"Runtime(config, run_id={run_id!r}))")
        self.run_id, self._resume = run_id, True

    def journaled_meta(self) -> dict[str, Any]:
        """What the journal recorded when this run first started (run_dir, programs,
        started_at). Raises ResumeError when the journal does not hold the run."""
        url = self.journal_url
        if url is None:
            raise ResumeError(f"run {self.run_id!r}: journal_url is 'off', nothing to read")
        journal = RunJournal.open(url, self.run_id, {}, resume=True)
        try:
            return journal.store.run_meta(self.run_id) or {}
        finally:
            journal.close()

    def _open_journal(self, programs: int) -> RunJournal | None:
        url = self.journal_url
        if url is None:
            if self._resume:
                raise ResumeError(f"cannot resume run {self.run_id!r} with journal_url='off'; "
                                  "resume with the journal the run wrote")
            return None
        if self._journal is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            meta = {"run_id": self.run_id, "run_dir": str(self.run_dir), "programs": programs,
                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            self._journal = RunJournal.open(url, self.run_id, meta, resume=self._resume)
        return self._journal

    def _program_ids(self, program: ProgramDef, n: int,
                     given: Sequence[str] | None) -> list[str]:
        if given is None:
            return [f"{program.name}-{self._launched + i:05d}" for i in range(n)]
        ids = list(given)
        if len(ids) != n:
            raise ValueError(f"program_ids has {len(ids)} ids for {n} inputs; give one "
                             "per input")
        _check_unique(ids)
        return ids

    def _require_started(self) -> None:
        """Start Ray and the actors on first use."""
        if self._scheduler is None:
            self.start()

    def _close(self, span: otel.Span, result: ProgramResult) -> None:
        span.set_attribute("agentrt.program.status", result.status)
        if not result.ok:
            span.set_status(otel.Status(otel.StatusCode.ERROR, result.error or result.status))
        span.end(end_time=int(result.finished_at * 1e9))
        self._write_spans(tracing.drain() + result.spans)
        result.spans = []

    def _write_spans(self, rows: list[dict[str, Any]]) -> None:
        if rows and self._trace_writer is not None:
            self._trace_writer.write(rows)

    # -- Ray -----------------------------------------------------------------------
    def _connect(self) -> None:
        cfg = self.config
        workers = cfg.describe_workers()
        address = os.environ.get("RAY_ADDRESS")
        if ray.is_initialized():
            self._cluster = f"attached to the running Ray instance; {workers}"
        elif address:
            ray.init(address=address, log_to_driver=True)
            self._cluster = f"attached to Ray at {address}; {workers}"
        else:
            ray.init(address="local", num_cpus=max(2, os.cpu_count() or 2),
                     include_dashboard=False,
                     resources={cfg.sim_gpu_resource: cfg.total_workers},
                     log_to_driver=True)
            self._started_ray = True
            self._cluster = f"local Ray; {workers}"

    def _placement(self) -> dict[str, Any]:
        cfg = self.config
        have = ray.cluster_resources().get(cfg.sim_gpu_resource, 0)
        if have >= cfg.total_workers:
            return {"resources": {cfg.sim_gpu_resource: 1}}
        warnings.warn(
            f"the Ray cluster offers {have:g} '{cfg.sim_gpu_resource}' resources for "
            f"{cfg.total_workers} simulated workers; placing them without it. Start nodes with "
            f"--resources='{{\"{cfg.sim_gpu_resource}\": N}}' to place them by resource.")
        self._cluster += f" (placed without '{cfg.sim_gpu_resource}' resources)"
        return {}


def _key_environment(pool) -> dict[str, Any]:
    """The API keys a pool's servers need, from the driver's environment into its worker
    actors' (by the variable names the configuration gives; the keys themselves never
    appear in a configuration, log or trace). A name the driver's environment lacks
    is left out: the worker then fails naming the variable to set."""
    names = {e.get("api_key_env") for e in pool.endpoints} - {None}
    env = {n: os.environ[n] for n in sorted(names) if os.environ.get(n)}
    return {"runtime_env": {"env_vars": env}} if env else {}


def _check_unique(ids: Sequence[str]) -> None:
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"program ids must be unique; repeated: {repeated}")
    if not all(isinstance(i, str) and i for i in ids):
        raise ValueError("program ids must be non-empty strings")


def _check_arrivals(arrivals: Sequence[float] | None, n: int) -> list[float]:
    if arrivals is None:
        return [0.0] * n
    starts = [float(a) for a in arrivals]
    if len(starts) != n or any(a < 0 for a in starts):
        raise ValueError(f"arrivals must be {n} offsets >= 0 (one per input), got "
                         f"{list(arrivals)}")
    return starts


def run(program: ProgramDef, inputs: Sequence[dict[str, Any]] | dict[str, Any], *,
        responder: Responder | None = None, progress: Progress | None = None,
        **config: Any) -> RunReport:
    """Start a runtime, run the program on the inputs, stop. Config keys are
    `RuntimeConfig` fields."""
    with Runtime(RuntimeConfig(**config), responder=responder) as rt:
        return rt.run(program, inputs, progress=progress)

