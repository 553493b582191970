"""SimpleTokenizer: deterministic ids, and chat rendering that only grows at its end."""
from __future__ import annotations

from agentrt.runtime.core.messages import ToolCallSpec
from agentrt.runtime.engines.tokenizer import BOS, END, NUM_SPECIAL, ROLE_IDS, SimpleTokenizer

TOOLS = [{"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object"}}}]


def test_pieces_cover_the_text_and_ids_are_stable():
    tok = SimpleTokenizer()
    text = "def f(x_1):\n    return x_1 * 42  # done!"
    assert "".join(tok.pieces(text)) == text
    assert tok.encode(text) == SimpleTokenizer().encode(text)
    assert tok.count(text) == len(tok.encode(text))
    assert all(NUM_SPECIAL <= i < tok.vocab_size for i in tok.encode(text))


def test_words_keep_their_leading_space():
    tok = SimpleTokenizer()
    assert tok.pieces("hello big world, 12345") == ["hello", " big", " world", ",", " 123", "45"]
    assert tok.encode(" big") != tok.encode("big")


def test_prompt_shape():
    tok = SimpleTokenizer()
    ids = tok.encode_prompt([{"role": "user", "content": "hi"}], TOOLS)
    assert ids[0] == BOS and ids[-1] == ROLE_IDS["assistant"]
    assert ids[-4:] == [ROLE_IDS["user"], tok.encode("hi")[0], END, ROLE_IDS["assistant"]]


def test_prompt_plus_reply_is_a_prefix_of_the_next_prompt():
    tok = SimpleTokenizer()
    messages = [{"role": "system", "content": "You fix bugs."},
                {"role": "user", "content": "Tests fail in parser.py"}]
    for turn in range(3):
        prompt = tok.encode_prompt(messages, TOOLS)
        text = f"Let me run the tests (attempt {turn})."
        calls = [ToolCallSpec(f"call_{turn}", "run_tests", '{"path":"tests/"}')]
        reply = tok.encode_reply(text, calls)
        messages = messages + [
            {"role": "assistant", "content": text, "tool_calls": [c.to_openai() for c in calls]},
            {"role": "tool", "tool_call_id": f"call_{turn}", "content": f"{turn} failed"},
        ]
        following = tok.encode_prompt(messages, TOOLS)
        assert following[: len(prompt) + len(reply)] == prompt + reply
        assert len(following) > len(prompt) + len(reply)


def test_a_reply_without_tool_calls_ends_with_end():
    tok = SimpleTokenizer()
    assert tok.encode_reply("") == [END]
    assert tok.encode_reply("ok") == tok.encode("ok") + [END]


def test_content_parts_and_none_render_as_text():
    tok = SimpleTokenizer()
    parts = {"role": "user", "content": [{"type": "text", "text": "a b"}]}
    assert tok.encode_message(parts) == tok.encode_message({"role": "user", "content": "a b"})
    empty = {"role": "assistant", "content": None}
    assert tok.encode_message(empty) == [ROLE_IDS["assistant"], END]
