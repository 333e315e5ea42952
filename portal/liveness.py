"""Liveness answered by gunicorn's master process, on a port of its own.

``/healthz`` on the application port goes through a worker's request threads: when every
thread waits on the database (a lock, a hung server, a full pool), the probe queues
behind them and Cloud Run would restart a healthy instance in the middle of a database
incident. This listener is a thread of the master (started by ``when_ready`` in
``gunicorn.conf.py``): it imports nothing of Django, touches no database, and answers in
well under a millisecond whatever the workers are doing.

It answers 200 while the master has at least one worker (the master replaces dead
workers itself), 503 otherwise; any other path is a 404. The body is
``{"status": "ok", "workers": N}`` and nothing about the deployment.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_server: ThreadingHTTPServer | None = None


class _Handler(BaseHTTPRequestHandler):
    arbiter: Any = None
    # A probe's connection is short; never keep a thread on an idle one.
    timeout = 5

    def _answer(self, body: bool) -> None:
        if self.path.split("?", 1)[0] != "/healthz":
            self._send(404, {"status": "not found"}, body)
            return
        workers = len(getattr(self.arbiter, "WORKERS", {}) or {})
        status = 200 if workers else 503
        self._send(status, {"status": "ok" if workers else "no workers", "workers": workers}, body)

    def _send(self, status: int, payload: dict, body: bool) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def log_message(self, format: str, *args: Any) -> None:
        # Probes every few seconds would drown the access log.
        pass


def start(arbiter: Any, port: int, host: str | None = None) -> ThreadingHTTPServer:
    """Serve ``/healthz`` on ``host:port`` from a daemon thread of this process."""
    global _server
    host = host if host is not None else os.environ.get("HEALTH_HOST", "0.0.0.0")  # noqa: S104
    handler = type("LivenessHandler", (_Handler,), {"arbiter": arbiter})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="liveness", daemon=True).start()
    _server = server
    if hasattr(arbiter, "log"):
        arbiter.log.info("Liveness at: http://%s:%s/healthz", host, port)
    return server


def close_inherited() -> None:
    """In a forked worker: close the copy of the master's listening socket."""
    if _server is not None:
        _server.socket.close()
