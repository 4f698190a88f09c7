"""The service's small HTTP side: `/metrics`, `/healthz`, `/readyz` on a daemon thread.

- `/metrics`: the Prometheus text exposition of the registry passed in.
- `/healthz`: 200 `ok` while `alive()` says the process loop is alive, else 503 (liveness: a
  restart helps).
- `/readyz`: 200 `ready` only while `ready()` says so, else 503 with the reason as text
  (readiness: e.g. still restoring partition state; a restart does not help).
- anything else: 404.

A check is a callable returning `bool` or `(bool, reason)`. A check that raises answers 503
with the exception's type name (never its text: it could carry data). Requests are not logged.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

CheckResult = bool | tuple[bool, str]
Check = Callable[[], CheckResult]

_TEXT = "text/plain; charset=utf-8"


def _run_check(check: Check, failed: str) -> tuple[bool, str]:
    try:
        result = check()
    except Exception as err:  # a broken check must answer 503, not kill the request thread
        return False, f"{failed}: check raised {type(err).__name__}"
    if isinstance(result, tuple):
        ok, reason = result
        return bool(ok), reason or failed
    return bool(result), failed


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class HttpServer:
    """`start(host, port)` → the bound port (0 picks a free one); `stop()` shuts it down."""

    def __init__(
        self,
        registry: CollectorRegistry,
        alive: Check,
        ready: Check,
    ) -> None:
        self.registry = registry
        self.alive = alive
        self.ready = ready
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        """The bound port while running."""
        return self._server.server_address[1] if self._server is not None else None

    def start(self, host: str = "0.0.0.0", port: int = 0) -> int:  # noqa: S104 - see Settings
        if self._server is not None:
            raise RuntimeError("HTTP server already started")
        server_class = _Server6 if ":" in host else _Server
        try:
            server = server_class((host, port), self._handler_class())
        except OSError as err:
            raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror}") from err
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="fengqiao-http",
            daemon=True,
        )
        self._thread.start()
        bound: int = server.server_address[1]
        return bound

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "fengqiao"
            sys_version = ""

            def do_GET(self) -> None:
                self._respond(send_body=True)

            def do_HEAD(self) -> None:
                self._respond(send_body=False)

            def _respond(self, *, send_body: bool) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    try:
                        body = generate_latest(owner.registry)
                    except Exception as err:
                        self._send(
                            HTTPStatus.INTERNAL_SERVER_ERROR,
                            f"collecting metrics failed: {type(err).__name__}\n".encode(),
                            _TEXT,
                            send_body,
                        )
                        return
                    self._send(HTTPStatus.OK, body, CONTENT_TYPE_LATEST, send_body)
                elif path == "/healthz":
                    ok, reason = _run_check(owner.alive, "not alive")
                    self._status(ok, "ok", reason, send_body)
                elif path == "/readyz":
                    ok, reason = _run_check(owner.ready, "not ready")
                    self._status(ok, "ready", reason, send_body)
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n", _TEXT, send_body)

            def _status(self, ok: bool, good: str, reason: str, send_body: bool) -> None:
                if ok:
                    self._send(HTTPStatus.OK, f"{good}\n".encode(), _TEXT, send_body)
                else:
                    body = f"{reason}\n".encode()
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, body, _TEXT, send_body)

            def _send(self, status: HTTPStatus, body: bytes, ctype: str, send_body: bool) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """No access log on stderr: Prometheus scrapes every few seconds."""

        return Handler
