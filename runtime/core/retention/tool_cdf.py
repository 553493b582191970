"""The raw empirical duration data TTL policies need from a `DurationModel`.

`DurationModel` answers blended queries (observed, prior, global). Continuum's rule
needs the raw pieces: a tool's own sorted samples, the global sorted samples, and the
mean of observed durations only. DurationModel keeps them in `EmpiricalCDF`s but does
not expose them yet, so this module is the ONE place that reads them, read-only; when
toolmgr grows public accessors (`DurationModel.empirical(tool)`,
`DurationModel.global_empirical()`, `EmpiricalCDF.sorted_samples`), only this file
changes.

Everything returned is a sorted sequence owned by the model: do not mutate it, and do
not keep it past the next `record`.
"""
from __future__ import annotations

from collections.abc import Sequence

from toolmgr.durations import DurationModel, EmpiricalCDF

_EMPTY: tuple[float, ...] = ()


def _samples(cdf: EmpiricalCDF | None) -> Sequence[float]:
    return cdf._sorted if cdf is not None else _EMPTY  # noqa: SLF001 (see module doc)


def observed_samples(durations: DurationModel, tool: str) -> Sequence[float]:
    """The tool's observed durations, sorted ascending (empty when unseen)."""
    return _samples(durations._observed.get(tool))  # noqa: SLF001


def global_samples(durations: DurationModel) -> Sequence[float]:
    """Every tool's recent durations together, sorted ascending."""
    return _samples(durations._global)  # noqa: SLF001


def observed_mean(durations: DurationModel, tool: str) -> float:
    """Mean of the tool's observed durations only (no prior); 0.0 when unseen."""
    cdf = durations._observed.get(tool)  # noqa: SLF001
    return cdf.mean if cdf is not None else 0.0


def total_samples(durations: DurationModel) -> int:
    """Observed samples kept over all tools."""
    return sum(durations.count(tool) for tool in durations.tools())
