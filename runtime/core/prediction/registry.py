"""Size predictors by name (`SizePredictor`, runtime.core.prediction.base):

    loglinear   a ridge regression of log(size) on every feature, with the spread of
                its errors (runtime.core.prediction.loglinear)
    buckets     empirical distributions per bucket of features, backing off to coarser
                buckets (runtime.core.prediction.buckets)
"""
from __future__ import annotations

from typing import Any, Callable

from agentrt.runtime.core.prediction.base import SizePredictor
from agentrt.runtime.core.prediction.buckets import BucketPredictor
from agentrt.runtime.core.prediction.loglinear import LogLinearPredictor

PREDICTORS: dict[str, Callable[..., SizePredictor]] = {
    "loglinear": LogLinearPredictor, "buckets": BucketPredictor,
}


def make_predictor(name: str, **options: Any) -> SizePredictor:
    """A fresh predictor of the given name with its options (see each class). Raises
    ValueError listing the valid names, or naming an option the predictor lacks."""
    try:
        factory = PREDICTORS[name]
    except KeyError:
        raise ValueError(f"unknown size predictor {name!r}; valid: "
                         f"{', '.join(sorted(PREDICTORS))}") from None
    try:
        return factory(**options)
    except TypeError as e:
        raise ValueError(f"size predictor {name!r}: {e}") from None
