"""The driver's side of the journal for one run: which programs are already done,
which resume, what each attempt's runner is told, and how a resumed program's trace
links to its first attempt.

    journal = RunJournal.open(url, run_id, meta, resume=True)
    done, todo = journal.plan(launches)         # outcomes journaled: results, not launches
    links = journal.links(program_id)           # the first attempt's root span, if any
    spec = journal.started(program_id, name, inputs, span)   # -> the runner's journal spec

Contract: `open` with `resume=True` raises ResumeError for a run the journal does not
hold; `plan` raises ResumeError for a program whose journaled inputs differ from the
given ones (a resumed run runs the same programs on the same inputs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from opentelemetry import trace as otel

from agentrt.runtime import wire
from agentrt.runtime.journal import codec
from agentrt.runtime.journal.errors import ResumeError
from agentrt.runtime.journal.records import ProgramRecord
from agentrt.runtime.journal.store import JournalStore
from agentrt.runtime.journal.url import open_store
from agentrt.runtime.results import ProgramResult

FIRST_TRACE_ID = "agentrt.resume.first_trace_id"
ATTEMPT = "agentrt.program.attempt"


@dataclass(slots=True)
class RunJournal:
    store: JournalStore
    url: str
    run_id: str
    records: dict[str, ProgramRecord]

    @classmethod
    def open(cls, url: str, run_id: str, meta: dict[str, Any], *,
             resume: bool) -> RunJournal:
        store = open_store(url)
        try:
            if resume and store.run_meta(run_id) is None:
                raise ResumeError(f"run {run_id!r} is not in the journal {store.url}; resume "
                                  "a run with the journal_url (and trace_dir) it ran with")
            store.open_run(run_id, meta)
            return cls(store, url, run_id, store.programs(run_id))
        except BaseException:
            store.close()
            raise

    def plan(self, program_ids: Sequence[str], inputs: Sequence[dict[str, Any]]
             ) -> tuple[list[ProgramResult], list[int]]:
        """The journaled results of programs that are done, and the indexes of those
        to run (all of them on a new run)."""
        done, todo = [], []
        for index, (program_id, kwargs) in enumerate(zip(program_ids, inputs)):
            record = self.records.get(program_id)
            if record is None:
                todo.append(index)
                continue
            if _unpack_inputs(record.inputs) != _plain_inputs(kwargs):
                raise ResumeError(
                    f"program {program_id!r} of run {self.run_id!r} was journaled with inputs "
                    f"{_unpack_inputs(record.inputs)!r}, and the resume gives {kwargs!r}; "
                    "resume with the workload and --programs the run started with")
            if record.final and record.outcome is not None:
                result: ProgramResult = wire.decode(record.outcome)
                result.from_journal = True
                done.append(result)
            else:
                todo.append(index)
        return done, todo

    def links(self, program_id: str) -> tuple[list[otel.Link], dict[str, Any]]:
        """A resumed program's root span links to its first attempt's root span (span
        links: https://opentelemetry.io/docs/concepts/signals/traces/#span-links) and
        carries the first trace id and the attempt number as attributes."""
        record = self.records.get(program_id)
        if record is None or not record.first_trace_id:
            return [], {ATTEMPT: 1}
        context = otel.SpanContext(int(record.first_trace_id, 16),
                                   int(record.first_span_id or "0", 16), is_remote=True,
                                   trace_flags=otel.TraceFlags(otel.TraceFlags.SAMPLED))
        attributes = {FIRST_TRACE_ID: record.first_trace_id, ATTEMPT: record.attempts + 1}
        return [otel.Link(context, {"agentrt.link": "first_attempt"})], attributes

    def started(self, program_id: str, name: str, kwargs: dict[str, Any],
                span: otel.Span) -> dict[str, Any]:
        """Journal an attempt's start (its inputs, and its trace when it is the first);
        returns what its runner needs: {url, run_id, attempt}."""
        ctx = span.get_span_context()
        record = self.store.start_program(self.run_id, program_id, name,
                                          _pack_inputs(kwargs), f"{ctx.trace_id:032x}",
                                          f"{ctx.span_id:016x}")
        self.records[program_id] = record
        return {"url": self.url, "run_id": self.run_id, "attempt": record.attempts}

    def close(self) -> None:
        self.store.close()


def _plain_inputs(kwargs: dict[str, Any]) -> Any:
    return _unpack_inputs(_pack_inputs(kwargs))


def _pack_inputs(kwargs: dict[str, Any]) -> bytes:
    try:
        return codec.pack(kwargs)
    except codec.NotJournalable:  # inputs that are not data are compared by their repr
        return codec.pack({"__repr__": repr(kwargs)})


def _unpack_inputs(data: bytes) -> Any:
    return codec.unpack(data)
