"""Real vLLM servers for the tests marked `realserver`, built and started by the suite.

One session starts two servers of the scripted tiny model (tests/realserver/
build_model.py) side by side, so their start-ups overlap:

    primary   256 KV blocks of 32 tokens, API key required: most tests, behind a
              FaultProxy for the failure tests
    victim    160 KV blocks (5,120 tokens: a whole 4,096-token window and then some),
              no key: the test that kills a server mid-call

Both stop (SIGTERM, then SIGKILL after a grace period) when the session ends. A
missing `.venv-vllm` fails the tests with the make target to run (CI must run them,
so they are not skipped). Logs: tests/realserver/.cache/logs/.
"""
from __future__ import annotations

import atexit
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realserver.faults import FaultProxy
from tests.realserver.server import (
    MAKE_TARGET, REPO, VLLM_PYTHON, ServerSpec, ServerStartError, VllmServer,
)

CACHE = REPO / "tests" / "realserver" / ".cache"
MODEL = "scripted"
API_KEY = "sk-agentrt-test-0123456789abcdef"
API_KEY_ENV = "AGENTRT_TEST_VLLM_KEY"
BUILD_TIMEOUT_S = 300
READY_TIMEOUT_S = 300


@dataclass(frozen=True)
class Servers:
    primary: VllmServer
    victim: VllmServer
    model_dir: Path


def _require_vllm_env() -> None:
    if not VLLM_PYTHON.exists():
        pytest.fail(f"the realserver tests need vLLM's environment at {VLLM_PYTHON.parent.parent};"
                    f" build it with `{MAKE_TARGET}` (about 3 minutes), or deselect them with "
                    f"-m 'not realserver'", pytrace=False)


def _build_models() -> Path:
    out = CACHE / "models"
    result = subprocess.run([str(VLLM_PYTHON), str(Path(__file__).with_name("build_model.py")),
                             str(out)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if result.returncode != 0:
        pytest.fail(f"building the test models failed:\n{result.stderr[-3000:]}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def realservers() -> Servers:
    _require_vllm_env()
    models = _build_models()
    scripted = models / "scripted"
    primary = VllmServer(ServerSpec(scripted, MODEL, num_gpu_blocks=256, api_key=API_KEY),
                         CACHE / "logs" / "primary.log")
    victim = VllmServer(ServerSpec(scripted, MODEL, num_gpu_blocks=160),
                        CACHE / "logs" / "victim.log")
    servers = [primary, victim]
    atexit.register(lambda: [s.stop(grace_s=5) for s in servers])
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(READY_TIMEOUT_S)
    except ServerStartError as error:
        for server in servers:
            server.stop(grace_s=5)
        pytest.fail(str(error), pytrace=False)
    yield Servers(primary, victim, scripted)
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def vllm(realservers: Servers) -> VllmServer:
    """The primary server (requires API_KEY)."""
    if not realservers.primary.healthy():
        pytest.fail(f"the primary vLLM server died; log: {realservers.primary.log_path}")
    return realservers.primary


@pytest.fixture
def victim(realservers: Servers) -> VllmServer:
    """A server a test may kill (no API key). Restarted if an earlier test killed it."""
    server = realservers.victim
    if not server.healthy():
        server.stop(grace_s=5)
        server.start()
        server.wait_ready(READY_TIMEOUT_S)
    return server


@pytest.fixture
def api_key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of an environment variable holding the primary server's key."""
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    return API_KEY_ENV


@pytest.fixture
def proxy(vllm: VllmServer):
    """A FaultProxy in front of the primary server."""
    fault_proxy = FaultProxy(vllm.port).start()
    yield fault_proxy
    fault_proxy.stop()
