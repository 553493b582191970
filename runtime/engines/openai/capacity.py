"""Reading a server's capacity now and then (not per call).

`CapacityMonitor.refresh()` reads once from the source the endpoint names ("auto":
vLLM's /metrics, then SGLang's /get_server_info); the engine calls it every
`scrape_interval_s`. A failed read keeps the last good reading, records
the error (`last_error`) and logs it once per distinct message, so a server that
stops exposing metrics is reported without flooding the log.
"""
from __future__ import annotations

import logging

from agentrt.runtime.engines.openai.client import ChatClient
from agentrt.runtime.engines.openai.config import OpenAIEndpoint
from agentrt.runtime.engines.openai.errors import EndpointError
from agentrt.runtime.engines.openai.metrics import (
    CapacityError, ServerCapacity, configured_capacity, sglang_capacity, vllm_capacity,
)

log = logging.getLogger(__name__)
_WRONG_SOURCE = ("set OpenAIEndpoint.capacity to the server's kind ('vllm', 'sglang'), or "
                 "'configured' with kv_capacity_tokens, or 'none'")


class CapacityMonitor:
    def __init__(self, endpoint: OpenAIEndpoint, client: ChatClient) -> None:
        self.endpoint = endpoint
        self._client = client
        self.reading: ServerCapacity | None = None
        self.last_error: EndpointError | None = None
        self.max_model_len: int | None = None

    async def refresh(self) -> ServerCapacity | None:
        """Read the capacity once. Returns the reading (None for capacity="none");
        on failure keeps the previous one, sets `last_error` and raises it."""
        try:
            reading = await self._read()
        except EndpointError as error:
            if self.last_error is None or str(error) != str(self.last_error):
                log.warning("capacity of %s: %s", self.endpoint.base_url, error)
            self.last_error = error
            raise
        self.reading, self.last_error = reading, None
        return reading

    async def read_max_model_len(self) -> int | None:
        """The served model's context limit from /v1/models (vLLM's `max_model_len`,
        None when the server does not say)."""
        try:
            data = (await self._client.get("/v1/models")).json()
            for entry in data.get("data") or ():
                if entry.get("id") == self.endpoint.model and entry.get("max_model_len"):
                    self.max_model_len = int(entry["max_model_len"])
        except (EndpointError, ValueError, AttributeError, TypeError) as error:
            log.info("max_model_len of %s unknown: %s", self.endpoint.base_url, error)
        return self.max_model_len

    async def _read(self) -> ServerCapacity | None:
        endpoint, source = self.endpoint, self.endpoint.capacity
        if source == "none":
            return None
        if source == "configured":
            return configured_capacity(endpoint.kv_capacity_tokens, endpoint.block_size)
        if source == "vllm":
            return await self._vllm()
        if source == "sglang":
            return await self._sglang()
        try:
            return await self._vllm()
        except EndpointError as vllm_error:
            try:
                return await self._sglang()
            except EndpointError:
                raise CapacityError(
                    endpoint.base_url, f"capacity='auto' found neither vLLM's /metrics nor "
                    f"SGLang's /get_server_info (vLLM: {vllm_error.what})",
                    fix="set capacity='configured' with kv_capacity_tokens, or "
                        "capacity='none'") from vllm_error

    async def _vllm(self) -> ServerCapacity:
        response = await self._client.get("/metrics", fix=_WRONG_SOURCE)
        return vllm_capacity(response.text, str(response.url))

    async def _sglang(self) -> ServerCapacity:
        response = await self._client.get("/get_server_info", fix=_WRONG_SOURCE)
        return sglang_capacity(response.content, str(response.url), self.endpoint.block_size)
