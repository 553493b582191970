"""The rollout tables' geometric axis: which cell a budget or time left falls in."""
import warnings

import numpy as np

from agentrt.runtime.core.planner.rollout import _LogAxis


def test_values_below_lo_zero_and_negative_land_in_cell_zero_without_warnings():
    axis = _LogAxis(lo=0.01, hi=10.0, cells=8)
    for dtype in (np.float64, np.float32):
        x = np.array([-1.0, 0.0, 1e-30, 0.005, 0.00999], dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert axis.cell(x).tolist() == [0, 0, 0, 0, 0]


def test_cells_follow_the_geometric_edges_and_clip_at_the_top():
    axis = _LogAxis(lo=1.0, hi=1000.0, cells=4)  # edges 1, 10, 100, 1000
    x = np.array([1.0, 9.9, 10.5, 99.0, 101.0, 999.0, 1001.0, 1e9])
    assert axis.cell(x).tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
