"""A tools module as a user writes one (it imports agentrt and declares a tool), for
`tool_overhead`: a sandboxed child that runs `probe` imports all of this."""
from __future__ import annotations

import textwrap

import agentrt


@agentrt.tool(executor="subprocess", timeout_s=120)
def probe(text: str) -> str:
    """Trivial work: dedent a short text."""
    return textwrap.dedent(text)
