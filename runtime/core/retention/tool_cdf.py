"""The raw empirical duration data TTL policies need from a `DurationModel`.

`DurationModel` answers blended queries (observed, prior, global). Continuum's rule
needs the raw pieces: a tool's own sorted samples, the global sorted samples, and the
mean of observed durations only, which it reads through `DurationModel.empirical`,
`DurationModel.global_empirical` and `EmpiricalCDF.sorted_samples`.

Everything returned is a sorted sequence owned by the model: do not mutate it, and do
not keep it past the next `record`.
"""
from __future__ import annotations

from collections.abc import Sequence

from agentrt.toolmgr.durations import DurationModel, EmpiricalCDF

_EMPTY: tuple[float, ...] = ()


def _samples(cdf: EmpiricalCDF | None) -> Sequence[float]:
    return cdf.sorted_samples if cdf is not None else _EMPTY


def observed_samples(durations: DurationModel, tool: str) -> Sequence[float]:
    """The tool's observed durations, sorted ascending (empty when unseen)."""
    return _samples(durations.empirical(tool))


def global_samples(durations: DurationModel) -> Sequence[float]:
    """Every tool's recent durations together, sorted ascending."""
    return _samples(durations.global_empirical())


def observed_mean(durations: DurationModel, tool: str) -> float:
    """Mean of the tool's observed durations only (no prior); 0.0 when unseen."""
    cdf = durations.empirical(tool)
    return cdf.mean if cdf is not None else 0.0


def total_samples(durations: DurationModel) -> int:
    """Observed samples kept over all tools."""
    return sum(durations.count(tool) for tool in durations.tools())
