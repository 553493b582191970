"""The workload of the resume tests (tests/e2e/test_resume.py): four deterministic steps
per program, on the simulated model, with a side-effecting tool and a gate.

    draft (LLM) ─▶ publish (send_report: side effects) ─▶ wait_gate ─▶ summary (LLM)

Every step body appends "<program> <step>" to $RESUME_TEST_DIR/steps.log when it runs,
and send_report appends "<program>" to effects.log when it really runs, so a test
counts real executions. `wait_gate` waits until the file `open` (all programs) or
`open-<program>` exists in that folder, which lets a test hold programs mid-run and
kill or stop the driver at a chosen moment.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import agentrt
from agentrt.runtime.workload import Workload

DIR = Path(os.environ.get("RESUME_TEST_DIR", "."))


def _executed(program: str, step: str) -> None:
    with open(DIR / "steps.log", "a") as f:
        f.write(f"{program} {step}\n")


@agentrt.tool(side_effects=True, executor="inline")
def send_report(program: str, text: str) -> str:
    """Send the report (a real effect: one line per execution)."""
    with open(DIR / "effects.log", "a") as f:
        f.write(f"{program}\n")
    return f"sent {len(text)} characters"


@agentrt.step(max_tokens=48)
async def draft(ctx, topic: str) -> dict:
    _executed(ctx.program_id, "draft")
    reply = await ctx.chat([{"role": "user", "content": f"Draft a note on {topic}."}])
    return {"draft": reply.text, "tokens": reply.usage.completion_tokens}


@agentrt.step(tools=[send_report])
async def publish(ctx, draft: dict) -> dict:
    _executed(ctx.program_id, "publish")
    result = await ctx.call_tool({"id": "publish-1", "type": "function", "function": {
        "name": "send_report",
        "arguments": {"program": ctx.program_id, "text": draft["draft"]}}})
    return {"receipt": result.output, "ok": result.ok}


@agentrt.step
async def wait_gate(ctx, receipt: dict) -> dict:
    _executed(ctx.program_id, "wait_gate")
    (DIR / "reached").mkdir(exist_ok=True)
    (DIR / "reached" / ctx.program_id).touch()
    while not ((DIR / "open").exists() or (DIR / f"open-{ctx.program_id}").exists()):
        await asyncio.sleep(0.05)
    return {"receipt": receipt["receipt"]}


@agentrt.step(max_tokens=32)
async def summary(ctx, draft: dict, gate: dict) -> dict:
    _executed(ctx.program_id, "summary")
    reply = await ctx.chat([{"role": "user", "content": f"Summarise: {draft['draft']}"}])
    return {"summary": reply.text, "receipt": gate["receipt"], "draft": draft["draft"]}


@agentrt.program(name="report", deadline_s=300)
def report(topic: str):
    first = draft(topic)
    return summary(first, wait_gate(publish(first)))


workload = Workload(program=report, inputs=lambda i: {"topic": f"topic {i}"}, programs=6,
                    config={"workers": 2, "time_scale": 0.05, "runners": 1,
                            "max_concurrent_programs": 4})
