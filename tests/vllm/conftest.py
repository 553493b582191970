"""The in-process vLLM engine for the tests in this folder, built once per session.

These tests import vLLM, so they run with the vLLM environment's Python, into which
`make vllm-env` installs agentrt (`pip install --no-deps -e .`: agentrt's own imports on
this path are light):

    .venv-vllm/bin/python -m pytest tests/vllm        (`make test` runs it)

Under agentrt's own environment (no vLLM) the folder is not collected; the header of
the run says so. One engine serves every test (starting vLLM takes 30-60 s on 2 cores):
the scripted tiny model (tests/realserver/build_model.py), 48 KV blocks of 32 tokens
(47 usable: vLLM keeps a null block), the agentrt TTL policy's knobs (pin cap half the
KV, pins given up before preemption); tests that need another policy call
`engine.reset(ttl)`. Logs of vLLM go to the test output only when a test fails.
"""
from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
if not HAVE_VLLM:
    collect_ignore_glob = ["test_*.py"]

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "tests" / "realserver" / ".cache"
BUILD_TIMEOUT_S = 300
START_TIMEOUT_S = 300
KV_BLOCKS = 48
MAX_MODEL_LEN = 1024


def pytest_report_header(config):
    if not HAVE_VLLM:
        return ("tests/vllm: not collected (no vLLM in this Python); run them with "
                ".venv-vllm/bin/python -m pytest tests/vllm (make test does)")
    return None


def build_models() -> Path:
    out = CACHE / "models"
    result = subprocess.run([sys.executable, str(REPO / "tests" / "realserver" / "build_model.py"),
                             str(out)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if result.returncode != 0:
        pytest.fail(f"building the test models failed:\n{result.stderr[-3000:]}", pytrace=False)
    return out / "scripted"


@pytest.fixture(scope="session")
def harness():
    from tests.vllm.helpers import Harness

    model = build_models()
    loop = asyncio.new_event_loop()
    harness = Harness(loop, model, KV_BLOCKS, MAX_MODEL_LEN)
    try:
        harness.run(harness.start(), START_TIMEOUT_S)
    except BaseException:
        loop.close()
        raise
    yield harness
    harness.run(harness.engine.stop(), 120)
    loop.close()


@pytest.fixture
def h(harness):
    """The session's engine, emptied (no holds, no cached blocks, the agentrt policy's
    knobs) before the test."""
    assert harness.run(harness.engine.reset("agentrt"), 30), "vLLM kept blocks in use"
    harness.sink.clear()
    harness.run(harness.engine.start(harness.sink.extend))  # a run may have taken events
    yield harness
