from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import RequestDone
from agentrt.runtime.core.session_chain import SessionChain, request_id


def done(output_tokens: int, *, key: int | None = None, ids: list[int] | None = None):
    return RequestDone(request_id="r", session_id="s", program_id="p", worker_id="w0",
                       finished_at=0.0, prompt_tokens=0, cached_tokens=0,
                       prefilled_tokens=0, output_tokens=output_tokens,
                       output_token_ids=ids, output_synthetic_key=key)


def test_a_conversation_is_prefix_inputs_and_replies_in_turn():
    chain = SessionChain("p/s", block_size=16, prefix_id="sys", prefix_tokens=32)
    first = chain.add_input(0, 20)
    chain.add_output(done(8, key=stable_hash("out", "p/s#0")))
    second = chain.add_input(1, 12)
    expected = TokenChain(16)
    expected.extend_synthetic(stable_hash("prefix", "sys"), 32)
    expected.extend_synthetic(stable_hash("in", "p/s", 0), 20)
    assert first == expected
    expected.extend_synthetic(stable_hash("out", "p/s#0"), 8)
    expected.extend_synthetic(stable_hash("in", "p/s", 1), 12)
    assert second == expected and second.num_tokens == 72
    assert first.num_tokens == 52  # a sent prompt does not grow with the session


def test_sessions_share_the_prefix_blocks_and_nothing_after():
    a = SessionChain("p/a", 16, "sys", 32).add_input(0, 16)
    b = SessionChain("p/b", 16, "sys", 32).add_input(0, 16)
    assert a.hashes[:2] == b.hashes[:2] and a.hashes[2] != b.hashes[2]


def test_replies_with_text_extend_by_their_token_ids():
    chain = SessionChain("s", 4)
    chain.add_input(0, 4)
    chain.add_output(done(4, ids=[1, 2, 3, 4]))
    expected = TokenChain(4)
    expected.extend_synthetic(stable_hash("in", "s", 0), 4)
    expected.extend_tokens([1, 2, 3, 4])
    assert chain.chain == expected


def test_request_ids_number_a_sessions_calls_from_zero():
    assert request_id("p0/plan", 0) == "p0/plan#0"


def test_a_compacted_turn_restarts_from_the_prefix_and_a_summary():
    chain = SessionChain("p/s", 16, "sys", 32)
    chain.add_input(0, 500)
    chain.add_output(done(40, key=stable_hash("out", "p/s#0")))
    prompt = chain.add_input(1, 20, summary_tokens=64)
    expected = TokenChain(16)
    expected.extend_synthetic(stable_hash("prefix", "sys"), 32)
    expected.extend_synthetic(stable_hash("summary", "p/s", 1), 64)
    expected.extend_synthetic(stable_hash("in", "p/s", 1), 20)
    assert prompt == expected and chain.num_tokens == 116
    chain.add_output(done(8, key=stable_hash("out", "p/s#1")))
    assert chain.add_input(2, 4).num_tokens == 128  # it grows from the summary on


def test_a_fork_starts_with_its_parents_blocks_and_restarts_from_its_prefix():
    parent = SessionChain("p/main", 16, "sys", 32)
    parent.add_input(0, 100)
    parent.add_output(done(28, key=stable_hash("out", "p/main#0")))
    child = SessionChain.fork(parent, "p/sub")
    first = child.add_input(0, 16)
    assert first.hashes[:10] == parent.chain.hashes and first.num_tokens == 176
    assert parent.num_tokens == 160  # the parent's conversation is its own
    child.add_output(done(16, key=stable_hash("out", "p/sub#0")))
    restarted = child.add_input(1, 16, summary_tokens=16)
    assert restarted.hashes[:2] == parent.chain.hashes[:2]  # the shared prefix
    assert restarted.num_tokens == 64
