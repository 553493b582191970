"""Declared choices on a step: candidate models with priors, max samples and a verifier;
each bad declaration names the problem and the fix."""

from __future__ import annotations

import pytest

from agentrt.programs import Candidate, ChoiceDeclarationError, program, step, tool


@tool(executor="inline")
def passes(sample: str, task: str = "") -> bool:
    return "ok" in sample


@tool(executor="inline")
def no_sample(text: str) -> bool:
    return True


def declare(**options):
    return step(name="solve", **options)(lambda ctx: None)


def test_a_declaration_is_kept_on_the_step_options():
    s = declare(candidates=[Candidate("small", p=0.4, output_tokens=200),
                            {"model": "large", "p": 1.0}], max_samples=8, verifier=passes,
                prompt_tokens=3000)
    opts = s.options
    assert [c.model for c in opts.candidates] == ["small", "large"]
    assert opts.candidates[1] == Candidate(model="large", p=1.0, output_tokens=300)
    assert (opts.max_samples, opts.verifier, opts.prompt_tokens, opts.planned) == (
        8, "passes", 3000, True)
    assert s.verifier is passes


def test_tuples_are_model_p_and_length_and_max_samples_defaults_to_four():
    s = declare(candidates=[("small", 0.3, 120)])
    assert s.options.candidates == (Candidate("small", p=0.3, output_tokens=120),)
    assert s.options.max_samples == 4 and s.verifier is None


def test_a_step_without_candidates_is_not_planned():
    assert not declare().options.planned
    assert declare().options.max_samples == 1


@pytest.mark.parametrize("candidates, message", [
    ([], "empty candidates= list"),
    ([("small", 0.0)], r"candidates\[0\] is invalid \(p=0.0"),
    ([("small", 1.5)], r"in \(0, 1\]"),
    ([{"model": "small", "p": 0.5, "output_tokens": 0}], "output_tokens"),
    (["small"], "is a str"),
    ([("small", 0.5), ("small", 0.7)], r"\['small'\] more than once"),
    ([("small", 0.5, 2000)], "more than the step's max_tokens=1024"),
])
def test_bad_candidates_name_the_problem(candidates, message):
    with pytest.raises(ChoiceDeclarationError, match=message):
        declare(candidates=candidates)


@pytest.mark.parametrize("max_samples", [0, -1, 2.5, True])
def test_max_samples_must_be_a_positive_int(max_samples):
    with pytest.raises(ChoiceDeclarationError, match="an int >= 1"):
        declare(candidates=[("small", 0.5)], max_samples=max_samples)


def test_the_verifier_must_be_a_tool_taking_the_sample():
    with pytest.raises(ChoiceDeclarationError, match="not a @tool; decorate"):
        declare(candidates=[("small", 0.5)], verifier=lambda sample: True)
    with pytest.raises(ChoiceDeclarationError, match="add `sample: str`"):
        declare(candidates=[("small", 0.5)], verifier=no_sample)


def test_samples_or_a_verifier_need_candidates():
    with pytest.raises(ChoiceDeclarationError, match="without candidates="):
        declare(verifier=passes)
    with pytest.raises(ChoiceDeclarationError, match="without candidates="):
        declare(max_samples=2)


def test_the_verifier_is_one_of_the_tools_the_graph_uses():
    solve = step(name="solve", candidates=[("small", 0.5)], verifier=passes)(
        lambda ctx, task: task)

    @program
    def prog(task: str):
        return solve(task)

    assert [t.name for t in prog.build("x").tools()] == ["passes"]
