"""The `agentrt serve` command: a gateway until Ctrl-C.

    agentrt serve [--host 127.0.0.1] [--port 8000] [--workers 4] [--time-scale 1.0]
                  [--responder filler|tool-rounds|FILE.py:NAME] [--api-keys KEYS.json]
                  [--config CLUSTER.json] ...
    agentrt serve --hash-key < key.txt      # the digest to put in KEYS.json

KEYS.json is a list of `ApiKey` objects: {"tenant": "team-a", "sha256": "<digest>",
"budget_usd": 5, "deadline_s": 900, "max_inflight": 32}; never the key itself.
CLUSTER.json holds RuntimeConfig fields (worker `pools`, `stand_ins`, `queue`, ...);
command-line options override it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import ray.cloudpickle
from pydantic import TypeAdapter, ValidationError

from agentrt.runtime.config import RuntimeConfig
from agentrt.runtime.config_errors import explain
from agentrt.runtime.serve.config import ApiKey, GatewayConfig, hash_key

_CLUSTER_FLAGS = ("workers", "model", "gpu", "tp", "time_scale", "queue", "router", "ttl",
                  "seed", "trace_dir")
_GATEWAY_FLAGS = ("host", "port", "idle_timeout_s", "max_body_bytes", "max_inflight",
                  "max_inflight_per_tenant", "default_max_tokens", "log_content",
                  "access_log")


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; anything "
                        "else needs --api-keys)")
    parser.add_argument("--port", type=int, help="port to bind (default 8000; 0: any free)")
    parser.add_argument("--api-keys", help="JSON file listing the accepted keys' digests "
                        "and tenants")
    parser.add_argument("--hash-key", action="store_true",
                        help="print the digest of the API key on standard input, and exit")
    parser.add_argument("--responder", default="filler",
                        help="what simulated engines answer: filler (default), tool-rounds "
                        "(calls the client's tools, then answers) or FILE.py:NAME")
    parser.add_argument("--config", help="JSON file of RuntimeConfig fields (pools, ...)")
    parser.add_argument("--idle-timeout-s", type=float, dest="idle_timeout_s")
    parser.add_argument("--max-body-bytes", type=int)
    parser.add_argument("--max-inflight", type=int)
    parser.add_argument("--max-inflight-per-tenant", type=int)
    parser.add_argument("--default-max-tokens", type=int)
    parser.add_argument("--log-content", action="store_true", default=None,
                        help="log each call's messages (debugging only)")
    parser.add_argument("--access-log", action="store_true", default=None,
                        help="Ray Serve's access log, a line per request (no content)")
    parser.add_argument("--workers", type=int, help="simulated GPU workers")
    parser.add_argument("--model", help="model the workers serve, e.g. llama-3.1-8b")
    parser.add_argument("--gpu", help="GPU the workers model: a100, h100, h200")
    parser.add_argument("--tp", type=int, help="tensor-parallel degree per worker")
    parser.add_argument("--time-scale", type=float, help="wall seconds per simulated GPU "
                        "second (default 1.0)")
    parser.add_argument("--queue", help="queue policy (fair_share shares by API key)")
    parser.add_argument("--router", help="routing policy")
    parser.add_argument("--ttl", help="KV retention across tool calls")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--trace-dir", help="where the run folder with trace.jsonl goes")


def run_serve_command(args: argparse.Namespace) -> int:
    if args.hash_key:
        secret = sys.stdin.readline().strip()
        if not secret:
            print("agentrt: --hash-key reads the key from standard input; got nothing",
                  file=sys.stderr)
            return 2
        print("sha256:" + hash_key(secret))
        return 0
    try:
        cluster, gateway = _configs(args)
        responder = load_responder(args.responder)
    except (ValueError, OSError) as exc:
        print(f"agentrt: {exc}", file=sys.stderr)
        return 2
    from agentrt.runtime.serve.launcher import serve

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with serve(cluster, gateway=gateway, responder=responder) as gw:
        print(f"agentrt gateway on {gw.base_url} ({cluster.describe_workers()}); traces "
              f"in {gw.trace_path}; Ctrl-C stops it", flush=True)
        stop.wait()
        print("agentrt: stopping the gateway", file=sys.stderr, flush=True)
    return 0


def _configs(args: argparse.Namespace) -> tuple[RuntimeConfig, GatewayConfig]:
    """The cluster's and the gateway's configuration; ValueError naming a bad option."""
    base: dict[str, Any] = {}
    if args.config:
        base = json.loads(Path(args.config).read_text())
    flags = {k: getattr(args, k) for k in _CLUSTER_FLAGS if getattr(args, k) is not None}
    try:
        cluster = RuntimeConfig(**{**base, **flags})
    except ValidationError as exc:
        raise ValueError(explain(exc, flags=True)) from None
    options = {k: getattr(args, k) for k in _GATEWAY_FLAGS if getattr(args, k) is not None}
    if args.api_keys:
        try:
            options["api_keys"] = TypeAdapter(list[ApiKey]).validate_json(
                Path(args.api_keys).read_bytes())
        except ValidationError as exc:
            raise ValueError(f"--api-keys {args.api_keys}: {explain(exc)}") from None
    try:
        gateway = GatewayConfig(**options)
    except ValidationError as exc:
        raise ValueError(explain(exc, flags=True)) from None
    return cluster, gateway


def load_responder(spec: str):
    """A responder by name (filler, tool-rounds) or FILE.py:NAME (a Responder, or a
    callable returning one)."""
    from agentrt.runtime.engines.simulated.responder import make_responder
    from agentrt.runtime.serve.responders import tool_rounds

    if spec == "tool-rounds":
        return tool_rounds()
    if ":" not in spec:
        return make_responder(spec)
    path, _, name = spec.rpartition(":")
    if not Path(path).is_file():
        raise ValueError(f"--responder {spec}: {path} does not exist; give FILE.py:NAME")
    module_name = f"agentrt_responder_{Path(path).stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    # Shipped to the workers by value: the file need not be importable there.
    ray.cloudpickle.register_pickle_by_value(module)
    if not hasattr(module, name):
        raise ValueError(f"--responder {spec}: {path} defines no {name!r}")
    value = getattr(module, name)
    return value() if callable(value) and not hasattr(value, "respond") else value
