"""Stopping a run on SIGINT (Ctrl-C) or SIGTERM (what `ray job stop` sends) without a
traceback: the signal only sets a flag, which the driver's loop reads between waits
(at least once a second), stops launching, and returns what finished. A second SIGINT
raises KeyboardInterrupt at once, for a user who will not wait.

Handlers are installed only from the main thread (Python runs signal handlers there)
and restored on exit. They are installed after Ray starts, since `ray.init` installs a
SIGTERM handler of its own (it calls sys.exit).
"""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class RunInterrupted(Exception):
    """A run stopped by a signal. `report` is the partial RunReport (programs that
    finished, `unfinished` ids), `signum` the signal; `exit_code` is the shell's
    convention for a process ended by that signal (128 + signum: 130, 143)."""

    def __init__(self, report: Any, signum: int) -> None:
        super().__init__(f"run stopped by {SIGNAL_NAMES.get(signum, signum)}")
        self.report, self.signum = report, signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """`with StopSignals() as stop: ... if stop.signum: ...`"""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = self.signum or signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNAL_NAMES:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
