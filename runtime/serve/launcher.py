"""Starting and stopping a gateway: `serve(...)` and the `GatewayHandle` it returns.

    with agentrt.serve(workers=2, responder=tool_rounds()) as gw:   # simulated engines
        client = openai.OpenAI(base_url=gw.base_url, api_key="unused")
        ...
        gw.program_trace("my-agent")     # the spans of a program, from the run's trace

`serve` starts the cluster as `Runtime` does (scheduler actor and workers of the
config's pools; Ray started locally unless it is running or `RAY_ADDRESS` is set, but
no program runners), then Ray Serve's HTTP proxy on `host:port` and the gateway
application in front of the scheduler actor. `stop` ends every open program (their
traces are written), deletes the application, shuts Ray Serve down if it started it,
and stops the cluster.
"""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import ray

from agentrt.runtime import wire
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig
from agentrt.runtime.engines.simulated.responder import Responder
from agentrt.runtime.serve.config import GatewayConfig
from agentrt.runtime.serve.service import GatewaySetup

READY_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 30.0


class GatewayHandle:
    """A running gateway: its `url` (`base_url` for OpenAI clients) and `stop()`."""

    def __init__(self, runtime: Runtime, config: GatewayConfig, port: int, app: Any,
                 trace_path: Path, started_serve: bool) -> None:
        self.runtime = runtime
        self.config = config
        host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
        self.url = f"http://{host}:{port}"
        self.trace_path = trace_path
        self._app = app
        self._started_serve = started_serve
        self._stopped = False

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def __enter__(self) -> GatewayHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def scheduler_counters(self) -> dict[str, Any]:
        return self.runtime.scheduler_counters()

    def program_trace(self, program_id: str) -> list[dict[str, Any]]:
        """Every span of the programs the clients named `program_id` that have ended
        (a program's trace is written when it ends), in file order."""
        if not self.trace_path.exists():
            return []
        rows = [json.loads(line) for line in self.trace_path.read_text().splitlines()]
        traces = {r["trace_id"] for r in rows
                  if r["parent_span_id"] is None
                  and r["attributes"].get("agentrt.program.id") == program_id}
        return [r for r in rows if r["trace_id"] in traces]

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        from ray import serve as ray_serve

        try:
            self._app.close.remote().result(timeout_s=CLOSE_TIMEOUT_S)
        finally:
            ray_serve.delete(self.config.app_name)
            if self._started_serve:
                ray_serve.shutdown()
            self.runtime.stop()


def serve(config: RuntimeConfig | None = None, *, gateway: GatewayConfig | None = None,
          responder: Responder | None = None, **options: Any) -> GatewayHandle:
    """Start a gateway. `options` are GatewayConfig fields (host, port, api_keys, ...)
    or RuntimeConfig fields (workers, model, pools, time_scale, queue, ...)."""
    gateway_fields = set(GatewayConfig.model_fields)
    gateway_options = {k: v for k, v in options.items() if k in gateway_fields}
    run_options = {k: v for k, v in options.items() if k not in gateway_fields}
    gw = GatewayConfig(**{**(gateway.model_dump() if gateway else {}), **gateway_options})
    cfg = RuntimeConfig(**{**(config.model_dump() if config else {}), **run_options})
    runtime = Runtime(cfg, responder=responder)
    runtime.start_cluster()
    try:
        return _deploy(runtime, cfg, gw)
    except BaseException:
        runtime.stop()
        raise


def _deploy(runtime: Runtime, cfg: RuntimeConfig, gw: GatewayConfig) -> GatewayHandle:
    from ray import serve as ray_serve

    from agentrt.runtime.serve.app import HEADROOM, Gateway

    port = gw.port or free_port(gw.host)
    trace_path = (Path(cfg.trace_dir) / runtime.run_id / "trace.jsonl").resolve()
    setup = GatewaySetup(limits=model_limits(runtime, cfg), block_size=cfg.block_size,
                         prices={m: (p.input_per_m, p.output_per_m)
                                 for m, p in cfg.prices.items()},
                         clock=runtime.clock, trace_path=str(trace_path))
    started_serve = not _serve_running()
    logging = {"enable_access_log": gw.access_log}
    ray_serve.start(http_options={"host": gw.host, "port": port}, proxy_location="HeadOnly",
                    logging_config=logging)
    try:
        app = ray_serve.run(
            Gateway.options(max_ongoing_requests=gw.max_inflight + HEADROOM)
            .bind(runtime.scheduler, gw.model_dump(), setup),
            name=gw.app_name, route_prefix="/", logging_config=logging)
        handle = GatewayHandle(runtime, gw, port, app, trace_path, started_serve)
        _wait_ready(handle)
    except BaseException:
        if started_serve:
            ray_serve.shutdown()
        raise
    return handle


def model_limits(runtime: Runtime, cfg: RuntimeConfig) -> dict[str, int]:
    """Each served model's (and stand-in's) most tokens per call: the smallest context
    limit among its workers."""
    infos = [wire.decode(b) for b in ray.get(runtime.scheduler.worker_infos.remote(),
                                             timeout=60)]
    limits: dict[str, int] = {}
    for info in infos:
        limit = info.max_context or info.kv_capacity_tokens or 0
        limits[info.model] = min(limits.get(info.model, limit), limit)
    for name, served in cfg.stand_ins.items():
        limits[name] = limits[served]
    return limits


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _serve_running() -> bool:
    """Whether Ray Serve already runs on this cluster (then it is not ours to stop)."""
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        return True
    except ValueError:
        return False


def _wait_ready(handle: GatewayHandle) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(handle.url + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError as exc:
            error = exc
        time.sleep(0.2)
    raise RuntimeError(
        f"the gateway did not answer on {handle.url}/health within {READY_TIMEOUT_S:g}s "
        f"({error}); if Ray Serve already runs on this cluster with other HTTP options, "
        "it keeps them: stop it (`serve shutdown`) or use its host and port")
