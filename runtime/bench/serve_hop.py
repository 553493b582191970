"""What Ray Serve's HTTP path costs per request, next to a plain uvicorn server in a Ray
actor and a bare actor call: the measurement behind serving the gateway on Ray Serve
(docs/gateway.md, "Why Ray Serve").

    python -m agentrt.runtime.bench.serve_hop [--requests 300] [--concurrency 1,50,200]

All three call one echo actor, the way the gateway calls the scheduler actor:

    serve    HTTP -> Serve's proxy actor -> a replica (FastAPI ingress) -> the echo actor
    uvicorn  HTTP -> uvicorn + FastAPI inside one Ray actor            -> the echo actor
    actor    the echo actor called directly (no HTTP)

The client runs in a Ray actor (as in gateway_load.py, so it does not outrank the niced
actors it measures) and sends `--requests` requests at each concurrency. Printed per path
and concurrency: p50 and p99 latency and requests per second. Figures are of this
machine: its cores are shared by the client and every server.

(No `from __future__ import annotations`: Serve's ingress needs the handlers' annotations
as types, see runtime/serve/app.py.)
"""

import argparse
import asyncio
import time

import aiohttp
import ray
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from agentrt.runtime.bench.gateway_load import percentile
from agentrt.runtime.serve.launcher import free_port

BODY = b'{"model": "m", "messages": [{"role": "user", "content": "ping"}]}'


@ray.remote(num_cpus=0)
class Echo:
    async def chat(self, body: bytes) -> bytes:
        return body


def echo_app(get_echo) -> FastAPI:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False,
                             "operation_spans": False})

    @app.post("/echo")
    async def echo(request: Request) -> JSONResponse:
        body = await get_echo().chat.remote(await request.body())
        return JSONResponse({"bytes": len(body)})
    return app


_SERVE_APP = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False,
                               "operation_spans": False})


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1024)
@serve.ingress(_SERVE_APP)
class EchoIngress:
    """The same route as `echo_app`'s, as a Serve ingress class (as the gateway is)."""

    def __init__(self, echo) -> None:
        self.echo = echo

    @_SERVE_APP.post("/echo")
    async def echo(self, request: Request) -> JSONResponse:
        body = await self.echo.chat.remote(await request.body())
        return JSONResponse({"bytes": len(body)})


@ray.remote(num_cpus=0, max_concurrency=10_000)
class PlainServer:
    def __init__(self, echo, port: int) -> None:
        import uvicorn

        self.echo = echo
        config = uvicorn.Config(echo_app(lambda: self.echo), host="127.0.0.1", port=port,
                                log_level="warning")
        self.server = uvicorn.Server(config)

    async def serve(self) -> None:
        await self.server.serve()

    async def ready(self) -> bool:
        return self.server.started


@ray.remote(num_cpus=0)
class Client:
    async def http(self, url: str, n: int, concurrency: int) -> tuple[list[float], float]:
        connector = aiohttp.TCPConnector(limit=concurrency + 4)
        async with aiohttp.ClientSession(connector=connector) as http:
            async def one() -> float:
                start = time.perf_counter()
                async with http.post(url, data=BODY) as response:
                    await response.read()
                    assert response.status == 200
                return time.perf_counter() - start
            return await _drive(one, n, concurrency)

    async def actor(self, echo, n: int, concurrency: int) -> tuple[list[float], float]:
        async def one() -> float:
            start = time.perf_counter()
            await echo.chat.remote(BODY)
            return time.perf_counter() - start
        return await _drive(one, n, concurrency)


async def _drive(one, n: int, concurrency: int) -> tuple[list[float], float]:
    for _ in range(min(20, n)):  # warm-up
        await one()
    queue = list(range(n))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            queue.pop()
            latencies.append(await one())
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", default="1,50,200")
    args = parser.parse_args(argv)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    echo = Echo.remote()
    serve_port, plain_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    serve.start(http_options={"host": "127.0.0.1", "port": serve_port})
    serve.run(EchoIngress.bind(echo), name="hop", route_prefix="/")
    plain = PlainServer.remote(echo, plain_port)
    plain.serve.remote()
    while not ray.get(plain.ready.remote()):
        time.sleep(0.1)
    client = Client.remote()
    print(f"per-request cost of the HTTP path (echo, {args.requests} requests per row; "
          "this machine's shared cores)")
    print(f"{'path':8} {'conc':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    try:
        for c in (int(x) for x in args.concurrency.split(",")):
            rows = {"serve": lambda: client.http.remote(
                        f"http://127.0.0.1:{serve_port}/echo", args.requests, c),
                    "uvicorn": lambda: client.http.remote(
                        f"http://127.0.0.1:{plain_port}/echo", args.requests, c),
                    "actor": lambda: client.actor.remote(echo, args.requests, c)}
            for name, start in rows.items():  # one path at a time
                latencies, wall = ray.get(start())
                print(f"{name:8} {c:5d} {percentile(latencies, .5) * 1e3:8.2f} "
                      f"{percentile(latencies, .99) * 1e3:8.2f} {len(latencies) / wall:8.1f}")
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
