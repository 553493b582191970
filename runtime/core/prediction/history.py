"""The finished programs a size predictor learned from, kept in a file so that a
scheduler that restarts, or the next run, starts warm instead of cold.

A predictor that lives only in the scheduler's memory starts every run with nothing:
until enough programs finish it ranks by attained service alone, and in a closed loop
the first wave of programs (most of a run) is ordered before anything is learned. A
fleet's scheduler is never that cold. `SizeHistory` keeps what the predictors learn
from, one line per finished program, in JSON Lines::

    {"v": 1, "agent": "coder", "features": {"task_kind": "bugfix", "repo_tokens": 81920}, "calls": 37}

(`features` may be null). Keeping the observations rather than a predictor's fitted
state means any predictor (and a predictor whose settings changed) can learn from the
same file, and the file reads as data.

- **Loading** replays the last `keep` records. A missing file is an empty history
  (created, with its folder, on the first record). A last line cut off by an
  interrupted write (no newline, not JSON) is the one record such a crash can lose: it
  is dropped from the file with a warning. Any other bad line is an error naming the
  file, the line and the field, and what to do.
- **Appending** writes one line per finished program, flushed (not fsynced: a machine
  crash may lose the last few, a process crash none).
- **Compaction**: once the file holds `2 * keep` records, it is rewritten with the last
  `keep` (written to a temporary file and renamed over it, so a crash leaves the old
  file or the new one, never half of either).

Several schedulers may share a file: appends and compactions take an exclusive lock
(`flock` on `<file>.lock`), a compaction rewrites the file as it is on disk then (the
other writers' records included), and a writer whose file was replaced reopens it
before its next append. `flock` locks are local to a machine: on a network file
system, give each machine its own file.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

VERSION = 1


class SizeHistoryError(ValueError):
    """A size history file cannot be used (says which file, line and field)."""


@dataclass(frozen=True, slots=True)
class Finished:
    """One finished program: its agent, its features and its size in LLM calls."""

    agent: str
    features: Mapping[str, str | int | float] | None
    calls: int


class SizeHistory:
    """See the module doc. Raises SizeHistoryError when the file cannot be read or is
    not a size history, and ValueError on a bad `keep`."""

    def __init__(self, path: str | os.PathLike, keep: int = 2000) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.path = Path(path)
        self.keep = keep
        self._file = None
        self._lock = None
        self._inode: tuple[int, int] | None = None
        records, self._lines = self._load()
        self._records: deque[Finished] = deque(records, maxlen=keep)

    @property
    def records(self) -> list[Finished]:
        """The last `keep` records (loaded and appended), oldest first."""
        return list(self._records)

    def append(self, record: Finished) -> None:
        """Add one finished program (compacting the file when it has grown to twice
        `keep`). Raises SizeHistoryError if the file cannot be written."""
        line = _encode(record)
        try:
            with self._locked():
                f = self._open()
                f.write(line)
                f.flush()
                self._lines += 1
                if self._lines >= 2 * self.keep:
                    self._compact()
        except OSError as e:
            self._close_file()  # a line cut short stays the file's last until reloaded
            raise SizeHistoryError(
                f"size history {self.path}: cannot write ({e.strerror or e}); make its "
                "folder writable or point the queue's `history` option elsewhere") from e
        self._records.append(record)

    def close(self) -> None:
        self._close_file()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- reading ---------------------------------------------------------------------
    def _load(self) -> tuple[list[Finished], int]:
        try:
            try:
                os.stat(self.path)
            except FileNotFoundError:
                return [], 0
            with self._locked():  # not while another writer is halfway through a line
                return self._read()
        except OSError as e:
            raise SizeHistoryError(
                f"size history {self.path}: cannot read ({e.strerror or e}); fix its "
                "permissions or point the queue's `history` option elsewhere") from e

    def _read(self) -> tuple[list[Finished], int]:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        records = []
        for number, raw in enumerate(lines, 1):
            if raw.strip():
                records.append(_decode(raw, self.path, number))
        if tail.strip():
            try:
                records.append(_decode(tail, self.path, len(lines) + 1))
            except SizeHistoryError:
                # An append cut short by a crash: the only record that can be lost.
                log.warning("size history %s: dropping its last line, cut off by an "
                            "interrupted write (%d bytes)", self.path, len(tail))
                with open(self.path, "r+b") as f:
                    f.truncate(len(data) - len(tail))
            else:  # a whole record without its newline: end it, so appends start clean
                with open(self.path, "ab") as f:
                    f.write(b"\n")
        return records[-self.keep:], len(records)

    # -- writing ---------------------------------------------------------------------
    def _open(self):
        """The file for appending, reopened if another writer replaced it."""
        if self._file is not None:
            try:
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) != self._inode:
                    self._close_file()
            except FileNotFoundError:
                self._close_file()
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
            st = os.fstat(self._file.fileno())
            self._inode = (st.st_dev, st.st_ino)
        return self._file

    @contextlib.contextmanager
    def _locked(self):
        if self._lock is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path.with_name(self.path.name + ".lock"), "a")
        fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)

    def _compact(self) -> None:
        """Rewrite the file with its last `keep` lines, as they are on disk now (under
        the lock: another writer's records are kept too)."""
        lines = self.path.read_bytes().splitlines(keepends=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.writelines(lines[-self.keep:])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._close_file()
        self._lines = min(len(lines), self.keep)


def _encode(record: Finished) -> str:
    features = None if record.features is None else dict(record.features)
    return json.dumps({"v": VERSION, "agent": record.agent, "features": features,
                       "calls": record.calls}, separators=(",", ":"),
                      allow_nan=False) + "\n"


def _decode(raw: bytes, path: Path, number: int) -> Finished:
    def bad(problem: str) -> SizeHistoryError:
        return SizeHistoryError(
            f"size history {path}, line {number}: {problem}; fix or delete that line, or "
            "point the queue's `history` option at another file")

    try:
        obj: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad(f"not JSON ({e})") from None
    if not isinstance(obj, dict):
        raise bad(f"expected an object, got {type(obj).__name__}")
    if obj.get("v") != VERSION:
        raise bad(f"field 'v' is {obj.get('v')!r}, this agentrt reads version {VERSION} "
                  "(a newer agentrt wrote it?)")
    agent = obj.get("agent")
    if not isinstance(agent, str) or not agent:
        raise bad(f"field 'agent' must be a non-empty string, got {agent!r}")
    calls = obj.get("calls")
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        raise bad(f"field 'calls' must be an integer >= 1, got {calls!r}")
    features = obj.get("features")
    if features is not None:
        if not isinstance(features, dict):
            raise bad(f"field 'features' must be an object or null, got "
                      f"{type(features).__name__}")
        for name, value in features.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
                    isinstance(value, float) and not math.isfinite(value)):
                raise bad(f"field 'features.{name}' must be a string or a finite number, "
                          f"got {value!r}")
    extra = set(obj) - {"v", "agent", "features", "calls"}
    if extra:
        raise bad(f"unknown field(s) {sorted(extra)}")
    return Finished(agent, features, calls)
