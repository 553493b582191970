"""agentrt's runtime against real vLLM servers: programs that run unchanged, session
affinity across two replicas, a server that dies mid-run, program admission on a small
KV. CPU runs of a tiny model: the assertions are about what the runtime decides and
what the servers report, not about speed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentrt.runtime.bench import real_servers
from agentrt.runtime.config import RuntimeConfig
from tests.realserver.conftest import API_KEY, API_KEY_ENV, MODEL

pytestmark = [pytest.mark.realserver, pytest.mark.ray, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def test_the_coding_agent_runs_unchanged_against_a_real_server(victim, tmp_path):
    """`agentrt run examples/coding_agent.py --engine openai ...`: every program ends,
    the summary labels the figures as measured, each chat span names the provider and
    the server and carries the cached tokens the server reported."""
    proc = subprocess.run(
        [sys.executable, "-m", "agentrt.runtime.cli", "run", "examples/coding_agent.py",
         "--engine", "openai", "--base-url", victim.base_url, "--model", MODEL,
         "--provider", "vllm", "--programs", "2", "--trace-dir", str(tmp_path), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=540)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    assert "programs      2 done, 0 failed" in out
    assert "measured      tokens, cached tokens and times" in out and "simulated" not in out
    [trace] = tmp_path.glob("*/trace.jsonl")
    chats = [s for s in map(json.loads, trace.read_text().splitlines())
             if s["name"].startswith("chat ")]
    assert chats
    for span in chats:
        attrs = span["attributes"]
        assert attrs["gen_ai.provider.name"] == "vllm"
        assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == victim.port
        assert attrs["gen_ai.response.model"] == MODEL and attrs["gen_ai.response.id"]
        assert "gen_ai.usage.cache_read.input_tokens" in attrs
    assert sum(s["attributes"]["gen_ai.usage.cache_read.input_tokens"] for s in chats) > 0


def test_session_affinity_keeps_more_of_each_conversation_cached_than_round_robin(
        ray_cluster, realservers, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    urls = [realservers.primary.base_url, realservers.victim.base_url]
    if not realservers.victim.healthy():
        pytest.skip("the victim server is down (another test killed it)")
    sticky, rr = real_servers.affinity(urls, MODEL, [API_KEY_ENV, None], programs=6, turns=4,
                                       trace_dir=tmp_path)
    with capsys.disabled():
        print("\nCPU run, tiny model, two vLLM replicas\n" + real_servers.HEADER)
        print(sticky.row() + "\n" + rr.row())
    assert sticky.failed == rr.failed == 0
    assert sticky.cached_share > rr.cached_share


def test_a_server_killed_mid_run_fails_its_programs_with_a_clear_error(
        ray_cluster, victim, tmp_path):
    config = RuntimeConfig(pools=real_servers.pools([victim.base_url], MODEL, [None]),
                           stealing=False, trace_dir=tmp_path)
    inputs = [{"topic": f"city {i}", "turns": 6} for i in range(3)]
    import threading
    killer = threading.Timer(4.0, victim.kill)
    killer.start()
    started = time.monotonic()
    try:
        report = real_servers.agentrt.run(real_servers.conversation, inputs,
                                          **config.model_dump())
    finally:
        killer.cancel()
    assert time.monotonic() - started < 120  # nothing hangs
    failed = report.failed
    assert failed, "the programs outlived the server"
    for result in failed:
        assert result.status == "failed"
        assert "LLMCallError" in result.error and victim.base_url.split("/v1")[0] in result.error


def test_program_admission_on_a_small_kv_agrees_with_the_simulator_in_direction(
        ray_cluster, victim, tmp_path, capsys):
    """Ten conversations on one server with a 4,096-token KV (about twice what their
    contexts need), with agentrt's admission and without; the simulator on one worker
    with the same KV, side by side."""
    real = real_servers.admission([victim.base_url], MODEL, [None], programs=10, turns=4,
                                  policies=("agentrt-admission", None), trace_dir=tmp_path)
    simulated = real_servers.admission_simulated(victim.spec.num_gpu_blocks * 32,
                                                 programs=10, turns=4,
                                                 policies=("agentrt-admission", None))
    with capsys.disabled():
        print("\nreal: CPU run of a tiny model on vLLM; simulated: calibrated 8B/H100 "
              "model\n" + real_servers.HEADER)
        print("\n".join(f.row() for f in real + simulated))
    assert all(f.failed == 0 for f in real + simulated)
    real_gain = real[0].cached_share - real[1].cached_share
    sim_gain = simulated[0].cached_share - simulated[1].cached_share
    assert real_gain * sim_gain > 0, (real_gain, sim_gain)
