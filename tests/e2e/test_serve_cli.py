"""`agentrt serve` as a user types it: refusals before anything starts, the key digest,
and a gateway that answers the OpenAI SDK until Ctrl-C."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENTRT = [sys.executable, "-m", "agentrt.runtime.cli", "serve"]


def agentrt(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([*AGENTRT, *args], cwd=ROOT, capture_output=True, text=True,
                          input=stdin, timeout=120)


def test_hash_key_prints_the_digest_only():
    proc = agentrt("--hash-key", stdin="sk-my-secret-key-0123456789\n")
    assert proc.returncode == 0
    assert proc.stdout.strip() == ("sha256:245a40cbc043263ef62343276ff3f496572fc4512ffdd6b"
                                   "a1ff58472ecf88a08")


def test_refusals_before_anything_starts(tmp_path):
    proc = agentrt("--host", "0.0.0.0")
    assert proc.returncode == 2 and "beyond loopback" in proc.stderr
    assert "--api-keys" in proc.stderr
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([{"tenant": "a", "sha256": "sk-plain-key-not-a-digest"}]))
    proc = agentrt("--host", "0.0.0.0", "--api-keys", str(keys))
    assert proc.returncode == 2 and "never the key itself" in proc.stderr
    proc = agentrt("--workers", "0")
    assert proc.returncode == 2 and "--workers=0" in proc.stderr
    proc = agentrt("--responder", "missing.py:x")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_serve_answers_the_openai_sdk_until_ctrl_c(tmp_path):
    import openai

    proc = subprocess.Popen([*AGENTRT, "--port", "0", "--workers", "1", "--time-scale",
                             "0.05", "--responder", "tool-rounds", "--trace-dir",
                             str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        deadline, url = time.monotonic() + 180, None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            match = re.search(r"agentrt gateway on (\S+) ", line)
            url = match.group(1) if match else None
        assert url, "the gateway did not say where it listens"
        sdk = openai.OpenAI(base_url=url, api_key="unused",
                            default_headers={"X-Agentrt-Program": "cli-1"})
        reply = sdk.chat.completions.create(model="llama-3.1-8b",
                                            messages=[{"role": "user", "content": "ping"}])
        assert reply.choices[0].message.content == "echo: ping"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0
    [trace] = tmp_path.glob("*/trace.jsonl")
    roots = [json.loads(line) for line in trace.read_text().splitlines()]
    assert any(r["attributes"].get("agentrt.program.end_reason") == "stopped" for r in roots)
