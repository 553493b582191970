"""The size cap on what a tool call hands back to the model.

A tool that returns a whole log file would otherwise fill the model's context (and the
runner's memory); the model is better served by the head of it and a clear mark that
the rest is missing, so it can ask for less.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentrt.toolmgr.result import ToolResult, output_text

MARKER = "\n[agentrt: output truncated, {shown} of {total} bytes shown]"
"""Appended to a cut text; the model reads it as part of the tool's answer."""


@dataclass(frozen=True, slots=True)
class Cut:
    """A text cut to the cap: its head with the marker, and the full text's size."""

    text: str
    total_bytes: int


def cut_text(text: str, max_bytes: int) -> Cut | None:
    """The cut of ``text`` when it is over ``max_bytes`` bytes of UTF-8, else ``None``.
    The head plus marker fits in ``max_bytes`` whenever the cap leaves room for the
    marker; the cut never splits a character."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return None
    room = max(0, max_bytes - len(MARKER.format(shown=max_bytes, total=len(data)).encode()))
    head = data[:room].decode("utf-8", errors="ignore")
    shown = len(head.encode("utf-8"))
    return Cut(head + MARKER.format(shown=shown, total=len(data)), len(data))


def cap_result(result: ToolResult, max_bytes: int | None) -> ToolResult:
    """Cut ``result``'s output (as the model would see it) or error text to
    ``max_bytes``; ``None`` means no cap. Mutates and returns ``result``: a cut output
    becomes the text's head with the marker, ``truncated`` is set and
    ``output_bytes`` holds the full size."""
    if max_bytes is None:
        return result
    if not result.ok:
        cut = cut_text(result.error or "", max_bytes)
        if cut is not None:
            result.error, result.output_bytes = cut.text, cut.total_bytes
            result.truncated = True
        return result
    cut = cut_text(output_text(result.output), max_bytes)
    if cut is not None:
        result.output, result.output_bytes = cut.text, cut.total_bytes
        result.truncated = True
    return result
