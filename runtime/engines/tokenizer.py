"""A deterministic stand-in tokenizer: no vocabulary file, no downloads.

Text is cut into pieces the way byte-level BPE pre-tokenizers do (a word or a number
keeps its leading space, punctuation runs and whitespace runs stand alone); each piece
maps to `num_special + stable_hash(piece) % vocab`. Counts land near a real tokenizer's
for English and code, and ids are equal in every process.

Chat rendering puts role and end markers around each message so that a conversation
only ever grows at its end::

    prompt_k   = [BOS] tools  msg_1 ... msg_n  [ASSISTANT]
    reply_k    =                                            text  tool-calls-JSON  [END]
    prompt_k+1 = [BOS] tools  msg_1 ... msg_n  [ASSISTANT]  text  tool-calls-JSON  [END]
                 [TOOL] result [END] [ASSISTANT]

so prompt_k + reply_k is a prefix of prompt_k+1 and the KV of turn k is reusable.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentrt.kvcache.prefix import stable_hash
from agentrt.runtime.core.messages import ToolCallSpec

# A word or number with its optional leading space, a punctuation run with its optional
# leading space, or a whitespace run.
_PIECE = re.compile(r" ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+|_+|\s+")

PAD, BOS, END = 0, 1, 2
ROLE_IDS = {"system": 3, "user": 4, "assistant": 5, "tool": 6, "developer": 7}
OTHER_ROLE = 8
NUM_SPECIAL = 16
_CACHE_LIMIT = 1 << 18


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same bytes for equal values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tool_calls_json(tool_calls: Iterable[ToolCallSpec | Mapping[str, Any]]) -> str:
    """Canonical JSON of tool calls in the OpenAI shape; "" when there are none."""
    shaped = [tc.to_openai() if isinstance(tc, ToolCallSpec) else dict(tc) for tc in tool_calls]
    return canonical_json(shaped) if shaped else ""


class SimpleTokenizer:
    """Deterministic text -> token ids. `vocab` ordinary ids above `NUM_SPECIAL`
    special ones (PAD, BOS, END and one role marker per role)."""

    def __init__(self, vocab: int = 128000) -> None:
        if vocab < 1:
            raise ValueError(f"vocab must be >= 1, got {vocab}")
        self.vocab = vocab
        self._ids: dict[str, int] = {}

    @property
    def vocab_size(self) -> int:
        return self.vocab + NUM_SPECIAL

    # -- text --------------------------------------------------------------------------

    def pieces(self, text: str) -> list[str]:
        """The pieces `text` splits into; `"".join(pieces(t)) == t`."""
        return _PIECE.findall(text)

    def encode(self, text: str) -> list[int]:
        ids = self._ids
        if len(ids) > _CACHE_LIMIT:
            ids.clear()
        out = []
        for piece in _PIECE.findall(text):
            tid = ids.get(piece)
            if tid is None:
                tid = ids[piece] = NUM_SPECIAL + stable_hash("tok", piece) % self.vocab
            out.append(tid)
        return out

    def count(self, text: str) -> int:
        return len(_PIECE.findall(text))

    # -- chat --------------------------------------------------------------------------

    def encode_message(self, message: Mapping[str, Any]) -> list[int]:
        """[ROLE] content tool-calls-JSON [END] for one OpenAI-style message."""
        role = ROLE_IDS.get(str(message.get("role", "")), OTHER_ROLE)
        ids = [role] + self.encode(_content_text(message.get("content")))
        ids += self.encode(tool_calls_json(message.get("tool_calls") or ()))
        ids.append(END)
        return ids

    def encode_prompt(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[int]:
        """[BOS] tools-schema-JSON messages... [ASSISTANT]: what the model reads."""
        ids = [BOS]
        if tools:
            ids += self.encode(canonical_json(list(tools)))
        for message in messages:
            ids += self.encode_message(message)
        ids.append(ROLE_IDS["assistant"])
        return ids

    def encode_reply(
        self, text: str, tool_calls: Iterable[ToolCallSpec | Mapping[str, Any]] = ()
    ) -> list[int]:
        """text tool-calls-JSON [END]: what the model writes; equals the assistant
        message's encoding without its leading role marker."""
        return self.encode(text) + self.encode(tool_calls_json(tool_calls)) + [END]


def _content_text(content: Any) -> str:
    """Message content as text: a string, OpenAI content parts, or anything JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, Mapping) for p in content):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return canonical_json(content)
