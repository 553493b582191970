"""Builders for simulator tests."""
from __future__ import annotations

from typing import Any

from agentrt.runtime.sim.config import SimConfig

# Every mechanism off: program FCFS over sticky routing, no stealing, no retention, no
# host tier. Tests that exercise one mechanism turn just that one on.
PLAIN: dict[str, Any] = {"queue": "program_fcfs", "router": "sticky", "stealing": False,
                         "steal_options": {}, "ttl": None, "host_tier": "off"}


def plain_config(**settings: Any) -> SimConfig:
    """A SimConfig with every mechanism off except those `settings` name."""
    return SimConfig(**{**PLAIN, **settings})
