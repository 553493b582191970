"""Queue policies and the wait-queue mechanism; `registry` picks a policy by name."""
