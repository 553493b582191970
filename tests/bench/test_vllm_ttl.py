"""The CPU-backend policy benchmark's parts that need no vLLM: the step-time fit and its
held-out check, the fitted machine registered with the simulator, the workload, and the
rank agreement it prints."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from agentrt.runtime.bench import cpu_calibration as cal
from agentrt.runtime.bench.vllm_ttl import (
    POLICIES, compare, kendall_tau, ranks, run_sim, workload,
)
from agentrt.runtime.engines.simulated.hardware import register_gpu
from agentrt.runtime.engines.simulated.perf_model import PerfModel

TINY = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 344, "vocab_size": 4100,
        "max_position_embeddings": 2048, "torch_dtype": "bfloat16"}
TRUTH = (3e-3, 2e-4, 2e-5, 1e-9, 1e-8)  # cpu_step, per_seq, per_token, per_pair, per_kv


def synthetic_points() -> list[cal.StepPoint]:
    fit = cal.CpuFit(*TRUTH, 0.0, 0.0)
    points = [cal.StepPoint("prefill", n, 0, 0.0) for n in cal.PREFILLS]
    points += [cal.StepPoint("decode", b, c, 0.0) for b, c in cal.DECODES]
    return [cal.StepPoint(p.kind, p.size, p.context, fit.predict(p)) for p in points]


def test_the_fit_recovers_exact_step_times_and_checks_on_held_out_points():
    fitted = cal.fit(synthetic_points())
    assert fitted.cpu_step == pytest.approx(TRUTH[0], rel=1e-6)
    assert fitted.per_token == pytest.approx(TRUTH[2], rel=1e-6)
    assert fitted.fit_error < 1e-6 and fitted.check_error < 1e-6
    assert "held-out" in cal.report(synthetic_points(), fitted)


def test_the_registered_machine_charges_the_fitted_step_times(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    fitted = cal.fit(synthetic_points())
    model, gpu = cal.register(fitted, tmp_path, "tiny-test", "cpu-test-fitted")
    perf = PerfModel(model, gpu)
    for point in synthetic_points():
        if point.kind == "prefill":
            modelled = perf.prefill_time(point.size)
        else:
            modelled = perf.decode_tpot(point.size, point.context)
        assert modelled == pytest.approx(point.seconds, rel=0.02), point
    with pytest.raises(ValueError, match="published entry"):
        register_gpu(replace(perf.gpu, name="H100-SXM"))


def test_the_workload_and_the_simulated_side_of_the_comparison(tmp_path):
    programs = workload(programs=4, turns=3, first_input=300, turn_input=50)
    assert [len(p.steps[0].turns) for p in programs] == [3] * 4
    assert all(p.steps[0].turns[-1].tool is None for p in programs)
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    names = cal.register(cal.fit(synthetic_points()), tmp_path, "tiny-test", "cpu-test-fitted")
    sim = run_sim(programs, ("none", "agentrt"), 2, names)
    assert set(sim) == {"none", "agentrt"} and all(jct > 0 for jct, _ in sim.values())
    assert set(POLICIES) >= set(sim)


def test_rank_agreement():
    a = {"x": 1.0, "y": 2.0, "z": 3.0}
    assert ranks(a) == {"x": 1, "y": 2, "z": 3}
    assert kendall_tau(a, {"x": 10.0, "y": 20.0, "z": 30.0}) == 1.0
    assert kendall_tau(a, {"x": 3.0, "y": 2.0, "z": 1.0}) == -1.0


def test_bootstrap_refits_recover_exact_steps_and_scatter_with_noise():
    exact = cal.refits(synthetic_points(), 8, seed=0)
    assert len(exact) == 8 and max(f.fit_error for f in exact) < 1e-6
    noisy = [replace(p, seconds=p.seconds * (1.2 if i % 3 == 0 else 0.9))
             for i, p in enumerate(synthetic_points())]
    fits = cal.refits(noisy, 8, seed=0)
    assert len({round(f.per_token, 12) for f in fits}) > 1  # resamples differ
    assert [f.per_token for f in fits] == [f.per_token for f in cal.refits(noisy, 8, seed=0)]


def test_the_comparison_orders_pairs_by_paired_rounds_and_stable_refits():
    sim = {"none": (4.0, 0.1), "fixed": (5.0, 0.2), "agentrt": (5.05, 0.2)}
    refits = [{"none": 4.0, "fixed": 5.0, "agentrt": 5.05},
              {"none": 4.1, "fixed": 5.1, "agentrt": 4.9}]  # fixed/agentrt flips
    cpu = {"none": [(4.2, 0.1, {}), (4.8, 0.1, {}), (4.4, 0.1, {})],
           "fixed": [(5.3, 0.2, {}), (5.9, 0.2, {}), (5.5, 0.2, {})],
           "agentrt": [(5.2, 0.2, {}), (6.2, 0.2, {}), (5.4, 0.2, {})]}
    text, result = compare(cpu, sim, refits)
    assert (result.concordant, result.discordant) == (2, 0)
    assert result.unordered_x == 1 and result.unordered_y == 1  # fixed vs agentrt
    assert "The rankings agree." in text and "neither side can tell" in text
    cpu["none"] = [(6.2, 0.1, {}), (6.8, 0.1, {}), (6.4, 0.1, {})]  # now slowest
    text, result = compare(cpu, sim, refits)
    assert result.discordant == 2 and "DISAGREE" in text and "do NOT agree" in text
