"""The gateway's configuration: where it listens, who may call it, and its limits.

Bound to loopback by default. Binding beyond loopback (any other address, `0.0.0.0`
included) is refused unless API keys are configured: a gateway reachable from other
machines must know who calls it. Keys are stored as SHA-256 digests, never as the
secret (`ApiKey.from_secret` hashes one at once; `agentrt serve --hash-key` prints the
digest of a key read from standard input). A plain SHA-256 is enough here: API keys are
long random tokens, not passwords, so a slow KDF would add per-request cost and no
safety. Each key is one tenant, the unit of fair share: the tenant goes on every call
(`LLMRequest.tenant`, what the `fair_share` queue policy balances) and bounds the
key's calls in flight.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TENANT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DEFAULT_TENANT = "default"


def hash_key(secret: str) -> str:
    """The digest the configuration stores for an API key."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


class ApiKey(BaseModel):
    """One API key: its tenant, its digest, and the limits of the programs it runs
    (a header may lower a budget or deadline for one program, never raise it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str
    sha256: str
    budget_usd: float | None = Field(None, gt=0)
    """Most a program of this key may spend (USD, at the runtime's prices)."""
    budget_tokens: int | None = Field(None, ge=1)
    """Most tokens (prompt + output) a program of this key may use."""
    deadline_s: float | None = Field(None, gt=0)
    """Longest a program of this key may run, from its first call."""
    max_inflight: int | None = Field(None, ge=1)
    """Calls of this key in flight at once (default: the gateway's per-tenant limit)."""

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, tenant: str) -> str:
        if not _TENANT.match(tenant):
            raise ValueError(f"tenant {tenant!r} must be 1-64 letters, digits, '.', '_' or "
                             "'-' (it labels metrics and traces)")
        return tenant

    @field_validator("sha256")
    @classmethod
    def _digest(cls, digest: str) -> str:
        digest = digest.removeprefix("sha256:").lower()
        if not _HEX64.match(digest):
            raise ValueError("sha256 must be the 64 hex digits of the key's SHA-256 digest "
                             "(never the key itself); get it with `agentrt serve --hash-key`")
        return digest

    @classmethod
    def from_secret(cls, tenant: str, secret: str, **limits: Any) -> ApiKey:
        """A key from its secret, hashed at once (the secret is not kept)."""
        if len(secret) < 16:
            raise ValueError(f"the API key for tenant {tenant!r} is {len(secret)} characters; "
                             "use a random key of at least 16 (e.g. `openssl rand -hex 24`)")
        return cls(tenant=tenant, sha256=hash_key(secret), **limits)


class GatewayConfig(BaseModel):
    """Where the gateway listens and the limits it enforces."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    """Address to bind. Anything but loopback requires `api_keys`."""
    port: int = Field(8000, ge=0, le=65535)
    """Port to bind; 0 picks a free one (the handle's `url` says which)."""
    api_keys: list[ApiKey] = Field(default_factory=list)
    """Keys accepted as `Authorization: Bearer <key>`; empty: no authentication
    (loopback only), every call is tenant "default"."""
    max_body_bytes: int = Field(8 << 20, ge=1024)
    """Largest request body accepted (413 above it)."""
    max_inflight: int = Field(1024, ge=1)
    """Calls in flight at once, all tenants (503 with Retry-After above it)."""
    max_inflight_per_tenant: int | None = Field(None, ge=1)
    """Calls in flight per tenant unless its key says otherwise (429 with Retry-After
    above it); None: only `max_inflight` bounds a tenant."""
    idle_timeout_s: float = Field(300.0, gt=0)
    """A program with no call for this long has ended (its KV is released)."""
    call_timeout_s: float = Field(600.0, gt=0)
    """A call not answered in this long is aborted (504): a safety net, since an engine
    that never finishes a call would otherwise hold its client forever."""
    default_max_tokens: int = Field(1024, ge=1)
    """max_tokens of a call that sets none (lowered to what the context has left)."""
    log_content: bool = False
    """Log each call's messages (debugging only; keys are never logged)."""
    access_log: bool = False
    """Ray Serve's access log: a line per request (method, path, status, latency; no
    content). Off by default: at hundreds of calls a second its writing and shipping
    to the driver cost CPU the calls need."""
    app_name: str = "agentrt-gateway"
    """The Ray Serve application's name."""

    @model_validator(mode="after")
    def _keys_beyond_loopback(self) -> GatewayConfig:
        if not is_loopback(self.host) and not self.api_keys:
            raise ValueError(
                f"host {self.host!r} is beyond loopback, and no api_keys are configured: "
                "anyone who can reach it could spend the cluster. Configure api_keys "
                "(agentrt serve --api-keys FILE), or bind 127.0.0.1")
        digests = [k.sha256 for k in self.api_keys]
        if len(set(digests)) != len(digests):
            raise ValueError("api_keys lists the same key twice; give each tenant its own key")
        return self

    def tenant_limit(self, key: ApiKey | None) -> int:
        """Calls in flight a tenant may have."""
        if key is not None and key.max_inflight is not None:
            return key.max_inflight
        return self.max_inflight_per_tenant or self.max_inflight
