"""`agentrt journal`: what a run's journal holds, and clearing a tool call in doubt.

    agentrt journal show RUN_ID [--trace-dir D] [--journal-url URL]
    agentrt journal forget RUN_ID PROGRAM STEP TURN CALL_ID [--trace-dir D] [--journal-url URL]

`forget` removes the in-flight marker of a side-effecting call whose result was never
journaled (ToolInDoubtError names it), after the operator checked that its effect did
not happen: the next `--resume` runs the call again. A call with a journaled result is
never removed.
"""
from __future__ import annotations

import argparse
import sys

from agentrt.runtime.journal.errors import JournalError
from agentrt.runtime.journal.records import ToolKey
from agentrt.runtime.journal.url import OFF, open_store, sqlite_url
from agentrt.runtime.run_paths import resolve_runs_dir


def add_journal_options(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="journal_command", required=True)
    show = sub.add_parser("show", help="programs, their status and calls in doubt")
    forget = sub.add_parser("forget", help="clear a side-effecting call's in-flight marker "
                            "so that resume runs it again")
    for p in (show, forget):
        p.add_argument("run_id")
        p.add_argument("--trace-dir", default="runs", help="the run's --trace-dir")
        p.add_argument("--journal-url", help="the run's --journal-url (default: SQLite in "
                       "the run's folder)")
    forget.add_argument("program_id")
    forget.add_argument("step_id")
    forget.add_argument("turn", type=int)
    forget.add_argument("call_id")


def run_journal_command(args: argparse.Namespace) -> int:
    url = args.journal_url or sqlite_url(
        resolve_runs_dir(args.trace_dir) / args.run_id / "journal.sqlite")
    if url == OFF:
        print("agentrt: --journal-url off has no journal to read", file=sys.stderr)
        return 2
    try:
        store = open_store(url)
    except JournalError as exc:
        print(f"agentrt: {exc}", file=sys.stderr)
        return 2
    try:
        if store.run_meta(args.run_id) is None:
            print(f"agentrt: run {args.run_id!r} is not in the journal {store.url}",
                  file=sys.stderr)
            return 2
        if args.journal_command == "forget":
            key = ToolKey(args.program_id, args.step_id, args.turn, args.call_id)
            if not store.forget_tool(args.run_id, key):
                print(f"agentrt: no call in doubt with key {key} in run {args.run_id!r}",
                      file=sys.stderr)
                return 1
            print(f"cleared {key}: the next --resume of {args.run_id} runs it again")
            return 0
        _show(store, args.run_id)
        return 0
    finally:
        store.close()


def _show(store, run_id: str) -> None:
    programs = store.programs(run_id)
    print(f"run {run_id}  journal {store.url}  {len(programs)} programs")
    for record in programs.values():
        status = (record.status or "running or stopped") + ("" if record.final or
                                                            record.status is None
                                                            else " (not final)")
        steps = len(store.steps(run_id, record.program_id))
        print(f"  {record.program_id}  {status}  attempts {record.attempts}  "
              f"steps journaled {steps}")
    doubt = store.in_doubt(run_id)
    for record in doubt:
        print(f"  in doubt: {record.tool} {record.key}")
