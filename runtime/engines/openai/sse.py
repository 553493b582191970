"""Server-sent events: the framing of a streamed chat completion.

Per the WHATWG HTML standard, section 9.2 "Server-sent events": an event is a run of
`field: value` lines ended by a blank line; `data` lines join with newlines; a line
starting with `:` is a comment; a single space after the colon is dropped. OpenAI's
stream sends one JSON chunk per event and ends with the event `data: [DONE]`
(platform.openai.com/docs/api-reference/chat-streaming).
"""
from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

DONE = "[DONE]"


async def sse_data(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """The `data` of each event in `lines` (lines without their line endings). Events
    without data (comments, keep-alives, `event:`-only) are skipped; an event still open
    when the lines end is yielded."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)
