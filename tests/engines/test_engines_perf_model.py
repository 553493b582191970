"""The performance model against published figures (CALIBRATION.md)."""
from __future__ import annotations

import math

import pytest

from agentrt.runtime.engines import Efficiencies, ModelSpec, PerfModel, attention_pairs, get_gpu, get_model
from agentrt.runtime.engines.simulated import fidelity, fidelity_serving
from agentrt.runtime.engines.simulated.fidelity import LLAMA2_7B
from agentrt.runtime.engines.simulated.perf_model import EFFICIENCIES



def _points():
    for point in fidelity.measurement_points():
        yield pytest.param(point, id=point.label)


@pytest.mark.parametrize("point", list(_points()))
def test_linear_layers_match_the_vidur_profiles(point):
    assert abs(point.error) <= point.bound, f"{point.error:+.1%} off the reference"


def test_the_calibration_table_fits_within_9_percent_outside_the_excluded_knee():
    errors = [p.error for p in fidelity.measurement_points() if p.bound == 0.10]
    assert max(map(abs, errors)) < 0.09  # worst: 70B/A100 large batch, +8.0%


@pytest.mark.parametrize("point", fidelity.floor_points(), ids=lambda p: p.label)
def test_steps_stay_above_the_roofline_floors_within_the_fitted_efficiencies(point):
    # A step can never beat peak bandwidth or peak FLOP/s; with the fitted efficiencies
    # (0.64-0.68) plus attention, all-reduce and CPU it lands between 1.4x and 2.2x.
    assert 1.3 < point.model / point.reference < 2.2


def test_the_fidelity_table_in_the_docs_is_current():
    from pathlib import Path
    doc = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"
    assert fidelity.markdown() in doc.read_text()
    assert fidelity_serving.markdown() in doc.read_text()


def test_the_per_step_cpu_time_is_the_end_to_end_fit():
    # Fitted on the H100 serving points only; the default must be that value.
    assert fidelity_serving.fit_cpu_step() == pytest.approx(EFFICIENCIES.cpu_step, abs=1e-5)


@pytest.mark.parametrize("point", [p for p in fidelity_serving.POINTS],
                         ids=lambda p: p.label)
def test_published_serving_points_are_within_10_percent(point):
    # The "check" points were never fitted: their error is the held-out error.
    assert abs(point.error()) < 0.10, (point.label, point.model(), point.reference)


@pytest.mark.parametrize("model,tp,expected", [("Llama-3.1-8B", 1, 427_000),
                                               ("Llama-3.1-70B", 4, 448_000)])
def test_kv_capacity_is_near_the_quoted_figures(model, tp, expected):
    tokens = PerfModel(model, "H100-SXM", tp).kv_capacity_tokens(0.9)
    assert tokens == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("model,tp,expected_us",
                         [("Llama-3.1-8B", 1, 27), ("Llama-3.1-70B", 4, 60)])
def test_recompute_costs_about_the_quoted_time_per_token(model, tp, expected_us):
    perf = PerfModel(model, "H100-SXM", tp)
    per_token_us = perf.recompute_time(4096) / 4096 * 1e6
    # CALIBRATION.md's figures are FLOP estimates; ours adds attention and all-reduce.
    assert per_token_us == pytest.approx(expected_us, rel=0.2)


@pytest.mark.parametrize("model,tp,expected_us",
                         [("Llama-3.1-8B", 1, 2.6), ("Llama-3.1-70B", 4, 1.6)])
def test_reload_from_host_costs_the_quoted_time_per_token(model, tp, expected_us):
    perf = PerfModel(model, "H100-SXM", tp)
    assert perf.reload_time(1000) / 1000 * 1e6 == pytest.approx(expected_us, rel=0.05)
    assert perf.recompute_time(1000) / perf.reload_time(1000) > 8  # reload is far cheaper


def test_model_specs_match_the_public_configs():
    m8, m70 = get_model("llama-3.1-8b"), get_model("LLAMA-3.1-70B")
    assert (m8.params, m70.params) == (8_030_261_248, 70_553_706_496)
    assert (m8.kv_bytes_per_token, m70.kv_bytes_per_token) == (128 * 1024, 320 * 1024)


def test_from_config_counts_parameters_and_rejects_bad_configs():
    assert LLAMA2_7B.params == pytest.approx(6.74e9, rel=0.01)
    assert LLAMA2_7B.dtype_bytes == 2 and LLAMA2_7B.kv_heads == 32
    with pytest.raises(ValueError, match="hidden_size"):
        ModelSpec.from_config({"num_hidden_layers": 2})


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="Llama-3.1-8B"):
        get_model("gpt-5")
    with pytest.raises(ValueError, match="H100-SXM"):
        get_gpu("tpu-v5")
    with pytest.raises(ValueError, match="tp=3"):
        PerfModel("Llama-3.1-8B", "H100-SXM", tp=3)
    with pytest.raises(ValueError, match="nvlink"):
        PerfModel("Llama-3.1-8B", "H100-SXM").transfer_time(10, "carrier-pigeon")


def test_decode_time_grows_with_batch_and_context():
    perf = PerfModel("Llama-3.1-8B", "H100-SXM")
    tpots = [perf.decode_tpot(b, 2048) for b in (1, 8, 64, 256)]
    assert tpots == sorted(tpots) and tpots[-1] > 2 * tpots[0]
    assert perf.decode_tpot(64, 8192) > perf.decode_tpot(64, 1024)
    # Batch of one is weight-read bound: about 15 GB over 0.68 x 3.35 TB/s, plus CPU.
    assert 6e-3 < tpots[0] < 9e-3


def test_tensor_parallelism_adds_all_reduce_and_splits_the_rest():
    tp1, tp4 = PerfModel("Llama-3.1-70B", "H100-SXM", 1), PerfModel("Llama-3.1-70B", "H100-SXM", 4)
    assert tp4.decode_tpot(32, 2048) < tp1.decode_tpot(32, 2048) / 2
    assert tp4.transfer_time(1000, "nvlink") < tp4.transfer_time(1000, "network")


def test_the_fast_path_equals_the_per_sequence_form():
    perf = PerfModel("Llama-3.1-70B", "H100-SXM", 4)
    chunks, contexts = [(512, 0), (2048, 10_000), (1, 300)], [1000, 2500, 7]
    fast = perf.step_time_totals(
        sum(n for n, _ in chunks), sum(attention_pairs(n, c) for n, c in chunks),
        len(contexts), sum(contexts), len(chunks) + len(contexts))
    assert perf.step_time(chunks, contexts) == pytest.approx(fast, rel=1e-12)
    assert perf.step_time([], []) == 0.0


def test_a_hard_max_is_the_infinite_knee_limit():
    hard = PerfModel("Llama-3.1-8B", "H100-SXM", efficiencies=Efficiencies(knee_p=math.inf))
    soft = PerfModel("Llama-3.1-8B", "H100-SXM", efficiencies=Efficiencies(knee_p=8.0))
    assert hard.linear_time(1) == pytest.approx(soft.linear_time(1), rel=1e-6)
    assert hard.linear_time(300) <= soft.linear_time(300)


def test_a_host_memory_tier_holds_several_times_the_gpu_cache():
    perf = PerfModel("Llama-3.1-8B", "H100-SXM")
    # half of 256 GB of server memory per GPU at 128 KiB per token
    assert perf.host_kv_capacity_tokens(0.5) == int(128e9 / (128 * 1024))
    assert perf.host_kv_capacity_tokens(0.5) > 2 * perf.kv_capacity_tokens()
    with pytest.raises(ValueError, match="fraction"):
        perf.host_kv_capacity_tokens(0)
