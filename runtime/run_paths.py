"""Where a run's files go: `<trace_dir>/<run id>/` holds trace.jsonl, journal.sqlite
(the default journal) and results.jsonl, always as absolute paths.

A relative `trace_dir` ("runs", the default) is resolved once, on the driver, against:

1. `AGENTRT_RUN_ROOT` when set (an absolute folder). This is how a `ray job submit`
   keeps its runs where it was submitted from: `--runtime-env-json
   '{"env_vars": {"AGENTRT_RUN_ROOT": "'$PWD'"}}'`.
2. Inside a Ray job without it: the home folder's `agentrt/` (`~/agentrt/runs/...`). A
   job's working folder is a copy Ray unpacks under its temporary session folder,
   deleted by `ray stop`; a run written there would vanish with it.
3. Otherwise the current folder, as a user expects of a relative path.
"""
from __future__ import annotations

import os
from pathlib import Path

RUN_ROOT_ENV = "AGENTRT_RUN_ROOT"
# Set by Ray in the environment of a job's entrypoint (ray job submit).
_RAY_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def in_ray_job() -> bool:
    """Whether this process is the entrypoint of a Ray job (`ray job submit`)."""
    return _RAY_JOB_ENV in os.environ


def resolve_runs_dir(trace_dir: str | Path) -> Path:
    """`trace_dir` made absolute as the module docstring says. Raises ValueError when
    AGENTRT_RUN_ROOT is set to a relative path."""
    path = Path(trace_dir).expanduser()
    if path.is_absolute():
        return path
    root = os.environ.get(RUN_ROOT_ENV)
    if root:
        base = Path(root).expanduser()
        if not base.is_absolute():
            raise ValueError(f"{RUN_ROOT_ENV}={root!r} must be an absolute folder (it "
                             "anchors relative trace_dir paths); e.g. the folder a Ray "
                             "job was submitted from, $PWD")
        return base / path
    if in_ray_job():
        return Path.home() / "agentrt" / path
    return Path.cwd() / path


def run_dir(runs_dir: Path, run_id: str) -> Path:
    return runs_dir / run_id
