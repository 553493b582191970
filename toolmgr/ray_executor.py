"""The ``ray`` executor: each call as a Ray task with the tool's own resources.

For tools that need what the runner does not have: a GPU, many CPUs, a node with a
custom resource (``RayTaskOptions``). The task waits in Ray's queue until a node offers
them, and that wait counts toward the call's ``timeout_s``. The function is sent to the
object store once per executor (``ray.put``), so a call ships only its arguments.

On timeout or cancellation the task is cancelled with ``force=True``, which kills the
worker process running it (Ray's ``ray.cancel``); processes that the task itself
started are not followed. Ray must be running (``ray.init()``; ``agentrt.Runtime``
starts it); otherwise the call fails with a message saying so. Ray is imported on the
first call, not with this module.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, ClassVar

from agentrt.toolmgr.executor_base import CallOptions, Outcome, TimedExecutor, timeout_message
from agentrt.toolmgr.registry import RegisteredTool
from agentrt.toolmgr.result import TIMEOUT


def _invoke(fn: Any, arguments: dict[str, Any]) -> Any:
    """The body of every tool task: call the function, awaiting it if async."""
    value = fn(**arguments)
    if inspect.isawaitable(value):
        async def wait() -> Any:
            return await value

        value = asyncio.run(wait())
    return value


class RayExecutor(TimedExecutor):
    """Runs each call as a Ray task; see the module docstring."""

    name: ClassVar[str] = "ray"
    enforces_own_timeout: ClassVar[bool] = True

    def __init__(self) -> None:
        self._task: Any = None  # ray.remote(_invoke), made on first use
        self._fn_refs: dict[Any, Any] = {}

    async def _run(self, tool: RegisteredTool, arguments: dict[str, Any],
                   options: CallOptions) -> Outcome:
        import ray

        if not ray.is_initialized():
            raise RuntimeError(f"tool {tool.name!r} uses executor='ray', but Ray is not "
                               "running in this process; call ray.init() first (agentrt."
                               "Runtime does) or choose another executor")
        ref = self._submit(ray, tool, arguments)
        try:
            async with asyncio.timeout(tool.spec.timeout_s) as deadline:
                value = await ref
        except TimeoutError as exc:
            if not deadline.expired():
                return Outcome.raised(exc)
            ray.cancel(ref, force=True)
            return Outcome(error=f"{timeout_message(tool)}; its Ray task was cancelled",
                           error_type=TIMEOUT)
        except asyncio.CancelledError:
            ray.cancel(ref, force=True)
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            return Outcome.raised(cause if isinstance(cause, BaseException) else exc)
        return Outcome(value=value)

    def _submit(self, ray: Any, tool: RegisteredTool, arguments: dict[str, Any]) -> Any:
        if self._task is None:
            self._task = ray.remote(_invoke)
        fn_ref = self._fn_refs.get(tool.fn)
        if fn_ref is None:
            fn_ref = self._fn_refs[tool.fn] = ray.put(tool.fn)
        remote_options = tool.spec.ray_options().remote_options()
        return self._task.options(**remote_options).remote(fn_ref, arguments)

    def shutdown(self) -> None:
        self._fn_refs.clear()
