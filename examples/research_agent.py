"""A multi-turn research agent whose tools do real work on this repository.

Each program studies one class of agentrt: `investigate` converses with the model for
seven turns, and every turn but the last calls a tool that really runs (a regex scan
of the source tree, a file read, a `python -c` subprocess that imports and inspects
the module, a `py_compile` subprocess), so tool durations are real and differ from
tool to tool and from call to call. `write_report` then summarises the findings.

While a tool runs, the worker that holds the session's KV decides how long to keep it
(the run's TTL policy, `--ttl`, agentrt's by default) from the tool durations the
runners measured so far; each decision is a `kv_pin` event on the chat span whose
reply called the tool. The script prints the run summary, the prefix hit rate and the
pin events:

    python examples/research_agent.py --programs 8 --workers 2
    python examples/research_agent.py --programs 8 --workers 2 --ttl none
    agentrt run examples/research_agent.py --programs 8      # summary only

In simulation the model's decisions come from `decide`, a scripted responder that
reads the conversation; against a real model the same program runs unchanged.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import agentrt
from agentrt.runtime.cli import add_run_options
from agentrt.runtime.engines.simulated.responder import ScriptedResponder
from agentrt.runtime.workload import Workload

PACKAGES = ("kvcache", "toolmgr", "programs", "runtime")
TOPICS = ("PinSet", "DurationModel", "BlockPool", "TokenChain", "KVCacheManager",
          "AgentRTTTL", "PerfModel", "ToolManager", "EmpiricalCDF")


def repo_root() -> Path:
    """The folder holding agentrt's packages, wherever this code runs."""
    from agentrt import kvcache
    return Path(kvcache.__file__).resolve().parent.parent


def _inside(path: str) -> Path:
    root = repo_root()
    target = (root / path).resolve()
    if root not in target.parents or target.parts[len(root.parts)] not in PACKAGES:
        raise ValueError(f"path {path!r} is not inside agentrt's packages {PACKAGES}")
    return target


# -- tools: they really scan, read and run ------------------------------------------
@agentrt.tool(duration_prior_s=0.05)
def grep_repo(pattern: str, max_hits: int = 4) -> dict:
    """Search agentrt's Python sources for lines matching a regular expression."""
    root, regex = repo_root(), re.compile(pattern)
    hits, scanned = [], 0
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            scanned += 1
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{path.relative_to(root)}:{number}: {line.strip()[:60]}")
    return {"files_scanned": scanned, "hits": len(hits), "first": hits[:max_hits]}


@agentrt.tool(duration_prior_s=0.01)
def count_lines(path: str) -> dict:
    """Count the lines, functions and classes of a source file."""
    text = _inside(path).read_text()
    return {"lines": text.count("\n"), "functions": len(re.findall(r"^\s*def ", text, re.M)),
            "classes": len(re.findall(r"^class ", text, re.M))}


@agentrt.tool(timeout_s=60, duration_prior_s=0.3)
def run_python(code: str) -> dict:
    """Run a Python snippet in a subprocess at the repository root."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo_root(), capture_output=True,
                          text=True, timeout=50)
    return {"returncode": proc.returncode, "stdout": proc.stdout[-160:],
            "stderr": proc.stderr[-160:]}


@agentrt.tool(timeout_s=60, duration_prior_s=0.05)
def compile_check(path: str) -> dict:
    """Byte-compile a source file in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "py_compile", str(_inside(path))],
                          capture_output=True, text=True, timeout=50)
    return {"compiles": proc.returncode == 0}


# -- steps and the program ------------------------------------------------------------
SYSTEM = " ".join([
    "You are a research assistant who studies a Python code base and reports on it.",
    "You answer questions about one class at a time: where it is defined, how large",
    "it is, which methods it offers, who uses it, and whether its module compiles and",
    "imports quickly. Work with the tools, one call per turn, and read every result",
    "before you choose the next call. Prefer precise evidence to guesses: cite file",
    "paths and line numbers as the tools report them, quote numbers exactly, and say",
    "so when a tool fails instead of inventing its output.",
    "Guidelines for searching: start from the class definition, found with a regular",
    "expression anchored at the start of the line; then count the lines, functions and",
    "classes of its file; then import the module in a fresh interpreter and inspect",
    "the class; then search for the places that construct or mention it; then check",
    "that the file byte-compiles; last, time the module's import in a fresh",
    "interpreter, since import time is what every worker process pays at start.",
    "Guidelines for reporting: one short paragraph per question, in the order above,",
    "then a one-line verdict on how central the class is to the code base, judged by",
    "the number of places that use it. Keep the tone neutral and technical. Do not",
    "speculate about intent, history or authorship; describe only what the code and",
    "the tools show. When two results disagree, run the check again rather than",
    "picking one. Never modify files: every tool you have only reads, scans or runs",
    "read-only snippets. Subprocesses run at the repository root with the same",
    "interpreter as the runtime, so imports resolve as they do for the runtime itself.",
] * 3)
REPORT_SYSTEM = "Summarise findings about a class of a code base in three sentences."


@agentrt.step(tools=[grep_repo, count_lines, run_python, compile_check], max_tokens=256)
async def investigate(ctx, topic: str) -> dict:
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": json.dumps({"topic": topic})}]
    for turn in range(1, 11):
        reply = await ctx.chat(messages)
        messages.append(reply.message)
        if not reply.tool_calls:
            return {"turns": turn, "answer": reply.text}
        for result in await ctx.call_tools(reply.tool_calls):
            messages.append(result.to_message())
    return {"turns": turn, "answer": "stopped after 10 turns"}


@agentrt.step(max_tokens=128)
async def write_report(ctx, topic: str, findings: dict) -> dict:
    reply = await ctx.chat([
        {"role": "system", "content": REPORT_SYSTEM},
        {"role": "user", "content": json.dumps({"topic": topic, "findings": findings})},
    ], tools=[])
    return {"topic": topic, "turns": findings["turns"], "report": reply.text}


@agentrt.program(deadline_s=600, budget_tokens=1_000_000)
def research_agent(topic: str):
    return write_report(topic, investigate(topic))


# -- the simulated model's decisions ----------------------------------------------------
PLAN = ("define", "size", "inspect", "usages", "compile", "import_time")


def decide(request, rng: random.Random) -> dict:
    """What a diligent model would do next: the PLAN's next step, read off the
    conversation (its tool results so far)."""
    messages = request.messages or []
    if not request.tools:
        return {"text": "The class is central: many modules construct and call it."}
    topic = json.loads(messages[1]["content"])["topic"]
    results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"
               and m["content"].startswith("{")]
    done = sum(m["role"] == "tool" for m in messages)
    if done >= len(PLAN):
        return {"text": f"{topic}: definition, size, methods, usages and imports checked."}
    path, module = _definition(results, topic)
    call = lambda name, **args: {"text": "", "tool_calls": [
        {"name": name, "arguments": args}]}
    step = PLAN[done]
    if step == "define":
        return call("grep_repo", pattern=rf"^class {topic}\b")
    if path is None:
        return {"text": f"No definition of {topic} was found."}
    if step == "size":
        return call("count_lines", path=path)
    if step == "inspect":
        return call("run_python", code=(
            f"import inspect, {module} as m; c = m.{topic}; "
            "print(len(inspect.getsource(c).splitlines()), "
            "sorted(n for n in vars(c) if not n.startswith('__'))[:8])"))
    if step == "usages":
        return call("grep_repo", pattern=rf"\b{topic}\(", max_hits=rng.choice((2, 3, 4)))
    if step == "compile":
        return call("compile_check", path=path)
    return call("run_python", code=(
        f"import time; t = time.perf_counter(); import {module}; "
        "print(round(time.perf_counter() - t, 4))"))


def _definition(results: list[dict], topic: str) -> tuple[str | None, str | None]:
    """The file defining `topic` and its module, from the first search's result."""
    for line in (results[0].get("first", []) if results else []):
        path = line.split(":", 1)[0]
        return path, path.removesuffix(".py").replace("/", ".")
    return None, None


workload = Workload(
    program=research_agent,
    inputs=lambda i: {"topic": TOPICS[i % len(TOPICS)]},
    responder=ScriptedResponder(decide),
    programs=8,
    # A tool's own durations predict it after a few calls (the default is 100).
    config={"workers": 2, "duration_min_samples": 4},
)


# -- running it and reading the pins back -------------------------------------------
@dataclass
class PinEvents:
    """The `kv_pin` span events of a run's trace."""

    events: list[dict] = field(default_factory=list)

    @classmethod
    def read(cls, trace_path: Path) -> "PinEvents":
        rows = (json.loads(line) for line in Path(trace_path).read_text().splitlines())
        return cls([{**e["attributes"], "span": row["name"], "time_ns": e["time_ns"]}
                    for row in rows for e in row["events"] if e["name"] == "kv_pin"])

    def by_action(self) -> dict[str, int]:
        return dict(sorted(Counter(e["action"] for e in self.events).items()))

    def by_source(self) -> dict[str, int]:
        return dict(sorted(Counter(e["duration_source"] for e in self.events).items()))


def run(programs: int, **config):
    """Run `programs` programs on the Ray runtime (config: RuntimeConfig fields over
    the workload's); returns the RunReport and its pin events."""
    from agentrt.runtime.cluster.driver import Runtime
    from agentrt.runtime.config import RuntimeConfig

    with Runtime(RuntimeConfig(**{**workload.config, **config}),
                 responder=workload.responder) as rt:
        report = rt.run(workload.program, workload.make_inputs(programs))
    return report, PinEvents.read(report.trace_path)


def hit_rate(report) -> float:
    totals = report.totals()
    return totals["cached_tokens"] / max(1.0, totals["prompt_tokens"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser)
    args = parser.parse_args(argv)
    keys = ("workers", "model", "gpu", "tp", "time_scale", "queue", "router", "ttl",
            "max_concurrent_programs", "seed", "trace_dir")
    config = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    report, pins = run(args.programs or workload.programs, **config)
    report.print()
    print(f"prefix hit rate {100 * hit_rate(report):.1f}%")
    print(f"kv_pin events   {len(pins.events)}  by action {pins.by_action()}  "
          f"by duration source {pins.by_source()}")
    if pins.events:
        print(f"last kv_pin     {json.dumps(pins.events[-1], sort_keys=True)}")
    return 0 if report.done == len(report.results) else 1


if __name__ == "__main__":
    sys.exit(main())
