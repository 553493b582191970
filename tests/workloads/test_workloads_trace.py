"""The JSON-lines trace format: what loads, what it loads into, and each error message."""
from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path

import pytest

from agentrt.programs.workloads import (
    GENERATORS,
    Pause,
    ProgramSpec,
    StepSpec,
    TraceError,
    TurnSpec,
    dump_trace,
    generate,
    load_trace,
    parse_trace_lines,
    program_from_dict,
    program_to_dict,
)
from tests.workloads.builders import line, make_program, make_step, make_turn, trace_lines

SAMPLE = Path(__file__).parents[2] / "examples" / "traces" / "sample.jsonl"


def parse(*programs) -> list[ProgramSpec]:
    return parse_trace_lines(trace_lines(*programs), source="t.jsonl")


def error_of(*programs) -> TraceError:
    with pytest.raises(TraceError) as info:
        parse(*programs)
    return info.value


# -- round trips -------------------------------------------------------------------------
def test_dag_programs_round_trip_through_a_file(tmp_path):
    programs = generate("dag", 20, seed=3)
    dump_trace(programs, tmp_path / "dag.jsonl")
    assert load_trace(tmp_path / "dag.jsonl") == programs


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_round_trips(tmp_path, name):
    programs = generate(name, 30, seed=1)
    dump_trace(programs, tmp_path / "t.jsonl")
    assert load_trace(tmp_path / "t.jsonl") == programs


def test_dict_round_trip_keeps_every_field():
    spec = ProgramSpec("p", [
        StepSpec("a", [TurnSpec(10, 2, "shell", 0.1 + 0.2), TurnSpec(5, 1, "submit", 0.0)],
                 prefix_id="sys", prefix_tokens=7, kind="plan"),
        StepSpec("b", [TurnSpec(3, 4)], deps=("a",))],
        arrival=1 / 3, tenant="t", agent="coder", meta={"k": [1, {"x": None}]})
    assert program_from_dict(program_to_dict(spec)) == spec


def test_human_turns_compaction_subagents_and_features_round_trip():
    spec = ProgramSpec("p", [
        StepSpec("main", [TurnSpec(900, 40, "task", 0.0, spawns=("sub",)),
                          TurnSpec(300, 20, think_s=84.5),
                          TurnSpec(200, 30, "shell", 0.8, summary_tokens=4000),
                          TurnSpec(100, 10)], prefix_id="sys", prefix_tokens=1500),
        StepSpec("sub", [TurnSpec(120, 15, "read", 0.036), TurnSpec(80, 25)])],
        features={"task_kind": "bugfix", "repo_tokens": 250_000, "prompt_tokens": 900.5})
    assert program_from_dict(program_to_dict(spec)) == spec


def test_optional_turn_fields_and_features_are_written_only_where_set():
    written = program_to_dict(ProgramSpec("p", [StepSpec("s", [TurnSpec(10, 2, "t", 1.0),
                                                               TurnSpec(5, 1)])]))
    assert "features" not in written
    assert [sorted(t) for t in written["steps"][0]["turns"]] == [
        ["input_tokens", "output_tokens", "tool", "tool_duration"]] * 2


def test_a_turn_without_a_tool_followed_by_more_turns_is_a_human_turn():
    [p] = parse(make_program(steps=[make_step(turns=[
        make_turn(think_s=90), make_turn(tool="shell", tool_duration=1), make_turn()])]))
    step = p.steps[0]
    assert [step.pause_after(k) for k in range(3)] == [
        Pause("human", 90.0), Pause("shell", 1.0), None]
    assert step.pause_after(0).human and not step.pause_after(1).human


def test_dump_writes_a_header_then_one_line_per_program_in_the_given_order(tmp_path):
    late, early = make_program("late", arrival=5.0), make_program("early", arrival=1.0)
    specs = [program_from_dict(late), program_from_dict(early)]
    dump_trace(specs, tmp_path / "t.jsonl")
    header, *lines = (tmp_path / "t.jsonl").read_text().splitlines()
    assert header.startswith("# ")
    assert [json.loads(text)["program_id"] for text in lines] == ["late", "early"]


# -- what loads --------------------------------------------------------------------------
def test_sample_trace_loads_with_a_parallel_dag_and_shared_prefixes():
    programs = {p.program_id: p for p in load_trace(SAMPLE)}
    assert len(programs) == 5
    research = programs["research-1"]
    assert [s.deps for s in research.steps] == [
        (), ("plan",), ("plan",), ("search_papers", "search_code")]
    assert {s.prefix_id for s in research.steps} == {"research-system"}
    assert programs["coder-1"].steps[0].prefix_id == programs["coder-2"].steps[0].prefix_id


def test_omitted_fields_take_their_defaults():
    [p] = parse(make_program())
    assert p == ProgramSpec("p", [StepSpec("s", [TurnSpec(100, 10, None, 0.0)], (), None, 0,
                                           "agent")], 0.0, "default", "agent", {})


def test_programs_come_back_sorted_by_arrival_then_program_id():
    programs = parse(make_program("c", arrival=2), make_program("b", arrival=1.5),
                     make_program("z", arrival=0), make_program("a", arrival=1.5))
    assert [p.program_id for p in programs] == ["z", "a", "b", "c"]


def test_blank_and_comment_lines_are_skipped_but_counted():
    lines = ["", "# header", "   ", "  # indented comment", line(make_program("p")),
             line(make_program("p", steps=[make_step(turns=[make_turn(output_tokens=0)])]))]
    with pytest.raises(TraceError, match=r"^t\.jsonl line 6: "):
        parse_trace_lines(lines, source="t.jsonl")
    assert [p.program_id for p in parse_trace_lines(lines[:5])] == ["p"]


def test_a_tool_on_the_last_turn_is_allowed():
    [p] = parse(make_program(steps=[make_step(turns=[make_turn(tool="submit", tool_duration=2)])]))
    assert p.steps[0].turns[-1] == TurnSpec(100, 10, "submit", 2.0)


def test_integers_are_accepted_where_numbers_are_expected():
    [p] = parse(make_program(arrival=3, steps=[make_step(turns=[make_turn(tool="t", tool_duration=1)])]))
    assert (p.arrival, p.steps[0].turns[0].tool_duration) == (3.0, 1.0)


# -- each error: line number, field path, problem, value ---------------------------------
def with_turn(**fields) -> dict:
    return make_program(steps=[make_step(turns=[make_turn(), make_turn(**fields)])])


def with_steps(*steps: dict) -> dict:
    return make_program(steps=list(steps))


ERRORS = {
    "zero output": (with_turn(output_tokens=0),
                    "steps[0].turns[1].output_tokens: input should be greater than or equal to 1 (got 0)"),
    "string int": (with_turn(input_tokens="5"),
                   'steps[0].turns[1].input_tokens: input should be a valid integer (got "5")'),
    "float int": (with_turn(input_tokens=5.0),
                  "steps[0].turns[1].input_tokens: input should be a valid integer (got 5.0)"),
    "negative duration": (with_turn(tool="t", tool_duration=-1),
                          "steps[0].turns[1].tool_duration: input should be greater than or equal to 0 (got -1)"),
    "empty tool": (with_turn(tool=""),
                   'steps[0].turns[1].tool: string should have at least 1 character (got "")'),
    "duration without tool": (with_turn(tool_duration=2.5),
                              "steps[0].turns[1].tool_duration: must be 0 when tool is null (got 2.5); "
                              "name the tool or drop the duration"),
    "typo in turn": (with_turn(tol="shell"),
                     "steps[0].turns[1].tol: unknown field; did you mean 'tool'? expected one of: "
                     "input_tokens, output_tokens, tool, tool_duration, think_s, summary_tokens, "
                     "spawns"),
    "typo in program": (make_program(tennant="a"),
                        "tennant: unknown field; did you mean 'tenant'? expected one of: "
                        "program_id, arrival, tenant, agent, meta, features, steps"),
    "negative arrival": (make_program(arrival=-0.5),
                         "arrival: input should be greater than or equal to 0 (got -0.5)"),
    "missing id": ({"steps": [make_step()]}, "program_id: field required"),
    "missing turns": (with_steps({"step_id": "s"}), "steps[0].turns: field required"),
    "no turns": (with_steps(make_step(turns=[])),
                 "steps[0].turns: list should have at least 1 item after validation, not 0 (got [])"),
    "no steps": (make_program(steps=[]),
                 "steps: list should have at least 1 item after validation, not 0 (got [])"),
    "step not an object": (make_program(steps=[5]), "steps[0]: expected a JSON object (got 5)"),
    "line not an object": ("[1, 2]", "expected a JSON object (got [1, 2])"),
    "meta not an object": (make_program(meta=[1]),
                           "meta: input should be a valid dictionary (got [1])"),
    "prefix tokens without id": (with_steps(make_step(prefix_tokens=300)),
                                 "steps[0].prefix_tokens: must be 0 when prefix_id is null (got 300); "
                                 "name the prefix or count it in the first turn"),
    "prefix id without tokens": (with_steps(make_step(prefix_id="sys")),
                                 "steps[0].prefix_tokens: must be >= 1 when prefix_id is set (got 0); "
                                 "give the prefix's length or set prefix_id to null"),
    "duplicate step": (with_steps(make_step("a"), make_step("b"), make_step("a")),
                       "steps[2].step_id: duplicate step id 'a' (first at steps[0])"),
    "unknown dep": (with_steps(make_step("plan"), make_step("work", deps=["plan", "plna"])),
                    "steps[1].deps[1]: unknown step 'plna'; expected one of: plan, work"),
    "dep twice": (with_steps(make_step("a"), make_step("b", deps=["a", "a"])),
                  "steps[1].deps[1]: step 'a' is listed twice"),
    "self dep": (with_steps(make_step("a", deps=["a"])),
                 "steps[0].deps: dependency cycle a -> a (each step waits for the next)"),
    "cycle": (with_steps(make_step("root"), make_step("a", deps=["root", "c"]),
                         make_step("b", deps=["a"]), make_step("c", deps=["b"])),
              "steps[1].deps: dependency cycle a -> c -> b -> a (each step waits for the next)"),
    "human tool name": (with_turn(tool="human", tool_duration=3),
                        "steps[0].turns[1].tool: 'human' is reserved for think time; for a "
                        "reply a person answers, set tool to null and the gap in think_s"),
    "think time on a tool turn": (
        with_turn(tool="t", tool_duration=1, think_s=5),
        "steps[0].turns[1].think_s: must be 0 when tool is set (got 5.0); think time "
        "follows a reply that calls no tool"),
    "think time on the last turn": (
        with_turn(think_s=60),
        "steps[0].turns[1].think_s: must be 0 on a step's last turn (got 60.0); no "
        "request follows it"),
    "negative think time": (with_turn(think_s=-1),
                            "steps[0].turns[1].think_s: input should be greater than or "
                            "equal to 0 (got -1)"),
    "compaction on the first turn": (
        with_steps(make_step(turns=[make_turn(summary_tokens=500), make_turn()])),
        "steps[0].turns[0].summary_tokens: must be null on a step's first turn: there is "
        "no conversation yet to compact"),
    "empty summary": (with_turn(summary_tokens=0),
                      "steps[0].turns[1].summary_tokens: input should be greater than or "
                      "equal to 1 (got 0)"),
    "spawn without a tool": (
        with_steps(make_step("a", turns=[make_turn(spawns=["b"]), make_turn()]),
                   make_step("b")),
        'steps[0].turns[0].spawns: a turn that spawns subagents must name the tool that '
        'starts them (for example "task")'),
    "spawn with a duration": (
        with_steps(make_step("a", turns=[make_turn(tool="task", tool_duration=2,
                                                   spawns=["b"])]), make_step("b")),
        "steps[0].turns[0].tool_duration: must be 0 when the turn spawns subagents "
        "(got 2.0); the wait lasts until they finish"),
    "unknown spawn": (
        with_steps(make_step("a", turns=[make_turn(tool="task", spawns=["c"])]),
                   make_step("b")),
        "steps[0].turns[0].spawns[0]: unknown step 'c'; expected one of: a, b"),
    "spawned twice": (
        with_steps(make_step("a", turns=[make_turn(tool="task", spawns=["b"]),
                                         make_turn(tool="task", spawns=["b"])]),
                   make_step("b")),
        "steps[0].turns[1].spawns[0]: step 'b' is already spawned by step 'a'; a step is "
        "spawned once"),
    "spawned step with deps": (
        with_steps(make_step("a", turns=[make_turn(tool="task", spawns=["b"])]),
                   make_step("c"), make_step("b", deps=["c"])),
        "steps[2].deps: a spawned step starts when its parent's turn ends; it cannot wait "
        "on steps (got ['c'])"),
    "spawned step waited on": (
        with_steps(make_step("a", turns=[make_turn(tool="task", spawns=["b"])]),
                   make_step("b"), make_step("c", deps=["b"])),
        "steps[1].step_id: step 'b' is spawned, so no step may list it in deps (the "
        "spawning step waits for it)"),
    "spawned step with a prefix": (
        with_steps(make_step("a", turns=[make_turn(tool="task", spawns=["b"])]),
                   make_step("b", prefix_id="sys", prefix_tokens=10)),
        "steps[1].prefix_id: must be null on a spawned step: it starts as a fork of its "
        "parent's conversation"),
    "spawn cycle": (
        with_steps(make_step("root"),
                   make_step("a", turns=[make_turn(tool="task", spawns=["b"])]),
                   make_step("b", turns=[make_turn(tool="task", spawns=["a"])])),
        "steps[1].turns: spawn cycle a -> b -> a (each step spawns the next)"),
    "feature not a category or size": (
        make_program(features={"repo": [1]}),
        "features.repo: must be a category (a non-empty string) or a size (a number) "
        "(got [1])"),
    "feature neither category nor size": (
        make_program(features={"big": True}),
        "features.big: must be a category (a non-empty string) or a size (a number) "
        "(got true)"),
    "NaN": ('{"program_id": "p", "arrival": NaN, "steps": [{"step_id": "s", "turns": '
            '[{"input_tokens": 1, "output_tokens": 1}]}]}',
            "arrival: input should be a finite number (got NaN)"),
    "bad JSON": ('{"program_id": "p", "steps": [}',
                 "invalid JSON: Expecting value at column 31"),
    "duplicate key": ('{"program_id": "p", "program_id": "q", "steps": []}',
                      "invalid JSON: key 'program_id' appears twice in one object"),
}


@pytest.mark.parametrize("program, expected", ERRORS.values(), ids=ERRORS.keys())
def test_each_error_names_the_file_line_field_and_problem(program, expected):
    error = error_of(program)
    assert str(error) == f"t.jsonl line 3: {expected}"
    assert [(i.source, i.line) for i in error.issues] == [("t.jsonl", 3)]


def test_a_program_id_used_twice_names_both_lines():
    error = error_of(make_program("a"), make_program("b"), make_program("a"))
    assert str(error) == "t.jsonl line 5: program_id: duplicate program id 'a' (first on line 3)"


def test_all_problems_of_a_file_are_reported_together_in_file_order():
    error = error_of(make_program("ok"), with_turn(output_tokens=0), "{",
                     with_steps(make_step("a", deps=["b"])), make_program("ok"))
    assert error.total == 4
    assert [(i.line, i.path) for i in error.issues] == [
        (4, "steps[0].turns[1].output_tokens"), (5, ""), (6, "steps[0].deps[0]"),
        (7, "program_id")]
    assert str(error).startswith("4 problems in the trace:\n  t.jsonl line 4: ")


def test_one_line_with_several_bad_fields_reports_each():
    error = error_of(make_program(arrival=-1, steps=[make_step(turns=[make_turn(0, 0)])]))
    assert [i.path for i in error.issues] == [
        "arrival", "steps[0].turns[0].input_tokens", "steps[0].turns[0].output_tokens"]


def test_reports_stop_at_max_errors_but_count_every_problem():
    bad = [with_turn(output_tokens=0) for _ in range(30)]
    with pytest.raises(TraceError) as info:
        parse_trace_lines([line(p) for p in bad], source="t.jsonl", max_errors=20)
    assert (len(info.value.issues), info.value.total) == (20, 30)
    assert str(info.value).endswith("\n  ... and 10 more")


def test_load_trace_names_the_file(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(line(make_program()) + "\n" + line(with_turn(output_tokens=0)) + "\n")
    with pytest.raises(TraceError, match=rf"^{re.escape(str(path))} line 2: steps\[0\]\.turns\[1\]"):
        load_trace(path)


def test_trace_error_is_a_value_error_that_pickles():
    error = error_of(with_turn(output_tokens=0), "{")
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again, ValueError)
    assert (str(again), again.issues, again.total) == (str(error), error.issues, 2)


def test_program_from_dict_raises_with_the_field_path():
    with pytest.raises(TraceError, match=r"^<dict>: steps\[0\]\.turns\[1\]\.output_tokens: "):
        program_from_dict(with_turn(output_tokens=0))


# -- dump refuses what would not load back -----------------------------------------------
def test_dump_refuses_an_invalid_program_and_writes_nothing(tmp_path):
    bad = ProgramSpec("p", [StepSpec("s", [TurnSpec(10, 1)], prefix_tokens=50)])
    path = tmp_path / "t.jsonl"
    with pytest.raises(TraceError, match=r"line 3: steps\[0\]\.prefix_tokens: must be 0"):
        dump_trace([program_from_dict(make_program("ok")), bad], path)
    assert not path.exists()


def test_dump_names_the_field_of_a_non_json_number(tmp_path):
    bad = ProgramSpec("p", [StepSpec("s", [TurnSpec(10, 1)])], arrival=math.nan)
    with pytest.raises(TraceError, match=r"line 2: arrival: input should be a finite number"):
        dump_trace([bad], tmp_path / "t.jsonl")


def test_dump_names_meta_that_is_not_json(tmp_path):
    bad = ProgramSpec("p", [StepSpec("s", [TurnSpec(10, 1)])], meta={"when": object()})
    with pytest.raises(TraceError, match=r"line 2: meta: not JSON-serializable"):
        dump_trace([bad], tmp_path / "t.jsonl")


def test_dump_refuses_duplicate_program_ids(tmp_path):
    p = program_from_dict(make_program("same"))
    with pytest.raises(TraceError, match="line 3: program_id: duplicate program id 'same'"):
        dump_trace([p, p], tmp_path / "t.jsonl")
