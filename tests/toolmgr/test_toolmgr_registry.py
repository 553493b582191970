"""Tool specs and the registry: schemas come from signatures, errors name the fix."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import pydantic
import pytest

from agentrt.toolmgr import RegisteredTool, ToolArgumentsError, ToolRegistry, ToolSpec, UnknownToolError


def search(
    query: str,
    k: int = 5,
    mode: Literal["web", "code"] = "web",
    tags: Optional[list[str]] = None,
    filters: dict[str, int] | None = None,
    note: Annotated[str, pydantic.Field(description="free text")] = "",
) -> list[str]:
    """Search an index.

    Longer explanation that the model does not need.
    """
    return [query] * k


def make_registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(search)
    registry.register(lambda path: path, name="read_file", executor="inline")
    return registry


def test_schema_comes_from_the_signature():
    spec = RegisteredTool.from_function(search).spec
    props = spec.parameters["properties"]
    assert spec.name == "search"
    assert spec.description == "Search an index."
    assert spec.parameters["required"] == ["query"]
    assert spec.parameters["additionalProperties"] is False
    assert props["query"]["type"] == "string"
    assert props["k"] == {"default": 5, "title": "K", "type": "integer"}
    assert props["mode"]["enum"] == ["web", "code"]
    assert {"type": "array", "items": {"type": "string"}} in props["tags"]["anyOf"]
    assert props["note"]["description"] == "free text"
    assert spec.returns_json is True


def test_spec_overrides_are_validated_with_the_field_name():
    with pytest.raises(pydantic.ValidationError, match="timeout_s"):
        RegisteredTool.from_function(search, timeout_s=0)
    with pytest.raises(pydantic.ValidationError, match="name"):
        RegisteredTool.from_function(search, name="has space")
    with pytest.raises(pydantic.ValidationError, match="colour"):
        RegisteredTool.from_function(search, colour="red")


def test_spec_is_frozen():
    spec = ToolSpec(name="t")
    with pytest.raises(pydantic.ValidationError):
        spec.timeout_s = 5  # type: ignore[misc]
    assert (spec.timeout_s, spec.executor, spec.duration_prior_s) == (60.0, "thread", None)


def test_variadic_parameters_are_rejected_with_a_fix():
    def bad(*paths: str) -> None: ...

    with pytest.raises(TypeError, match="declare each argument as a named parameter"):
        RegisteredTool.from_function(bad)


def test_str_return_means_text_output():
    def echo(text: str) -> str:
        return text

    assert RegisteredTool.from_function(echo).spec.returns_json is False


def test_validate_args_fills_defaults_and_coerces():
    args = make_registry().validate_args("search", {"query": "q", "k": "3"})
    assert args == {"query": "q", "k": 3, "mode": "web", "tags": None, "filters": None, "note": ""}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, "Argument 'query' is required but missing."),
        ({"query": "q", "k": "many"}, "Argument 'k': input should be a valid integer"),
        ({"query": "q", "mode": "pdf"}, "Argument 'mode': input should be 'web' or 'code'"),
        ({"query": "q", "tags": [1]}, "Argument 'tags.0': input should be a valid string"),
        ({"query": "q", "limit": 3}, "Argument 'limit' is not a parameter of this tool"),
    ],
)
def test_bad_args_name_tool_field_and_problem(args, expected):
    with pytest.raises(ToolArgumentsError) as info:
        make_registry().validate_args("search", args)
    assert str(info.value).startswith("tool 'search' rejected its arguments: ")
    assert expected in str(info.value)
    assert info.value.tool == "search"


def test_each_problem_is_one_sentence():
    with pytest.raises(ToolArgumentsError) as info:
        make_registry().validate_args("search", {"k": "x", "extra": 1})
    assert len(info.value.problems) == 3
    assert all(p.endswith(".") for p in info.value.problems)


def test_unknown_tool_lists_known_names():
    registry = make_registry()
    with pytest.raises(UnknownToolError, match=r"unknown tool 'serch'; known tools: read_file, search"):
        registry.get("serch")
    assert isinstance(UnknownToolError("x", []), ValueError)


def test_names_contains_and_duplicate_names():
    registry = make_registry()
    assert registry.names() == ["search", "read_file"]
    assert "search" in registry and "nope" not in registry
    assert list(registry) == ["search", "read_file"]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(search)
    same = registry.get("search")
    assert registry.add(same) is same


def test_openai_tools_shape_and_order():
    tools = make_registry().openai_tools(["read_file", "search"])
    assert [t["function"]["name"] for t in tools] == ["read_file", "search"]
    assert tools[1] == {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search an index.",
            "parameters": RegisteredTool.from_function(search).spec.parameters,
        },
    }
    assert len(make_registry().openai_tools()) == 2
    with pytest.raises(UnknownToolError):
        make_registry().openai_tools(["nope"])
