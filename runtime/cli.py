"""`agentrt` command line.

    agentrt run FILE [--programs N] [--workers W] [--model M] [--time-scale S] ...
    agentrt run FILE ... --resume RUN_ID      (re-run only what the journal lacks)
    agentrt journal show RUN_ID | forget RUN_ID PROGRAM STEP TURN CALL_ID
    agentrt serve [--host H] [--port P] [--workers W] [--api-keys KEYS.json] ...
    agentrt bench ...
"""
from __future__ import annotations

import argparse
import sys
import time
import tomllib
from typing import Sequence

from pydantic import ValidationError

from agentrt.programs.errors import ChoiceDeclarationError, ProgramValidationError
from agentrt.runtime.bench.command import add_bench_options, run_bench_command
from agentrt.runtime.config import RuntimeConfig
from agentrt.runtime.config_errors import ConfigError, explain
from agentrt.runtime.interrupts import RunInterrupted
from agentrt.runtime.journal.command import add_journal_options, run_journal_command
from agentrt.runtime.journal.errors import JournalError
from agentrt.runtime.results import ProgramResult
from agentrt.runtime.run_output import resume_command, write_results
from agentrt.runtime.serve.command import add_serve_options, run_serve_command
from agentrt.runtime.workload import Workload, load_workload


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.command_line = ["agentrt", *argv]  # for the resume command
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentrt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the programs a workload file defines")
    run.add_argument("file", help="a Python file that defines one Workload")
    add_run_options(run)
    run.set_defaults(handler=_cmd_run)
    bench = sub.add_parser("bench", help="compare policies in the discrete-event simulator")
    add_bench_options(bench)
    bench.set_defaults(handler=run_bench_command)
    serve = sub.add_parser("serve", help="an OpenAI-compatible gateway in front of the "
                           "cluster (docs/gateway.md)")
    add_serve_options(serve)
    serve.set_defaults(handler=run_serve_command)
    journal = sub.add_parser("journal", help="what a run's journal holds; clear a tool "
                             "call in doubt (docs/journal.md)")
    add_journal_options(journal)
    journal.set_defaults(handler=run_journal_command)
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--programs", type=int, help="programs to run (default: the file's)")
    parser.add_argument("--workers", type=int, help="simulated GPU workers")
    parser.add_argument("--model", help="model the workers serve, e.g. llama-3.1-8b")
    parser.add_argument("--gpu", help="GPU the workers model: a100, h100, h200")
    parser.add_argument("--tp", type=int, help="tensor-parallel degree per worker")
    parser.add_argument("--time-scale", type=float,
                        help="wall seconds per simulated GPU second (default 1.0)")
    parser.add_argument("--queue", help="queue policy (program_fcfs, request_fcfs, plas, "
                                        "atlas, fair_share, gittins)")
    parser.add_argument("--router", help="routing policy (sticky, least_loaded, "
                                         "least_outstanding, round_robin, autellix, dualmap)")
    parser.add_argument("--stealing", action=argparse.BooleanOptionalAction, default=None,
                        help="idle workers steal queued calls from busy ones (on by "
                        "default; --no-stealing turns it off)")
    parser.add_argument("--steal-kv", choices=["recompute", "nvlink", "network"],
                        help="how a stolen session's KV reaches the thief: prefilled again "
                        "(recompute) or copied over a link (network, the default)")
    parser.add_argument("--host-tier", choices=["off", "on", "auto"],
                        help="a host-memory KV tier per worker (auto: where reloading "
                        "beats recomputing)")
    parser.add_argument("--ttl", help="KV retention across tool calls (agentrt, none, fixed, "
                                      "continuum, infercept, thunderagent)")
    parser.add_argument("--concurrency", type=int, dest="max_concurrent_programs",
                        help="programs in flight at once")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--trace-dir", help="where run folders (trace.jsonl, journal.sqlite, "
                        "results.jsonl) go; default runs/ (made absolute: see "
                        "docs/journal.md for Ray jobs and AGENTRT_RUN_ROOT)")
    parser.add_argument("--resume", metavar="RUN_ID", help="resume that run: programs it "
                        "finished are not run again, the others resume from their "
                        "journaled steps and tool calls")
    parser.add_argument("--journal-url", help="the run's journal: SQLite in the run folder "
                        "(default), sqlite:///abs/path.sqlite, postgresql://user@host/db "
                        "(a multi-node Ray cluster), or off")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--config", help="a TOML file of RuntimeConfig fields (pools, "
                        "prices, stand_ins, ...); the command line overrides it")
    engines = parser.add_argument_group("real models")
    engines.add_argument("--engine", choices=["simulated", "openai", "inline"],
                         help="simulated GPU workers (the default), OpenAI-compatible "
                         "servers (--base-url, one per replica), or inline workers that "
                         "answer at once (smoke runs)")
    engines.add_argument("--base-url", action="append", dest="base_urls", metavar="URL",
                         help="an OpenAI-compatible server replica, e.g. "
                         "http://127.0.0.1:8000/v1 (repeat for more replicas)")
    engines.add_argument("--served-model", help="the model name the servers serve "
                         "(vLLM's --served-model-name; default: --model)")
    engines.add_argument("--api-key-env", help="the environment variable holding the API "
                         "key (never the key itself)")
    engines.add_argument("--provider", help="what traces name the servers: vllm, sglang, "
                         "llama.cpp, openai, ...")
    engines.add_argument("--tokenizer", help="prompt token ids for prefix identity: "
                         "estimate (default), server (the server's /tokenize) or a model "
                         "folder with tokenizer.json")


_CONFIG_KEYS = ("workers", "model", "gpu", "tp", "time_scale", "queue", "router",
                "stealing", "host_tier", "ttl", "max_concurrent_programs", "seed",
                "trace_dir", "journal_url")


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        workload = load_workload(args.file)
    except (FileNotFoundError, ValueError) as exc:
        print(f"agentrt: {exc}", file=sys.stderr)
        return 2
    return run_workload(workload, args)


def run_workload(workload: Workload, args: argparse.Namespace) -> int:
    """Run a workload with command-line overrides; print progress and the summary, and
    write results.jsonl in the run's folder. Exit status 0 when every program
    succeeded, 1 otherwise, 2 on bad input (a bad option, an invalid program, a run
    that cannot be resumed: one line saying what and how to fix it, before anything
    starts), 130 / 143 when SIGINT / SIGTERM stopped the run (after a partial summary
    and the command that resumes it)."""
    from agentrt.runtime.cluster.driver import Runtime  # Ray import only when running

    try:
        config = run_config(workload, args)
    except ConfigError as exc:
        print(f"agentrt: {exc}", file=sys.stderr)
        return 2
    resume = getattr(args, "resume", None)
    runtime = Runtime(config, responder=workload.responder, run_id=resume)
    n = args.programs
    if n is None and resume is not None:
        try:  # a resumed run runs the programs it started with
            n = runtime.journaled_meta().get("programs")
        except JournalError as exc:
            print(f"agentrt: {exc}", file=sys.stderr)
            return 2
    n = n if n is not None else workload.programs
    if n < 1:
        print(f"agentrt: --programs must be at least 1, got {n}", file=sys.stderr)
        return 2
    inputs = workload.make_inputs(n)
    try:
        runtime.validate(workload.program, inputs)
    except (ProgramValidationError, ChoiceDeclarationError) as exc:
        print(f"agentrt: invalid program {workload.program.name!r}: {exc}", file=sys.stderr)
        return 2
    command_line = getattr(args, "command_line", None) or ["agentrt", "run", args.file]
    progress = None if args.quiet else ProgressBar(n)
    try:
        with runtime as rt:
            report = rt.run(workload.program, inputs, progress=progress, resume=resume)
    except JournalError as exc:  # ResumeError, an unreachable journal: before Ray ran anything
        _close(progress)
        print(f"agentrt: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as stop:
        _close(progress)
        stop.report.results_path = write_results(runtime.run_dir, stop.report)
        stop.report.print()
        print(f"\nresume with: {resume_command(command_line, runtime.run_id)}")
        return stop.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the run loop began
        _close(progress)
        print(f"\nagentrt: stopped at once by SIGINT; programs in flight were not "
              f"recorded as finished.\nresume with: "
              f"{resume_command(command_line, runtime.run_id)}", file=sys.stderr)
        return 130
    _close(progress)
    report.results_path = write_results(runtime.run_dir, report)
    report.print()
    return 0 if report.done == len(report.results) else 1


def _close(progress: "ProgressBar | None") -> None:
    if progress is not None:
        progress.close()


def run_config(workload: Workload, args: argparse.Namespace) -> RuntimeConfig:
    """The workload's configuration, then the --config file's, then the command line's
    overrides. Raises ConfigError naming each bad option, its value and the valid
    ones."""
    base = {**workload.config, **load_config_file(getattr(args, "config", None))}
    overrides = {k: getattr(args, k) for k in _CONFIG_KEYS if getattr(args, k, None) is not None}
    overrides.update(engine_pools(args, {**base, **overrides}))
    steal_kv = getattr(args, "steal_kv", None)
    if steal_kv is not None:
        merged = {**base, **overrides}
        if not merged.get("stealing", RuntimeConfig.model_fields["stealing"].default):
            raise ConfigError("--steal-kv sets how stealing moves KV, and stealing is off; "
                              "drop --no-stealing")
        options = dict(base.get("steal_options", {}))
        options.update({"kv_move": "recompute"} if steal_kv == "recompute"
                       else {"kv_move": "transfer", "link": steal_kv})
        overrides["steal_options"] = options
    try:
        return RuntimeConfig(**{**base, **overrides})
    except ValidationError as exc:
        raise ConfigError(explain(exc, flags=True)) from None


def load_config_file(path: str | None) -> dict:
    """RuntimeConfig fields from a TOML file ({} without one). Raises ConfigError for a
    missing or unreadable file."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--config {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path!r} is not valid TOML: {exc}") from None


def engine_pools(args: argparse.Namespace, config: dict) -> dict:
    """The `pools` the --engine options ask for ({} when they ask for nothing)."""
    engine, urls = getattr(args, "engine", None), getattr(args, "base_urls", None) or []
    if urls and engine is None:
        engine = "openai"
    if engine in (None, "simulated"):
        return {}
    model = config.get("model") or RuntimeConfig.model_fields["model"].default
    if engine == "inline":
        return {"pools": [{"model": model, "engine": "inline",
                           "workers": config.get("workers", 1)}]}
    if not urls:
        raise ConfigError("--engine openai needs --base-url URL, once per server replica "
                          "(e.g. --base-url http://127.0.0.1:8000/v1)")
    endpoint = {"model": getattr(args, "served_model", None) or model}
    for key in ("api_key_env", "provider"):
        if getattr(args, key, None) is not None:
            endpoint[key] = getattr(args, key)
    pool = {"model": model, "engine": "openai",
            "endpoints": [{"base_url": url, **endpoint} for url in urls]}
    if getattr(args, "tokenizer", None):
        pool["tokenizer"] = args.tokenizer
    return {"pools": [pool]}


def main_for(workload: Workload, argv: Sequence[str] | None = None) -> int:
    """Entry point for `python my_workload.py [options]` (and `ray job submit`)."""
    parser = argparse.ArgumentParser(description="run this workload on agentrt")
    add_run_options(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.file = sys.argv[0]
    args.command_line = ["python", sys.argv[0], *argv]
    return run_workload(workload, args)


class ProgressBar:
    """One line on stderr: done/total, failures, elapsed."""

    def __init__(self, total: int, width: int = 30) -> None:
        self.total, self.width, self.failed = total, width, 0
        self._start = time.monotonic()
        self._draw(0)

    def __call__(self, done: int, total: int, result: ProgramResult) -> None:
        self.failed += 0 if result.ok else 1
        self._draw(done)

    def _draw(self, done: int) -> None:
        filled = int(self.width * done / max(1, self.total))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self._start
        sys.stderr.write(f"\r[{bar}] {done}/{self.total} programs  "
                         f"{self.failed} failed  {elapsed:5.1f}s")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


if __name__ == "__main__":
    sys.exit(main())
