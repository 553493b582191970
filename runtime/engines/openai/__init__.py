"""An engine for OpenAI-compatible HTTP servers (vLLM, SGLang, llama.cpp's llama-server,
hosted APIs).

    config          OpenAIEndpoint (pydantic): one replica, its key variable, retries,
                    timeouts, capacity source, server hints
    client          ChatClient: httpx, one pool per replica, retries, streaming
    sse, completion SSE framing; responses and streamed deltas as ChatResult
    retry           RetryPolicy: full-jitter backoff, Retry-After, bounded
    errors          EndpointError and its kinds, each naming endpoint, status,
                    server message and fix
    metrics,        the server's KV capacity and use (vLLM /metrics, SGLang
    capacity        /get_server_info, configured)
    tokenizer       prompt token ids from the model's tokenizer (local or /tokenize)
    engine          OpenAIEngine: the RealtimeEngine; OpenAIEngineFactory
"""
from agentrt.runtime.engines.openai.config import OpenAIEndpoint, RetrySettings, ServerHints
from agentrt.runtime.engines.openai.engine import OpenAIEngine
from agentrt.runtime.engines.openai.errors import (
    EndpointError, EndpointProtocolError, EndpointStatusError, EndpointTimeout,
    EndpointUnreachable,
)
from agentrt.runtime.engines.openai.factory import OpenAIEngineFactory

__all__ = [
    "EndpointError",
    "EndpointProtocolError",
    "EndpointStatusError",
    "EndpointTimeout",
    "EndpointUnreachable",
    "OpenAIEndpoint",
    "OpenAIEngine",
    "OpenAIEngineFactory",
    "RetrySettings",
    "ServerHints",
]
