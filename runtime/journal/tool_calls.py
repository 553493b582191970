"""Tool calls under the journal: each call's result is journaled under its idempotency
key, a call an earlier attempt journaled returns that result, and a side-effecting
call never runs twice for one key.

For a tool declared `@tool(side_effects=True)`:

    journaled done, same tool and arguments ─▶ the journaled result (the tool does not run)
    journaled done, other tool or arguments ─▶ JournalDivergenceError (the step fails)
    started, never done (a crash between run and record):
        idempotent=True ─▶ run it again
        otherwise       ─▶ ToolInDoubtError naming the key (the step fails; the
                           program's outcome is not final, so once the operator has
                           cleared the marker, `--resume` runs it again)
    not journaled ─▶ write the in-flight marker (durable), run, journal the result

The marker is written with an atomic insert, so two attempts that run at once (an
old runner still alive beside a resumed one) cannot both run the call: the second one
finds the first one's marker. This is the "activity" discipline of durable-execution
engines (Temporal records an activity's scheduling and its result as separate history
events, https://docs.temporal.io/activities; a crash between them leaves the outcome
unknown, and only an idempotent activity may simply be retried).

Other tools are journaled after they ran (no marker: running one twice is harmless) and
return their journaled result when the same key, tool and arguments come again.
Calls rejected before running (unknown tool, bad arguments) are not journaled.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agentrt.runtime.journal import codec
from agentrt.runtime.journal.errors import JournalDivergenceError, ToolInDoubtError
from agentrt.runtime.journal.program_journal import ProgramJournal
from agentrt.runtime.journal.records import ToolKey, ToolRecord, arguments_digest
from agentrt.toolmgr import ToolResult
from agentrt.toolmgr.spec import ToolSpec

REPLAYED = "journal"
"""The `executor` of a ToolResult that came from the journal (the tool did not run)."""


async def journaled_call(journal: ProgramJournal | None, key: ToolKey, name: str,
                         arguments: dict[str, Any] | str, spec: ToolSpec | None,
                         run: Callable[[], Awaitable[ToolResult]]) -> ToolResult:
    """The result of the call `key` of tool `name` (`spec`: None for a tool the
    registry does not know): from the journal, or `run()`. Raises ToolInDoubtError and
    JournalDivergenceError as the module docstring says, and JournalUnavailableError
    when a side-effecting call's marker cannot be written (then it does not run)."""
    if journal is None:
        return await run()
    digest = arguments_digest(name, arguments)
    earlier = journal.calls.get(key)
    if earlier is not None and earlier.done and earlier.digest == digest:
        return _replay(journal, key, earlier)
    if spec is None or not spec.side_effects:
        result = await run()
        if result.executor:
            await _record(journal, key, name, digest, result)
        return result
    found = await journal.journal.call("claim_tool", journal.run_id, key, name, digest)
    if found is not None:
        if found.done:
            if found.digest != digest:
                raise JournalDivergenceError(journal.run_id, key,
                                             f"a call of {found.tool!r}",
                                             f"{name!r} with other arguments"
                                             if found.tool == name else f"{name!r}")
            return _replay(journal, key, found)
        if not spec.idempotent:
            raise ToolInDoubtError(journal.run_id, key, name)
    result = await run()
    await _record(journal, key, name, digest, result)
    return result


async def _record(journal: ProgramJournal, key: ToolKey, name: str, digest: str,
                  result: ToolResult) -> None:
    await journal.journal.call("record_tool", journal.run_id, key, name, digest,
                               _pack(result))


def _pack(result: ToolResult) -> bytes:
    fields = {"ok": result.ok, "error": result.error, "error_type": result.error_type,
              "duration_s": result.duration_s, "truncated": result.truncated,
              "output_bytes": result.output_bytes}
    try:
        return codec.pack({**fields, "output": result.output})
    except codec.NotJournalable:
        # The model sees a tool's output as text anyway (ToolResult.content).
        return codec.pack({**fields, "output": repr(result.output)})


def _replay(journal: ProgramJournal, key: ToolKey, record: ToolRecord) -> ToolResult:
    fields = codec.unpack(record.result)
    journal.tool_calls_replayed += 1
    # duration 0: the caller waited for nothing (the first run's duration is journaled).
    return ToolResult(key.call_id, record.tool, fields["ok"], fields["output"],
                      fields["error"], 0.0, 0.0,
                      error_type=fields["error_type"], executor=REPLAYED,
                      truncated=fields["truncated"], output_bytes=fields["output_bytes"])
