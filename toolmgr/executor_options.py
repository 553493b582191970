"""Options a tool declares for the executor that runs it.

``SandboxLimits`` goes with ``executor="subprocess"`` and ``RayTaskOptions`` with
``executor="ray"``; ``ToolSpec`` rejects either one next to another executor. Both are
pydantic models, so a bad value is reported with the option's name and the value given.

The limits are enforced by the kernel in the child process through ``setrlimit(2)``
(Linux man page ``getrlimit(2)``): ``RLIMIT_CPU`` (CPU seconds; SIGXCPU at the soft
limit, SIGKILL at the hard one), ``RLIMIT_AS`` (address space, so it counts virtual
memory, not resident memory) and ``RLIMIT_NOFILE`` (open file descriptors).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SandboxLimits(BaseModel):
    """What a subprocess tool's child may use. ``None`` leaves a limit as inherited."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    cpu_time_s: float | None = Field(default=None, gt=0)
    """CPU seconds (``RLIMIT_CPU``). ``None``: the call's ``timeout_s`` rounded up plus
    one, so a busy loop dies by the kernel's hand even if the parent is gone."""

    memory_mb: int | None = Field(default=2048, gt=0)
    """Address space in MiB (``RLIMIT_AS``). It counts virtual memory: libraries that
    reserve large arenas (BLAS thread pools, JITs) need a generous value."""

    open_files: int | None = Field(default=256, gt=0)
    """Open file descriptors (``RLIMIT_NOFILE``)."""

    network: bool = False
    """``False``: the child gets a network namespace of its own with no interfaces up
    (Linux ``unshare(CLONE_NEWNET)``), so it cannot reach any host, not even loopback.
    Where the OS does not permit that, the call still runs, a warning is logged and
    the result's ``sandbox.network_isolated`` is ``False``. ``True``: network as the
    parent has it."""

    kill_grace_s: float = Field(default=2.0, ge=0)
    """Seconds between SIGTERM and SIGKILL when the call times out or is cancelled."""

    def cpu_seconds(self, timeout_s: float) -> int:
        """The ``RLIMIT_CPU`` value for a call with this ``timeout_s`` (whole seconds:
        the kernel counts CPU time in seconds)."""
        if self.cpu_time_s is not None:
            return max(1, int(-(-self.cpu_time_s // 1)))
        return int(-(-timeout_s // 1)) + 1


class RayTaskOptions(BaseModel):
    """Resources one call of a ``ray`` tool asks Ray for (``ray.remote`` options).

    The task waits in Ray's queue until a node has them, so a tool that asks for a GPU
    runs on a GPU node while the program's runner stays where it is.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    num_cpus: float = Field(default=1.0, ge=0)
    """CPUs reserved for the call."""

    num_gpus: float = Field(default=0.0, ge=0)
    """GPUs reserved for the call (fractions share a GPU)."""

    memory_mb: int | None = Field(default=None, gt=0)
    """Memory reserved for the call in MiB (Ray's ``memory`` resource), if any."""

    resources: dict[str, float] = Field(default_factory=dict)
    """Custom Ray resources, e.g. ``{"sandbox_host": 1}``."""

    def remote_options(self) -> dict[str, Any]:
        """Keyword arguments for ``ray.remote(...)`` / ``.options(...)``."""
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus,
                                   "max_retries": 0}  # a tool call is not idempotent
        if self.memory_mb is not None:
            options["memory"] = self.memory_mb * 1024 * 1024
        if self.resources:
            options["resources"] = dict(self.resources)
        return options
