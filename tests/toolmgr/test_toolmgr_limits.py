"""The size cap on results and the validation of executor options."""
from __future__ import annotations

import pydantic
import pytest

from agentrt.toolmgr import ToolManagerSettings, ToolResult, ToolSpec
from agentrt.toolmgr.truncation import MARKER, cap_result, cut_text


def test_a_text_under_the_cap_is_not_cut():
    assert cut_text("short", 100) is None
    result = cap_result(ToolResult("c", "t", True, {"a": 1}), 100)
    assert (result.output, result.truncated, result.output_bytes) == ({"a": 1}, False, None)


def test_a_long_output_keeps_its_head_and_says_how_much_is_missing():
    result = cap_result(ToolResult("c", "t", True, {"log": "x" * 5000}), 500)
    assert result.truncated and result.output_bytes == len('{"log": "') + 5000 + 2
    assert len(result.output.encode()) <= 500 and result.output.startswith('{"log": "xxx')
    assert result.output.endswith(f" of {result.output_bytes} bytes shown]")
    assert result.span_attributes()["agentrt.tool.output_bytes"] == result.output_bytes


def test_the_cut_never_splits_a_character():
    cut = cut_text("é" * 1000, 300)
    head = cut.text[: cut.text.index("\n[agentrt")]
    assert set(head) == {"é"} and len(cut.text.encode()) <= 300 and cut.total_bytes == 2000


def test_error_texts_are_capped_too_and_none_means_no_cap():
    failed = cap_result(ToolResult.failure("c", "t", "E" * 2000, error_type="ValueError"), 300)
    assert failed.truncated and failed.error.endswith(MARKER.format(shown=247, total=2000))
    assert len(failed.error.encode()) <= 300 and failed.error.startswith("EEE")
    assert cap_result(ToolResult("c", "t", True, "y" * 10_000), None).output == "y" * 10_000


def test_settings_name_the_bad_option_and_value():
    with pytest.raises(pydantic.ValidationError, match="max_result_bytes"):
        ToolManagerSettings(max_result_bytes=10)
    with pytest.raises(pydantic.ValidationError, match="preparation"):
        ToolManagerSettings(preparation="eager")


@pytest.mark.parametrize(("fields", "message"), [
    ({"executor": "docker"}, "Input should be 'inline', 'thread', 'subprocess' or 'ray'"),
    ({"executor": "thread", "sandbox": {}}, "sandbox=... applies to executor='subprocess' only"),
    ({"executor": "subprocess", "ray": {}}, "ray=... applies to executor='ray' only"),
    ({"executor": "subprocess", "sandbox": {"memory_mb": -1}}, "memory_mb"),
    ({"executor": "ray", "ray": {"num_gpus": -1}}, "num_gpus"),
])
def test_executor_options_must_match_the_executor(fields, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        ToolSpec(name="t", **fields)


def test_cpu_time_defaults_to_the_timeout_rounded_up_plus_one():
    spec = ToolSpec(name="t", executor="subprocess", timeout_s=2.2)
    assert spec.sandbox_limits().cpu_seconds(spec.timeout_s) == 4
    explicit = ToolSpec(name="t", executor="subprocess", sandbox={"cpu_time_s": 0.5})
    assert explicit.sandbox_limits().cpu_seconds(60) == 1
