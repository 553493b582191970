import msgpack
import pytest

from agentrt.runtime import wire
from agentrt.runtime.core.messages import RequestDone, ToolCallSpec
from tests.core.builders import make_request


def test_request_round_trips_with_its_prefix_chain():
    request = make_request("r1", tokens=100)
    request.priority = (1.5, 2.0)
    request.messages = [{"role": "user", "content": "hi"}]
    back = wire.decode(wire.encode(request))
    assert back == request
    assert back.prefix.hashes == request.prefix.hashes


def test_done_round_trips_with_tool_calls():
    done = RequestDone(request_id="r", session_id="s", program_id="p", worker_id="w0",
                       finished_at=3.0, prompt_tokens=10, cached_tokens=4,
                       prefilled_tokens=6, output_tokens=2,
                       tool_calls=[ToolCallSpec("c1", "run_tests", '{"x": 1}')],
                       finish_reason="tool_calls")
    assert wire.decode(wire.encode(done)) == done


def test_unknown_types_and_versions_are_refused():
    with pytest.raises(TypeError, match="not registered"):
        wire.encode(object())
    with pytest.raises(ValueError, match="unknown wire type"):
        wire.decode(msgpack.packb({"v": wire.WIRE_VERSION, "t": "os.system", "d": {}}))
    with pytest.raises(ValueError, match="version"):
        wire.decode(msgpack.packb({"v": 99, "t": "RequestDone", "d": {}}))
