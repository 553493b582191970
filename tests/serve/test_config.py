"""Where the gateway listens and who may call it."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentrt.runtime.serve.config import ApiKey, GatewayConfig, hash_key, is_loopback


def test_loopback_by_default_and_no_keys_needed_there():
    assert GatewayConfig().host == "127.0.0.1"
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host)
        GatewayConfig(host=host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "gateway.example"])
def test_binding_beyond_loopback_needs_keys(host):
    with pytest.raises(ValidationError, match="beyond loopback.*api_keys"):
        GatewayConfig(host=host)
    GatewayConfig(host=host, api_keys=[ApiKey.from_secret("team-a", "s" * 24)])


def test_keys_are_stored_as_digests_only():
    key = ApiKey.from_secret("team-a", "sk-secret-0123456789")
    assert key.sha256 == hash_key("sk-secret-0123456789")
    assert "sk-secret" not in key.model_dump_json()
    with pytest.raises(ValidationError, match="never the key itself"):
        ApiKey(tenant="t", sha256="sk-secret-0123456789")
    assert ApiKey(tenant="t", sha256="sha256:" + "A" * 64).sha256 == "a" * 64
    with pytest.raises(ValueError, match="at least 16"):
        ApiKey.from_secret("t", "short")
    with pytest.raises(ValidationError, match="same key twice"):
        GatewayConfig(api_keys=[ApiKey.from_secret("a", "k" * 20),
                                ApiKey.from_secret("b", "k" * 20)])


def test_tenant_limits():
    config = GatewayConfig(max_inflight=10, max_inflight_per_tenant=4)
    assert config.tenant_limit(None) == 4
    assert config.tenant_limit(ApiKey.from_secret("t", "k" * 20, max_inflight=2)) == 2
    assert GatewayConfig(max_inflight=10).tenant_limit(None) == 10
    with pytest.raises(ValidationError, match="tenant"):
        ApiKey.from_secret("bad tenant", "k" * 20)
