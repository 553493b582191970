"""Errors a running step can meet."""
from __future__ import annotations


class LLMCallError(RuntimeError):
    """An LLM call the engine could not serve (a server error after its retries, a
    server that went away); the message names the call, the worker, the endpoint and
    the fix. The step can catch it; uncaught, it fails the program with it."""
