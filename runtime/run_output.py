"""What `agentrt run` leaves behind and says at its end: results.jsonl in the run's
folder, and how to resume a run that did not finish."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Sequence

from agentrt.runtime.report import RunReport

RESULTS_FILE = "results.jsonl"


def write_results(run_dir: Path, report: RunReport) -> Path:
    """`<run dir>/results.jsonl`: one JSON object per program, in program id order:
    its status, outputs and error (and its attempt, and whether its result came from
    the journal). Programs a signal left unfinished have status "interrupted". The
    file is written whole to a temporary name and renamed, so a reader never sees half
    of it. Returns its path."""
    rows = [_row(r) for r in report.results]
    by = report.stopped_by or "a stop"
    rows += [{"program_id": pid, "status": "interrupted", "outputs": None,
              "error": f"stopped by {by} before it finished; resume the run to finish it",
              "failed_step": None, "attempt": None, "from_journal": False}
             for pid in report.unfinished]
    rows.sort(key=lambda row: row["program_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RESULTS_FILE
    partial = path.with_suffix(".jsonl.partial")
    with partial.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, default=repr) + "\n")
    partial.replace(path)
    return path


def _row(result: Any) -> dict[str, Any]:
    return {"program_id": result.program_id, "name": result.name, "status": result.status,
            "outputs": result.outputs, "error": result.error,
            "failed_step": result.failed_step, "attempt": result.attempt,
            "from_journal": result.from_journal}


def resume_command(command_line: Sequence[str], run_id: str) -> str:
    """The command that resumes `run_id`: the run's own command line with
    `--resume RUN_ID` (replacing one it had)."""
    words, skip = [], False
    for word in command_line:
        if skip:
            skip = False
        elif word == "--resume":
            skip = True
        elif not word.startswith("--resume="):
            words.append(word)
    return shlex.join([*words, "--resume", run_id])
