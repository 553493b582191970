"""The ``subprocess`` executor: each call in a fresh, confined child process.

Per call: a new interpreter (``sandbox_child``) in a session and process group of its
own (``setsid(2)``), working in the program's workspace (or a scratch directory removed
after the call, when the tool has no workspace), with limits on CPU time, address
space and open files, and without network where the OS permits a network namespace
(see ``SandboxLimits``). Arguments go to it as JSON on stdin and the reply comes back as
JSON, so both must be JSON-able; the function is found by name (``function_ref``).

On timeout or cancellation the child's whole tree is ended (``process_tree``: SIGTERM,
SIGKILL after ``kill_grace_s``) before the call returns or the cancellation goes on,
so no process of the call outlives it by more than the grace period plus a poll.
Processes a tool leaves behind after returning normally are ended the same way.

What it does not confine: the file system beyond the working directory (absolute paths
still reach whatever the runner's user may read and write), and the number of processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from agentrt.toolmgr.executor_base import CallOptions, Outcome, TimedExecutor, timeout_message
from agentrt.toolmgr.executor_options import SandboxLimits
from agentrt.toolmgr.function_ref import FunctionRef, child_sys_path, function_ref
from agentrt.toolmgr.process_tree import TreeKill, has_proc, terminate_tree, tree_members
from agentrt.toolmgr.registry import RegisteredTool
from agentrt.toolmgr.result import TIMEOUT, SandboxReport
from agentrt.toolmgr.sandbox_child import CHILD_PATH

log = logging.getLogger("agentrt.toolmgr")

MAX_REPLY_BYTES = 64 * 1024 * 1024
"""A reply larger than this is refused (the child is killed): it protects the runner's
memory; the size cap for the model is applied later, and is far smaller."""
STDERR_TAIL_BYTES = 4096


@dataclass(slots=True)
class ChildRun:
    """One finished child: exit status, reply bytes, the tail of its stderr, its pid."""

    pid: int
    returncode: int | None
    reply: bytes
    stderr_tail: bytes
    kill: TreeKill | None = None
    timed_out: bool = False




class SubprocessExecutor(TimedExecutor):
    """Runs each call in a sandboxed child process; see the module docstring."""

    name: ClassVar[str] = "subprocess"
    enforces_own_timeout: ClassVar[bool] = True

    def __init__(self) -> None:
        self._refs: dict[Any, FunctionRef] = {}
        self._warned_network: set[str] = set()

    async def _run(self, tool: RegisteredTool, arguments: dict[str, Any],
                   options: CallOptions) -> Outcome:
        limits = tool.spec.sandbox_limits()
        request = self._request(tool, arguments, limits)  # raises: error outcome
        scratch = None if options.workdir is not None else tempfile.mkdtemp(
            prefix="agentrt-call-")
        workdir = str(options.workdir) if options.workdir is not None else scratch
        try:
            run = await self._spawn_and_wait(request, workdir, tool, limits)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        return self._outcome(tool, limits, run)

    def _request(self, tool: RegisteredTool, arguments: dict[str, Any],
                 limits: SandboxLimits) -> bytes:
        ref = self._refs.get(tool.fn)
        if ref is None:
            ref = self._refs[tool.fn] = function_ref(tool.fn, tool.name)
        request = {
            "sys_path": child_sys_path(), "target": ref.payload(), "arguments": arguments,
            "network": limits.network,
            "limits": {"cpu_s": limits.cpu_seconds(tool.spec.timeout_s),
                       "memory_bytes": None if limits.memory_mb is None
                       else limits.memory_mb * 1024 * 1024,
                       "open_files": limits.open_files},
        }
        try:
            return json.dumps(request, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise TypeError(f"tool {tool.name!r} runs in a subprocess, so its arguments "
                            f"must be JSON-able: {exc}") from None

    async def _spawn_and_wait(self, request: bytes, workdir: str, tool: RegisteredTool,
                              limits: SandboxLimits) -> ChildRun:
        env = {**os.environ, "TMPDIR": workdir, "PYTHONUNBUFFERED": "1"}
        # stderr goes to a file, not a pipe: a process the tool leaves behind would hold
        # a pipe open, and asyncio waits for a child's pipes to close before wait().
        with tempfile.TemporaryFile(prefix="agentrt-stderr-") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-P", CHILD_PATH, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=workdir, env=env,
                start_new_session=True)
            try:
                async with asyncio.timeout(tool.spec.timeout_s) as deadline:
                    reply = await _exchange(proc, request)
                    returncode = await proc.wait()
            except TimeoutError:
                if not deadline.expired():
                    raise
                kill = await self._end(tool, proc, limits)
                return ChildRun(proc.pid, proc.returncode, b"", _tail(stderr), kill,
                                timed_out=True)
            except BaseException:  # cancellation, a reply too large
                await self._end(tool, proc, limits)
                raise
            run = ChildRun(proc.pid, returncode, reply, _tail(stderr))
        if has_proc() and tree_members(proc.pid):  # it left processes behind
            run.kill = await asyncio.shield(terminate_tree(proc.pid, limits.kill_grace_s))
        return run

    @staticmethod
    async def _end(tool: RegisteredTool, proc: asyncio.subprocess.Process,
                   limits: SandboxLimits) -> TreeKill:
        # Shielded: a second cancellation must not leave the tree half-ended.
        kill = await asyncio.shield(_end_tree(proc, limits.kill_grace_s))
        log.info("tool %r: ended child %d and its tree (%d signalled, %d needed SIGKILL, "
                 "%d survived)", tool.name, proc.pid, len(kill.signalled), len(kill.killed),
                 len(kill.survivors))
        return kill

    def _outcome(self, tool: RegisteredTool, limits: SandboxLimits, run: ChildRun) -> Outcome:
        if run.timed_out:
            ended = run.kill.signalled if run.kill is not None else set()
            return Outcome(error=f"{timeout_message(tool)}; its process tree "
                           f"({len(ended)} process(es)) was ended", error_type=TIMEOUT,
                           sandbox=SandboxReport(run.pid, None, "timed out before reporting"))
        try:
            reply = json.loads(run.reply) if run.reply else None
        except json.JSONDecodeError:
            reply = None
        if reply is None:
            return Outcome(error=_crash_message(tool, limits, run), error_type=_crash_type(run),
                           sandbox=SandboxReport(run.pid, None, "the child did not report"))
        network = reply.get("network", {})
        sandbox = SandboxReport(run.pid, bool(network.get("isolated")),
                                str(network.get("detail", "")))
        outcome = (Outcome(value=reply.get("value")) if reply.get("ok") else
                   Outcome(error=_with_hint(reply, limits), error_type=reply.get("error_type")))
        outcome.sandbox = sandbox
        if not limits.network and not sandbox.network_isolated:
            outcome.warnings.append(f"no network isolation: {sandbox.detail}")
            if tool.name not in self._warned_network:
                self._warned_network.add(tool.name)
                log.warning("tool %r runs without network isolation: %s", tool.name,
                            sandbox.detail)
        if run.kill is not None and run.kill.signalled:
            outcome.warnings.append(f"the tool left {len(run.kill.signalled)} process(es) "
                                    "running after it returned; they were ended")
        return outcome


async def _exchange(proc: asyncio.subprocess.Process, request: bytes) -> bytes:
    """Write the request and read the reply (capped) until the child closes it."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(request)
    await proc.stdin.drain()
    proc.stdin.close()
    return await _read_capped(proc.stdout)


async def _read_capped(stream: asyncio.StreamReader) -> bytes:
    chunks, size = [], 0
    while chunk := await stream.read(1 << 16):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise OverflowError(f"the tool's reply is over {MAX_REPLY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _tail(stderr: IO[bytes]) -> bytes:
    """The last ``STDERR_TAIL_BYTES`` the child and its tree wrote to stderr so far."""
    size = stderr.seek(0, os.SEEK_END)
    stderr.seek(max(0, size - STDERR_TAIL_BYTES))
    return stderr.read()


async def _end_tree(proc: asyncio.subprocess.Process, grace_s: float) -> TreeKill:
    kill = await terminate_tree(proc.pid, grace_s)
    try:
        await asyncio.wait_for(proc.wait(), 1.0)  # reap the child itself
    except TimeoutError:
        pass
    return kill


def _crash_type(run: ChildRun) -> str:
    code = run.returncode
    if code is not None and code < 0 and -code == signal.SIGXCPU:
        return "cpu_limit"
    return "sandbox_crash"


def _crash_message(tool: RegisteredTool, limits: SandboxLimits, run: ChildRun) -> str:
    code = run.returncode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        how = f"was killed by {name}"
        if -code in (signal.SIGXCPU, signal.SIGKILL):
            how += (f" (SIGXCPU/SIGKILL: its CPU-time limit of "
                    f"{limits.cpu_seconds(tool.spec.timeout_s)}s, or memory)")
    else:
        how = f"exited with status {code} without a reply"
    tail = run.stderr_tail.decode("utf-8", errors="replace").strip()
    return f"tool {tool.name!r}: its sandboxed process {how}" + (
        f"; stderr ends with: {tail[-1000:]}" if tail else "")


def _with_hint(reply: dict[str, Any], limits: SandboxLimits) -> str:
    error = str(reply.get("error"))
    if reply.get("error_type") == "MemoryError" and limits.memory_mb is not None:
        error += (f" (the sandbox's address space is limited to memory_mb="
                  f"{limits.memory_mb}; raise it in SandboxLimits if the tool needs more)")
    if reply.get("error_type") == "OSError" and "Too many open files" in error:
        error += f" (open_files={limits.open_files} in SandboxLimits)"
    return error
