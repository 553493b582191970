"""The raw duration data the Continuum rule reads, through DurationModel's accessors."""
from __future__ import annotations

from agentrt.runtime.core.retention.tool_cdf import (
    global_samples,
    observed_mean,
    observed_samples,
    total_samples,
)
from tests.retention.builders import make_durations


def test_observed_and_global_samples_come_sorted_and_ignore_priors():
    durations = make_durations({"grep": [0.3, 0.1, 0.2], "pytest": [9.0]}, pytest=30.0)
    assert list(observed_samples(durations, "grep")) == [0.1, 0.2, 0.3]
    assert list(global_samples(durations)) == [0.1, 0.2, 0.3, 9.0]
    assert observed_mean(durations, "pytest") == 9.0  # the 30 s prior is not observed
    assert (observed_samples(durations, "build"), observed_mean(durations, "build")) == ((), 0.0)
    assert total_samples(durations) == 4
    assert durations.empirical("build") is None
    assert durations.global_empirical().count == 4
