"""An OpenAI-compatible gateway in front of agentrt's scheduler (docs/gateway.md).

    gw = agentrt.serve(workers=2)            # or `agentrt serve --workers 2`
    openai.OpenAI(base_url=gw.base_url, api_key="unused").chat.completions.create(...)
    gw.stop()

    config      GatewayConfig, ApiKey: where it listens, keys (hashed), limits
    schema      the chat-completions request, validated (parse_chat)
    identity    program and session from headers and fields clients send; tool gaps
    service     one call: admit, budget, the scheduler actor, the reply
    replies     RequestDone -> chat completion / SSE chunks
    programs    the programs and sessions seen; lifecycle: their starts and ends;
                spans: their traces
    metrics     /metrics in the Prometheus text format
    app         FastAPI on Ray Serve; launcher: serve() and GatewayHandle
    responders  a scripted model that calls the client's tools (simulated engines)

The launcher (and with it Ray Serve) is imported on first use.
"""
from agentrt.runtime.serve.config import ApiKey, GatewayConfig, hash_key

__all__ = ["ApiKey", "GatewayConfig", "GatewayHandle", "hash_key", "serve"]


def __getattr__(name: str):
    if name in ("serve", "GatewayHandle"):
        from agentrt.runtime.serve import launcher
        return getattr(launcher, name)
    raise AttributeError(f"module 'agentrt.runtime.serve' has no attribute {name!r}")
