"""The gateway's HTTP face: a FastAPI app served by Ray Serve (docs.ray.io/en/latest/
serve/http-guide.html, "FastAPI HTTP deployments") in front of the scheduler actor.

    POST /v1/chat/completions        a chat completion, or SSE chunks with "stream": true
    GET  /v1/models                  the served models (and stand-ins)
    POST /v1/programs/{id}/end       end a program (its KV is released)
    GET  /health                     liveness, no key needed
    GET  /metrics                    Prometheus text format

Every error, ours or the framework's (an unknown path, a wrong method), is answered in
OpenAI's error shape. Bodies are read up to the size limit and no further (413 beyond
it; a Content-Length over it is refused before reading). The log holds no key and no
prompt: tracebacks of unexpected errors name the request id only.

One replica: programs, sessions and their gaps live in it (see `service`), so calls of
one program must meet in one process; Ray Serve's proxy keeps the HTTP side apart from
it. Scaling the gateway out needs program-affine routing (Serve's model multiplexing
could carry the program id), which is not built.

(No `from __future__ import annotations` here: FastAPI reads the handlers' parameter
annotations as types, and Serve's ingress wrapper does not resolve string ones.)
"""
import json
import logging
import uuid
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentrt.runtime.serve import errors
from agentrt.runtime.serve.config import DEFAULT_TENANT, GatewayConfig
from agentrt.runtime.serve.errors import GatewayError
from agentrt.runtime.serve.metrics import CONTENT_TYPE
from agentrt.runtime.serve.service import Answer, GatewayService, GatewaySetup

log = logging.getLogger("agentrt.gateway")
HEADROOM = 64  # requests Serve lets through beyond max_inflight: /health, /metrics, 503s

# FastAPI's own telemetry is off: the gateway writes its programs' traces itself, and
# FastAPI's logs of failed requests would carry their content.
app = FastAPI(title="agentrt gateway", docs_url=None, redoc_url=None, openapi_url=None,
              telemetry={"tracing": False, "metrics": False, "logs": False,
                         "operation_spans": False})


def error_response(error: GatewayError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers())


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404:
        error = errors.GatewayError(
            404, f"no endpoint {request.method} {request.url.path}; this gateway serves "
            "POST /v1/chat/completions, GET /v1/models, POST /v1/programs/{id}/end, "
            "GET /health and GET /metrics", type="not_found_error", code="unknown_url")
    else:
        error = errors.GatewayError(exc.status_code, f"{request.method} "
                                    f"{request.url.path}: {exc.detail}",
                                    type="invalid_request_error", code=None)
    return error_response(error)


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(errors.bad_request(
        f"{request.method} {request.url.path}: the request does not match the endpoint "
        "(see the OpenAI API reference)", code="invalid_request"))


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or a 413 GatewayError as soon as it is over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.too_large(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _sse(chunks: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
    return stream()


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


# User code on the replica's own event loop rather than a second one in a thread (Ray
# Serve's default): the gateway's handlers only await Ray calls, so the thread hop
# per request buys nothing (docs.ray.io, Serve "Performance tuning").
REPLICA_ENV = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}


@serve.deployment(num_replicas=1, graceful_shutdown_timeout_s=10,
                  ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": REPLICA_ENV}})
@serve.ingress(app)
class Gateway:
    def __init__(self, scheduler: Any, config: dict[str, Any], setup: GatewaySetup) -> None:
        self.config = GatewayConfig(**config)
        self.service = GatewayService(scheduler, self.config, setup)

    def _count(self, endpoint: str, status: int) -> None:
        self.service.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()

    async def _guard(self, endpoint: str, work) -> Response:
        """Run `work()`, answering GatewayErrors in OpenAI's shape and anything else as
        a 500 naming the request id; count the response."""
        try:
            response = await work()
        except GatewayError as error:
            response = error_response(error)
        except Exception:
            request_id = "req-" + uuid.uuid4().hex[:12]
            log.exception("gateway failure on %s (%s)", endpoint, request_id)
            response = error_response(errors.internal(request_id))
        self._count(endpoint, response.status_code)
        return response

    @app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        async def work() -> Response:
            body = await read_body(request, self.config.max_body_bytes)
            answer: Answer = await self.service.chat(body, _headers(request))
            if answer.chunks is not None:
                return StreamingResponse(_sse(answer.chunks), media_type="text/event-stream",
                                         headers={**answer.headers, "cache-control": "no-cache"})
            return JSONResponse(answer.body, headers=answer.headers)
        return await self._guard("chat", work)

    @app.get("/v1/models")
    async def models(self, request: Request) -> Response:
        async def work() -> Response:
            self.service.authenticate(request.headers.get("authorization"))
            return JSONResponse(self.service.models())
        return await self._guard("models", work)

    @app.post("/v1/programs/{program_id}/end")
    async def end_program(self, program_id: str, request: Request) -> Response:
        async def work() -> Response:
            key = self.service.authenticate(request.headers.get("authorization"))
            tenant = key.tenant if key is not None else DEFAULT_TENANT
            return JSONResponse(await self.service.end_program(program_id, tenant))
        return await self._guard("end_program", work)

    @app.get("/health")
    async def health(self) -> Response:
        return JSONResponse(self.service.health())

    @app.get("/metrics")
    async def metrics(self, request: Request) -> Response:
        async def work() -> Response:
            self.service.authenticate(request.headers.get("authorization"))
            return Response(await self.service.metrics_text(), media_type=CONTENT_TYPE)
        return await self._guard("metrics", work)

    async def close(self) -> int:
        """End every program and write the traces (the launcher calls this before it
        deletes the application)."""
        return await self.service.close()
