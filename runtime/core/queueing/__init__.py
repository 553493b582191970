"""Queue policies and the wait-queue mechanism; `runtime.core.queues` is the registry."""
