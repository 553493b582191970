"""A multi-turn coding agent whose tools act on a real workspace.

Each program gets a fresh temporary workspace holding a task's unit tests. The `solve`
step converses with the model: the model writes `solution.py`, runs the tests, reads
its code back when they fail, rewrites it, and stops when they pass. `review` checks the
result independently; `cleanup` removes the workspace.

In simulation the model's decisions come from `decide`, a scripted responder that reads
the conversation and emits OpenAI-style tool calls (its first attempt is wrong half the
time, so some programs take the fix-up path). Against a real model the same program
runs unchanged; only the responder is unused.

    agentrt run examples/coding_agent.py --programs 32 --workers 4
    python examples/coding_agent.py --programs 8          # same, as a script
"""
from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import agentrt
from agentrt.runtime.cli import main_for
from agentrt.runtime.engines.simulated.responder import ScriptedResponder
from agentrt.runtime.workload import Workload

# -- tasks: a statement, unit tests, one wrong and one right implementation ---------
TASKS = {
    "fizzbuzz": {
        "statement": "Implement fizzbuzz(n) returning 'Fizz', 'Buzz', 'FizzBuzz' or str(n).",
        "tests": ("from solution import fizzbuzz\n"
                  "assert fizzbuzz(3) == 'Fizz'\nassert fizzbuzz(5) == 'Buzz'\n"
                  "assert fizzbuzz(15) == 'FizzBuzz'\nassert fizzbuzz(7) == '7'\n"),
        "wrong": ("def fizzbuzz(n):\n    if n % 3 == 0:\n        return 'Fizz'\n"
                  "    if n % 5 == 0:\n        return 'Buzz'\n    return str(n)\n"),
        "right": ("def fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n"
                  "    if n % 3 == 0:\n        return 'Fizz'\n    if n % 5 == 0:\n"
                  "        return 'Buzz'\n    return str(n)\n"),
    },
    "palindrome": {
        "statement": "Implement is_palindrome(s), ignoring case and non-letters.",
        "tests": ("from solution import is_palindrome\n"
                  "assert is_palindrome('A man, a plan, a canal: Panama')\n"
                  "assert not is_palindrome('agent')\n"),
        "wrong": "def is_palindrome(s):\n    return s == s[::-1]\n",
        "right": ("def is_palindrome(s):\n    t = [c.lower() for c in s if c.isalpha()]\n"
                  "    return t == t[::-1]\n"),
    },
    "word_count": {
        "statement": "Implement word_count(text) returning a dict of lower-cased word counts.",
        "tests": ("from solution import word_count\n"
                  "assert word_count('a A b') == {'a': 2, 'b': 1}\n"
                  "assert word_count('') == {}\n"),
        "wrong": ("def word_count(text):\n    out = {}\n    for w in text.split():\n"
                  "        out[w] = out.get(w, 0) + 1\n    return out\n"),
        "right": ("def word_count(text):\n    out = {}\n    for w in text.lower().split():\n"
                  "        out[w] = out.get(w, 0) + 1\n    return out\n"),
    },
}


# -- tools: they really act on the workspace ------------------------------------------
def _inside(workspace: str, path: str) -> Path:
    root = Path(workspace).resolve()
    target = (root / path).resolve()
    if root not in target.parents and target != root:
        raise ValueError(f"path {path!r} leaves the workspace")
    return target


@agentrt.tool(executor="inline", duration_prior_s=0.01)
def make_workspace(task_id: str) -> str:
    """Create a temporary workspace holding the task's tests."""
    root = Path(tempfile.mkdtemp(prefix=f"agentrt-{task_id}-"))
    (root / "test_solution.py").write_text(TASKS[task_id]["tests"])
    return str(root)


@agentrt.tool(duration_prior_s=0.01)
def write_file(workspace: str, path: str, content: str) -> str:
    """Write a file in the workspace."""
    target = _inside(workspace, path)
    target.write_text(content)
    return f"wrote {len(content)} bytes to {path}"


@agentrt.tool(duration_prior_s=0.01)
def read_file(workspace: str, path: str) -> str:
    """Read a file from the workspace."""
    return _inside(workspace, path).read_text()


@agentrt.tool(timeout_s=60, duration_prior_s=0.2)
def run_tests(workspace: str) -> dict:
    """Run the workspace's tests in a subprocess."""
    proc = subprocess.run([sys.executable, "test_solution.py"], cwd=workspace,
                          capture_output=True, text=True, timeout=50)
    return {"passed": proc.returncode == 0, "output": proc.stderr[-400:]}


@agentrt.tool(executor="inline")
def cleanup(workspace: str, verdict: dict) -> dict:
    """Remove the workspace; pass the verdict through."""
    shutil.rmtree(workspace, ignore_errors=True)
    return verdict


# -- steps and the program ------------------------------------------------------------
SYSTEM = ("You are a careful software engineer. Use the tools to write solution.py in the "
          "workspace, run the tests, and fix the code until they pass. Reply without tool "
          "calls when the tests pass.")


@agentrt.step(tools=[write_file, read_file, run_tests], max_tokens=512)
async def solve(ctx, task_id: str, workspace: str) -> dict:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": json.dumps({"task": task_id, "workspace": workspace,
                                                "statement": TASKS[task_id]["statement"]})},
    ]
    for turn in range(1, 13):
        reply = await ctx.chat(messages)
        messages.append(reply.message)
        if not reply.tool_calls:
            return {"turns": turn, "answer": reply.text}
        for result in await ctx.call_tools(reply.tool_calls):
            messages.append(result.to_message())
    return {"turns": turn, "answer": "gave up after 12 turns"}


@agentrt.step(tools=[run_tests], max_tokens=128)
async def review(ctx, workspace: str, attempt: dict) -> dict:
    check = await ctx.call_tool({"id": "review-tests", "type": "function", "function": {
        "name": "run_tests", "arguments": json.dumps({"workspace": workspace})}})
    passed = bool(check.ok and check.output["passed"])
    reply = await ctx.chat([
        {"role": "system", "content": "Summarise the outcome of a coding task in one line."},
        {"role": "user", "content": json.dumps({"attempt": attempt, "tests_pass": passed})},
    ], tools=[])
    return {"passed": passed, "turns": attempt["turns"], "summary": reply.text}


@agentrt.program(deadline_s=600, budget_tokens=200_000)
def coding_agent(task_id: str):
    workspace = make_workspace(task_id)
    attempt = solve(task_id, workspace)
    return cleanup(workspace, review(workspace, attempt))


# -- the simulated model's decisions ----------------------------------------------------
def decide(request, rng: random.Random) -> dict:
    """What a competent model would do next, read off the conversation."""
    messages = request.messages or []
    if not request.tools:
        return {"text": "Tests pass; the task is solved."}
    task = json.loads(messages[1]["content"])
    last = messages[-1]
    call = lambda name, **args: {"text": "", "tool_calls": [
        {"name": name, "arguments": {"workspace": task["workspace"], **args}}]}
    if last["role"] == "user":
        code = TASKS[task["task"]]["wrong" if rng.random() < 0.5 else "right"]
        return call("write_file", path="solution.py", content=code)
    previous = _last_tool_name(messages)
    if previous == "write_file":
        return call("run_tests")
    if previous == "run_tests":
        if json.loads(last["content"])["passed"]:
            return {"text": "All tests pass."}
        return call("read_file", path="solution.py")
    return call("write_file", path="solution.py", content=TASKS[task["task"]]["right"])


def _last_tool_name(messages: list[dict]) -> str:
    for message in reversed(messages):
        for tool_call in message.get("tool_calls") or []:
            return tool_call["function"]["name"]
    return ""


workload = Workload(
    program=coding_agent,
    inputs=lambda i: {"task_id": sorted(TASKS)[i % len(TASKS)]},
    responder=ScriptedResponder(decide),
    programs=8,
    config={"workers": 4},
)

if __name__ == "__main__":
    sys.exit(main_for(workload))
