"""The view's HTTP side: one uvicorn server, on a thread, for the API, the console and the probes.

`with_probes` puts `/metrics` (the view's own registry), `/healthz` and `/readyz` in front of
whatever app serves the rest (the FastAPI app of consumers/view/app.py, or `not_found` while
there is none), as plain ASGI: they answer without a token, like the engine's (they carry no
case data), and whatever the app does with its routes cannot hide them. A check answers as the
engine's do (consumers/runtime/http.py): 200 `ok`/`ready`, else 503 and the reason.

Why uvicorn runs on a thread and the consumer on the main thread: Python delivers signals to
the main thread only, and the service's one stop path (SIGTERM/SIGINT → the consumer finishes
its batch, then the server stops) must not compete with uvicorn's own handlers, which uvicorn
installs only on the main thread and which re-raise the signal after shutdown (the process
would end killed by SIGTERM, not with exit 0). On a thread, uvicorn installs none and stops when
`should_exit` is set. The socket is bound here, before the thread starts, so a busy port or an
unknown host is an `OSError` the caller turns into one `error:` line (uvicorn would log it and
`sys.exit` the thread).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus

import uvicorn
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

Check = Callable[[], tuple[bool, str]]

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
_TEXT = b"text/plain; charset=utf-8"


def bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0: a free one); `OSError("cannot listen on HOST:PORT: …")`.

    The protocol is named (`IPPROTO_TCP`, not 0): asyncio turns Nagle's algorithm off
    (TCP_NODELAY) only on connections whose socket says TCP, and the accepted ones inherit it
    from this one. With 0, uvicorn's answer went out as headers, then the body held back until
    the client's delayed ACK: every keep-alive request took ~40 ms more (`bench view` found it).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror}") from err
    return sock


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The app while there is no API to serve: 404 for every other path."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await _respond(send, HTTPStatus.NOT_FOUND, b"not found\n", _TEXT, scope)


def with_probes(app: ASGIApp, registry: CollectorRegistry, alive: Check, ready: Check) -> ASGIApp:
    """`app` with `/metrics`, `/healthz` and `/readyz` answered in front of it."""

    async def probes(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path == "/metrics":
            body = generate_latest(registry)
            await _respond(send, HTTPStatus.OK, body, CONTENT_TYPE_LATEST.encode(), scope)
        elif path in ("/healthz", "/readyz"):
            ok, reason = _run(alive if path == "/healthz" else ready)
            good = "ok" if path == "/healthz" else "ready"
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            await _respond(send, status, f"{good if ok else reason}\n".encode(), _TEXT, scope)
        else:
            await app(scope, receive, send)

    return probes


def _run(check: Check) -> tuple[bool, str]:
    try:
        return check()
    except Exception as err:  # a broken check answers 503, never a traceback
        return False, f"check raised {type(err).__name__}"


async def _respond(
    send: Send, status: HTTPStatus, body: bytes, content_type: bytes, scope: Scope
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]  # fmt: skip
    await send({"type": "http.response.start", "status": int(status), "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


class HttpThread:
    """uvicorn serving `app` on `sock`, on a daemon thread (see the module docstring)."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        self.sock = sock
        # No access log: paths name cases (/api/cases/ID), and no log line may (DESIGN §7).
        # No log config: uvicorn's loggers go to the root logger the service configured.
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="auto",
                                timeout_graceful_shutdown=int(STOP_TIMEOUT_S / 2))  # fmt: skip
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                        name="fengqiao-view-http", daemon=True)  # fmt: skip

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> bool:
        """Serve; False when the server did not come up (the app's startup failed)."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return self.server.started

    def stop(self) -> None:
        """Finish the requests in flight (a few seconds at most) and close the socket."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)
        self.sock.close()
