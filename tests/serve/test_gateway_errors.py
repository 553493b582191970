"""A gateway bound beyond loopback, with API keys: every refusal has the right status,
the OpenAI error shape and a message naming the fix; a fuzz of request bodies never
crashes it; neither keys nor prompts reach the logs."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentrt.runtime.serve.config import ApiKey
from tests.serve.conftest import MODEL, start_gateway

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

KEY_A = "sk-agentrt-tenant-a-3f9c2e71d0b84a56"
KEY_SMALL = "sk-agentrt-tenant-small-8e1d5c0a9b7f"
PROMPT_MARKER = "zanzibar-marmalade-quokka"
LONG = " ".join(["word"] * 400)  # the scripted model echoes it: a call of seconds


@pytest.fixture(scope="module")
def keyed(ray_cluster, tmp_path_factory):
    gw = start_gateway(
        tmp_path_factory, host="0.0.0.0", time_scale=1.0, max_body_bytes=8192,
        max_inflight=2, api_keys=[ApiKey.from_secret("a", KEY_A),
                                  ApiKey.from_secret("small", KEY_SMALL, max_inflight=1)])
    yield gw
    gw.stop()


def auth(key: str = KEY_A) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(content: str = "hello", **fields) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **fields}


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and error["type"]
    if code is not None:
        assert error["code"] == code, error
    return error


def test_keys_are_required_off_loopback(keyed):
    url = keyed.base_url + "/chat/completions"
    assert_openai_error(httpx.post(url, json=chat(), timeout=30), 401, "invalid_api_key")
    wrong = httpx.post(url, json=chat(), headers=auth("sk-not-a-key-000000000000"), timeout=30)
    assert "not one this gateway accepts" in assert_openai_error(wrong, 401)["message"]
    for path in ("/v1/models", "/metrics"):
        assert_openai_error(httpx.get(keyed.url + path, timeout=30), 401)
    assert_openai_error(httpx.post(keyed.base_url + "/programs/x/end", timeout=30), 401)
    assert httpx.get(keyed.url + "/health", timeout=30).status_code == 200
    ok = httpx.post(url, json=chat(), headers=auth(), timeout=60)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "echo: hello"


def test_malformed_requests(keyed):
    url = keyed.base_url + "/chat/completions"
    post = lambda **kw: httpx.post(url, headers={**auth(), **kw.pop("headers", {})},
                                   timeout=30, **kw)
    assert_openai_error(post(content=b'{"model": '), 400, "invalid_json")
    error = assert_openai_error(post(json=chat(max_tokens="ten")), 400)
    assert error["param"] == "max_tokens" and "'ten'" in error["message"]
    error = assert_openai_error(post(json={**chat(), "model": "gpt-9"}), 404, "model_not_found")
    assert MODEL in error["message"]
    big = post(json=chat("x" * 10_000))
    assert "max_body_bytes" in assert_openai_error(big, 413, "request_too_large")["message"]
    chunked = post(content=iter([b'{"model": "' + b"x" * 9000 + b'"}']))  # no Content-Length
    assert_openai_error(chunked, 413, "request_too_large")
    assert_openai_error(post(json=chat(), headers={"X-Agentrt-Budget-Usd": "lots"}), 400)
    assert_openai_error(httpx.get(keyed.url + "/v1/nothing", timeout=30), 404, "unknown_url")
    assert_openai_error(httpx.get(url, headers=auth(), timeout=30), 405)


def test_a_tenants_share_then_the_gateways_limit(keyed):
    async def run():
        async with httpx.AsyncClient(base_url=keyed.base_url, timeout=120) as http:
            slow = asyncio.create_task(http.post("/chat/completions", json=chat(LONG),
                                                 headers=auth(KEY_SMALL)))
            await asyncio.sleep(0.5)
            second = await http.post("/chat/completions", json=chat(), headers=auth(KEY_SMALL))
            other = asyncio.create_task(http.post("/chat/completions", json=chat(LONG),
                                                  headers=auth(KEY_A)))
            await asyncio.sleep(0.5)
            third = await http.post("/chat/completions", json=chat(), headers=auth(KEY_A))
            return second, third, await slow, await other

    second, third, slow, other = asyncio.run(run())
    assert_openai_error(second, 429, "rate_limit_exceeded")
    assert int(second.headers["retry-after"]) >= 1
    assert_openai_error(third, 503, "overloaded")
    assert int(third.headers["retry-after"]) >= 1
    assert slow.status_code == other.status_code == 200


def test_a_deadline_passing_mid_call_aborts_it(keyed):
    before = keyed.scheduler_counters()
    response = httpx.post(keyed.base_url + "/chat/completions", json=chat(LONG), timeout=60,
                          headers={**auth(), "X-Agentrt-Program": "hurried",
                                   "X-Agentrt-Deadline-S": "0.5"})
    error = assert_openai_error(response, 504, "deadline_exceeded")
    assert "X-Agentrt-Deadline-S" in error["message"]
    assert response.headers["x-should-retry"] == "false"
    after = keyed.scheduler_counters()
    # submitted, then aborted: it never completes
    assert after["submitted"] == before["submitted"] + 1
    assert after["completed"] == before["completed"]
    [root] = [r for r in keyed.program_trace("hurried") if r["parent_span_id"] is None]
    assert root["attributes"]["agentrt.program.end_reason"] == "deadline"


def test_neither_keys_nor_prompts_reach_the_logs(keyed):
    import ray

    response = httpx.post(keyed.base_url + "/chat/completions", headers=auth(),
                          json=chat(PROMPT_MARKER), timeout=60)
    assert response.status_code == 200
    bad = httpx.post(keyed.base_url + "/chat/completions", headers=auth(),
                     json={**chat(PROMPT_MARKER), "temperature": "hot"}, timeout=60)
    assert bad.status_code == 400
    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    for path in logs.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".out", ".err"):
            text = path.read_text(errors="ignore")
            for secret in (KEY_A, KEY_SMALL, PROMPT_MARKER):
                assert secret not in text, f"{secret[:12]}... in {path}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=12)
messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool", "system", "x"]),
     "content": st.text(max_size=30) | json_values}), min_size=0, max_size=3)
bodies = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from([MODEL, "other"]) | json_values,
    "messages": messages | json_values, "max_tokens": st.integers(-2, 40) | json_values,
    "stream": st.booleans() | json_values, "tools": json_values, "tool_choice": json_values,
    "metadata": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    "user": st.text(max_size=10)})


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(bodies.map(lambda b: json.dumps(b).encode()), st.binary(max_size=100)))
def test_fuzzed_bodies_never_crash_the_gateway(keyed, body):
    response = httpx.post(keyed.base_url + "/chat/completions", content=body,
                          headers=auth(), timeout=60)
    assert response.status_code in (200, 400, 404, 413), response.text
    if response.status_code != 200:
        assert_openai_error(response, response.status_code)
    assert httpx.get(keyed.url + "/health", timeout=30).status_code == 200
