"""Code generation under a budget and a deadline, with unit tests as the verifier.

A task is a few functions in a dependency tree (CodeFlow-like: `variance` uses `mean`).
Each function is one planned step: it declares two candidate models with a prior
success probability per sample, up to 4 parallel samples, and a verifier tool that
really runs the function's unit tests on a sample, in a subprocess in a temporary
directory. The planner (MCPP by default) picks the model and the number of samples for
every attempt, the samples run as forks sharing the prompt's KV on one worker, every
verdict updates the planner's estimates, and a program it judges infeasible is rejected
at admission.

In simulation the model's code comes from `write_code`, a scripted responder: a sample
of Llama-3.1-8B is right 40% of the time and one of Llama-3.1-70B 80% (the steps tell the
planner 45% and 75%). The workers serve Llama-3.1-8B; Llama-3.1-70B is a stand-in that
runs there but is priced and planned as itself (RuntimeConfig.stand_ins).

    python examples/verified_codegen.py --programs 12 --workers 2
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import agentrt
from agentrt.runtime.engines.simulated.responder import ScriptedResponder

SMALL, LARGE = "llama-3.1-8b", "llama-3.1-70b"
TRUE_P = {SMALL: 0.40, LARGE: 0.80}  # hidden from the planner

# -- tasks: functions in dependency order, each with tests, a right and a wrong version --
FUNCTIONS = {
    "mean": {"deps": [], "tests": "assert mean([1, 2, 3]) == 2\nassert mean([5]) == 5\n",
             "right": "def mean(xs):\n    return sum(xs) / len(xs)\n",
             "wrong": "def mean(xs):\n    return sum(xs) // len(xs)\n"},
    "variance": {"deps": ["mean"],
                 "tests": "assert variance([1, 2, 3, 4]) == 1.25\nassert variance([2, 2]) == 0\n",
                 "right": ("def variance(xs):\n    m = mean(xs)\n"
                           "    return sum((x - m) ** 2 for x in xs) / len(xs)\n"),
                 "wrong": ("def variance(xs):\n    m = mean(xs)\n"
                           "    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)\n")},
    "stdev": {"deps": ["variance"],
              "tests": "assert abs(stdev([1, 2, 3, 4]) - 1.118033988) < 1e-6\n",
              "right": "def stdev(xs):\n    return variance(xs) ** 0.5\n",
              "wrong": "def stdev(xs):\n    return variance(xs) / 2\n"},
    "normalize": {"deps": [], "tests": "assert normalize('  Hello World ') == 'hello world'\n",
                  "right": "def normalize(s):\n    return s.strip().lower()\n",
                  "wrong": "def normalize(s):\n    return s.lower()\n"},
    "slugify": {"deps": ["normalize"],
                "tests": "assert slugify(' Hello, World ') == 'hello-world'\n",
                "right": ("import re\n\ndef slugify(s):\n"
                          "    return re.sub(r'[^a-z0-9]+', '-', normalize(s)).strip('-')\n"),
                "wrong": "def slugify(s):\n    return normalize(s).replace(' ', '-')\n"},
    "fizzbuzz": {"deps": [],
                 "tests": "assert [fizzbuzz(i) for i in (3, 5, 15, 7)] == "
                          "['Fizz', 'Buzz', 'FizzBuzz', '7']\n",
                 "right": ("def fizzbuzz(n):\n    return 'Fizz' * (n % 3 == 0) + "
                           "'Buzz' * (n % 5 == 0) or str(n)\n"),
                 "wrong": ("def fizzbuzz(n):\n    return 'Fizz' if n % 3 == 0 else "
                           "'Buzz' if n % 5 == 0 else str(n)\n")},
}
TASKS = {"stats": ["mean", "variance", "stdev"], "text": ["normalize", "slugify"],
         "fizzbuzz": ["fizzbuzz"]}
# A long shared instruction: the prompt the k forks of an attempt share on one worker.
GUIDE = "\n".join(f"Rule {i}: write plain, correct, dependency-free Python; reuse the "
                  "helpers you are given; answer with one fenced code block." for i in range(60))


# -- the verifier: it really runs the unit tests ---------------------------------------
def extract_code(text: str) -> str:
    match = re.search(r"```(?:python)?\n(.*?)```", text, re.S)
    return match.group(1) if match else text


@agentrt.tool(timeout_s=30, duration_prior_s=0.05)
def run_unit_tests(sample: str, function: str, helpers: list[str]) -> dict:
    """Run the function's unit tests on a sample, in a subprocess in a temporary dir."""
    with tempfile.TemporaryDirectory(prefix=f"agentrt-{function}-") as root:
        source = "\n\n".join([*helpers, extract_code(sample)])
        Path(root, "solution.py").write_text(source)
        Path(root, "test_solution.py").write_text(
            "from solution import *\n" + FUNCTIONS[function]["tests"])
        proc = subprocess.run([sys.executable, "test_solution.py"], cwd=root,
                              capture_output=True, text=True, timeout=20)
    return {"passed": proc.returncode == 0, "output": proc.stderr[-300:]}


# -- the planned step and the programs ---------------------------------------------------
@agentrt.step(candidates=[agentrt.Candidate(SMALL, p=0.45, output_tokens=60),
                          agentrt.Candidate(LARGE, p=0.75, output_tokens=60)],
              max_samples=4, verifier=run_unit_tests, max_tokens=256, prompt_tokens=1700)
async def implement(ctx, task: str, function: str, helpers: list[dict]) -> dict:
    codes = list(dict.fromkeys(code for h in helpers for code in h["source"]))
    messages = [{"role": "system", "content": GUIDE},
                {"role": "user", "content": json.dumps({"task": task, "function": function,
                                                        "helpers": codes})}]
    sample = await ctx.sample(messages, function=function, helpers=codes)
    code = extract_code(sample.text)
    return {"code": code, "source": [*codes, code], "model": sample.model,
            "k": ctx.plan.k, "attempts": sample.attempt + 1}


def codegen(name: str, budget_usd: float, deadline_s: float) -> agentrt.ProgramDef:
    """The program at one (budget, deadline): one planned step per function."""

    @agentrt.program(name=name, budget_usd=budget_usd, deadline_s=deadline_s)
    def program(task: str):
        done = {}
        for function in TASKS[task]:
            deps = [done[d] for d in FUNCTIONS[function]["deps"]]
            done[function] = implement(task, function, deps)
        return done

    return program


TIERS = [codegen("roomy", budget_usd=0.01, deadline_s=30.0),
         codegen("tight", budget_usd=0.0012, deadline_s=3.0),
         codegen("rushed", budget_usd=0.01, deadline_s=0.02)]


# -- the simulated model -------------------------------------------------------------------
def write_code(request, rng) -> dict:
    """A sample of `request.model`: the right function with its true probability."""
    function = json.loads(request.messages[-1]["content"])["function"]
    right = rng.random() < TRUE_P.get(request.model, 0.5)
    code = FUNCTIONS[function]["right" if right else "wrong"]
    return {"text": f"```python\n{code}```"}


# -- running and reporting -------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--planner", default="mcpp")
    parser.add_argument("--time-scale", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = agentrt.RuntimeConfig(
        workers=args.workers, model=SMALL, stand_ins={LARGE: SMALL}, planner=args.planner,
        time_scale=args.time_scale, seed=args.seed, runners=2)
    tasks = sorted(TASKS)
    with agentrt.Runtime(config, responder=ScriptedResponder(write_code)) as rt:
        results = []
        for t, tier in enumerate(TIERS):
            count = len(range(t, args.programs, len(TIERS)))
            inputs = [{"task": tasks[i % len(tasks)]} for i in range(count)]
            if inputs:
                results += rt.run(tier, inputs).results
    report(results)
    return 0


def report(results) -> None:
    budgets = {p.name: p.options.budget_usd for p in TIERS}
    print(f"{'program':<14} {'status':<16} {'spent / budget (USD)':<24} attempts "
          "(step: model x k -> passed)")
    for r in results:
        spend = f"{r.spent_usd:.6f} / {budgets[r.name]:.6f}"
        tries = ", ".join(f"{a['step']}: {a['model'].split('-')[-1]} x{a['k']} -> "
                          f"{a['passed']} ({a['seconds']:.2f} s)" for a in r.attempts)
        print(f"{r.program_id:<14} {r.status:<16} {spend:<24} {tries}")
    rejected = [r for r in results if r.status == "rejected"]
    for r in rejected:
        print(f"rejected {r.program_id}: estimated success {r.success_estimate:.1%}; "
              f"{r.error}")
    for r in results:
        if r.status not in ("succeeded", "rejected"):
            print(f"{r.status} {r.program_id} after {r.completion_time:.2f} s: {r.error}")
    forks = [c for r in results for a in r.attempts for c in a["cached_tokens"][1:]]
    counts = Counter(r.status for r in results)
    over = sum(r.spent_usd > budgets[r.name] for r in results)
    print(f"statuses: {dict(counts)}; programs over budget: {over}; "
          f"samples: {sum(a['k'] for r in results for a in r.attempts)}; forks reading "
          f"the prompt's KV: {sum(c > 0 for c in forks)} of {len(forks)}")


if __name__ == "__main__":
    sys.exit(main())
