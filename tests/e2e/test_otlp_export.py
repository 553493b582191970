"""With OTEL_EXPORTER_OTLP_ENDPOINT set, spans also go out over OTLP/HTTP: here to a
collector stand-in on the loopback interface that records what it receives."""
from __future__ import annotations

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.test_cli import AGENTRT, ROOT

trace_service = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="the OTLP exporter is a test extra: pip install -e '.[test]'")
ExportTraceServiceRequest = trace_service.ExportTraceServiceRequest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Collector(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            Collector.received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_reach_an_otlp_collector(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}"}
    env.pop("RAY_ADDRESS", None)
    try:
        proc = subprocess.run([*AGENTRT, "run", "examples/coding_agent.py", "--programs", "2",
                               "--workers", "1", "--time-scale", "0.1", "--quiet",
                               "--trace-dir", str(tmp_path)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    names = set()
    for body in Collector.received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope in resource_spans.scope_spans:
                names.update(span.name for span in scope.spans)
    assert "invoke_workflow coding_agent" in names  # from the driver process
    assert {"invoke_agent solve", "chat llama-3.1-8b", "execute_tool run_tests"} <= names
