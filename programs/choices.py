"""Declared choices of a step: candidate models, parallel samples and a verifier.

    @tool
    def passes_tests(sample: str, task_id: str) -> bool: ...

    @step(candidates=[Candidate("llama-3.1-8b", p=0.4, output_tokens=300),
                      Candidate("llama-3.1-70b", p=0.7, output_tokens=350)],
          max_samples=4, verifier=passes_tests)
    async def implement(ctx, task_id): ...

A candidate says what the planner should believe before it has seen a sample: the
probability that one sample of that model passes the verifier, and the sample's expected
output length. The verifier is a ``@tool`` taking the sample's text as ``sample`` (plus
whatever the step passes to ``ctx.sample``) and returning a bool, or a dict with a bool
``"passed"``. Whether a model is known (priced and served) is the runtime's business and
checked when a program is submitted; everything else is checked here, at decoration.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentrt.programs.errors import ChoiceDeclarationError
from agentrt.programs.tool_def import Tool

DEFAULT_MAX_SAMPLES = 4
SAMPLE_PARAM = "sample"


class Candidate(BaseModel):
    """One model a step may sample, with the planner's prior about it."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    model: str = Field(min_length=1)
    """Model name; must be priced in the runtime's config and served by its workers."""
    p: float = Field(gt=0.0, le=1.0)
    """Prior probability that one sample passes the verifier, in (0, 1]."""
    output_tokens: int = Field(default=300, gt=0)
    """Expected (median) output length of one sample, in tokens."""
    strength: float = Field(default=4.0, gt=0.0)
    """How many observed samples the prior ``p`` is worth."""
    p_uncertainty: float | None = Field(default=None, gt=0.0)
    """How far off the told ``p`` may be, as one standard deviation on the logit scale;
    when given, the prior becomes the Beta matching sigmoid(logit p + sigma Z) and
    ``strength`` is derived from it."""
    output_sigma: float = Field(default=0.5, ge=0.0)
    """Spread of one sample's length: the log-normal sigma around ``output_tokens``."""
    length_strength: float = Field(default=4.0, gt=0.0)
    """How many observed samples the length prior is worth."""
    output_uncertainty: float = Field(default=0.0, ge=0.0)
    """How far off the told median length may be (log scale, one standard deviation)."""

    def __init__(self, model: str | None = None, /, **fields: Any) -> None:
        if model is not None:
            fields["model"] = model
        super().__init__(**fields)


class Choices(NamedTuple):
    """A step's checked declaration (``candidates`` empty: the step declares none)."""

    candidates: tuple[Candidate, ...]
    max_samples: int
    verifier: Tool | None


def check_choices(step_name: str, candidates: Sequence[Any] | None, max_samples: int | None,
                  verifier: Any, max_tokens: int) -> Choices:
    """Validate ``@step(candidates=, max_samples=, verifier=)``; raises
    ``ChoiceDeclarationError`` naming the problem and the fix."""
    if not candidates:
        if candidates is not None:
            raise ChoiceDeclarationError(
                f"step {step_name!r} has an empty candidates= list; list at least one "
                "Candidate(model, p=...), or leave candidates= out")
        if max_samples is not None or verifier is not None:
            raise ChoiceDeclarationError(
                f"step {step_name!r} sets max_samples= or verifier= without candidates=; "
                "declare the models to sample: candidates=[Candidate('llama-3.1-8b', p=0.5)]")
        return Choices((), 1, None)
    parsed = tuple(_candidate(step_name, i, c) for i, c in enumerate(_as_list(candidates)))
    _check_unique(step_name, parsed)
    _check_lengths(step_name, parsed, max_tokens)
    return Choices(parsed, _check_samples(step_name, max_samples),
                   _check_verifier(step_name, verifier))


def _as_list(candidates: Any) -> list[Any]:
    if isinstance(candidates, (str, Candidate, Mapping)):
        return [candidates]
    return list(candidates)


def _candidate(step_name: str, index: int, entry: Any) -> Candidate:
    if isinstance(entry, Candidate):
        return entry
    try:
        if isinstance(entry, Mapping):
            return Candidate(**entry)
        if isinstance(entry, (tuple, list)) and entry and isinstance(entry[0], str):
            return Candidate(**dict(zip(("model", "p", "output_tokens", "strength"), entry)))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}"
                             for e in exc.errors())
        raise ChoiceDeclarationError(
            f"step {step_name!r}: candidates[{index}] is invalid ({problems}); p is one "
            "sample's chance to pass the verifier, in (0, 1], and output_tokens > 0") from None
    raise ChoiceDeclarationError(
        f"step {step_name!r}: candidates[{index}] is a {type(entry).__name__} ({entry!r}); "
        "give Candidate('model', p=..., output_tokens=...), a dict with those keys or a "
        "(model, p, output_tokens) tuple")


def _check_unique(step_name: str, parsed: tuple[Candidate, ...]) -> None:
    names = [c.model for c in parsed]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ChoiceDeclarationError(
            f"step {step_name!r} lists model(s) {repeated} more than once in candidates=; "
            "give one Candidate per model")


def _check_lengths(step_name: str, parsed: tuple[Candidate, ...], max_tokens: int) -> None:
    for c in parsed:
        if c.output_tokens > max_tokens:
            raise ChoiceDeclarationError(
                f"step {step_name!r}: candidate {c.model!r} expects {c.output_tokens} "
                f"output tokens, more than the step's max_tokens={max_tokens}; raise "
                "max_tokens or lower output_tokens")


def _check_samples(step_name: str, max_samples: int | None) -> int:
    if max_samples is None:
        return DEFAULT_MAX_SAMPLES
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ChoiceDeclarationError(
            f"step {step_name!r}: max_samples={max_samples!r}; it is the most parallel "
            "samples the planner may draw at once, an int >= 1")
    return max_samples


def _check_verifier(step_name: str, verifier: Any) -> Tool | None:
    if verifier is None:
        return None
    if not isinstance(verifier, Tool):
        shown = getattr(verifier, "__name__", None) or repr(verifier)
        raise ChoiceDeclarationError(
            f"step {step_name!r}: verifier={shown} is a {type(verifier).__name__}, not a "
            "@tool; decorate the checking function with @agentrt.tool and pass the "
            "decorated object")
    params = inspect.signature(verifier.fn).parameters
    if SAMPLE_PARAM not in params:
        raise ChoiceDeclarationError(
            f"step {step_name!r}: verifier {verifier.name!r} has no `{SAMPLE_PARAM}` "
            f"parameter (it has {list(params)}); the runtime passes each sample's text "
            f"as `{SAMPLE_PARAM}=`, so add `{SAMPLE_PARAM}: str` to its signature")
    return verifier
