"""The performance model against published figures (CALIBRATION.md)."""
from __future__ import annotations

import math

import pytest

from runtime.engines import (
    MODELS, Efficiencies, ModelSpec, PerfModel, attention_pairs, get_gpu, get_model,
)

# Llama-2 shapes from the public Hugging Face config.json files.
LLAMA2_7B = ModelSpec.from_config({
    "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 32, "intermediate_size": 11008, "vocab_size": 32000,
    "max_position_embeddings": 4096, "torch_dtype": "float16",
}, name="Llama-2-7B")
LLAMA2_70B = ModelSpec.from_config({
    "hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64,
    "num_key_value_heads": 8, "intermediate_size": 28672, "vocab_size": 32000,
    "max_position_embeddings": 4096, "torch_dtype": "float16",
}, name="Llama-2-70B")
# Llama-3 8B/70B have the layer shapes of Llama-3.1 (3.1 changed RoPE scaling and context).
LLAMA3_8B, LLAMA3_70B = MODELS["llama-3.1-8b"], MODELS["llama-3.1-70b"]

# Vidur per-operator profiles (Agrawal et al., "Vidur: A Large-Scale Simulation Framework
# for LLM Inference", MLSys 2024), as tabulated in CALIBRATION.md: linear layers only,
# summed over layers, milliseconds per forward pass by batched tokens. "1-64 tokens" is
# checked at both ends; "large batches" (tokens/s) at 8192 batched tokens.
VIDUR_LINEAR_MS = [
    # model, GPU, TP, {tokens: ms}, large-batch tokens/s
    (LLAMA3_8B, "A100-SXM-80G", 1,
     {1: 9.7, 64: 11.2, 128: 13.2, 256: 19.5, 512: 34.6, 1024: 75.0}, 15_000),
    (LLAMA3_70B, "A100-SXM-80G", 4,
     {1: 24.9, 64: 26.9, 128: 33.5, 256: 51.0, 512: 89.9, 1024: 187.0}, 6_300),
    (LLAMA2_7B, "H100-SXM", 1,
     {1: 5.5, 64: 5.9, 128: 6.4, 256: 9.2, 512: 12.0, 1024: 21.0}, 50_000),
    (LLAMA2_70B, "H100-SXM", 4,
     {1: 14.3, 64: 15.3, 128: 15.9, 256: 19.2, 512: 30.0, 1024: 62.0}, 18_500),
]
LARGE_BATCH = 8192

# Excluded from the 10% bound, with the reason; still held to 20%.
KNEE_EXCLUSIONS = {
    ("Llama-2-7B", 256): (
        "knee of a single profile: Llama-2-7B/H100 jumps 44% from 128 to 256 tokens "
        "(6.4 -> 9.2 ms) and only 30% from 256 to 512, while Llama-2-70B/TP4 on the same "
        "GPU is within 7% at 256 tokens; no smooth function of weight and FLOP time "
        "fits both"
    ),
}


def _points():
    for model, gpu, tp, table, large in VIDUR_LINEAR_MS:
        for tokens, ms in table.items():
            yield pytest.param(model, gpu, tp, tokens, ms / 1e3,
                               id=f"{model.name}/{gpu}/tp{tp}/{tokens}tok")
        yield pytest.param(model, gpu, tp, LARGE_BATCH, LARGE_BATCH / large,
                           id=f"{model.name}/{gpu}/tp{tp}/large-batch")


def relative_error(model: ModelSpec, gpu: str, tp: int, tokens: int, reference_s: float) -> float:
    return PerfModel(model, gpu, tp).linear_time(tokens) / reference_s - 1


@pytest.mark.parametrize("model,gpu,tp,tokens,reference_s", list(_points()))
def test_linear_layers_match_the_vidur_profiles(model, gpu, tp, tokens, reference_s):
    err = relative_error(model, gpu, tp, tokens, reference_s)
    bound = 0.20 if (model.name, tokens) in KNEE_EXCLUSIONS else 0.10
    assert abs(err) <= bound, f"{err:+.1%} off the reference"


def test_the_calibration_table_fits_within_9_percent_outside_the_excluded_knee():
    errors = [
        relative_error(*p.values) for p in _points()
        if (p.values[0].name, p.values[3]) not in KNEE_EXCLUSIONS
    ]
    assert max(map(abs, errors)) < 0.09  # worst: 70B/A100 large batch, +8.0%


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
