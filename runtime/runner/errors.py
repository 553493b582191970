"""Errors a running step can meet."""
from __future__ import annotations


class LLMCallError(RuntimeError):
    """An LLM call the engine could not serve (a server error after its retries, a
    server that went away); the message names the call, the worker, the endpoint and
    the fix. The step can catch it; uncaught, it fails the program with it."""


class ProgramEnded(RuntimeError):
    """A step still running after its program ended (a plain function in a thread, past
    the deadline) tried to call the model or a tool: refused, so nothing it does can
    reach an engine or the budget any more."""


class SchedulerLost(RuntimeError):
    """The cluster's scheduler is gone: no LLM call can be served in this run. A program
    that meets it fails with the reason; run it again once the cluster is back."""
