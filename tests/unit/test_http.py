"""consumers/runtime/http.py over a real socket: /metrics, /healthz, /readyz, 404, no access log."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from consumers.runtime.http import CheckResult, HttpServer

pytestmark = pytest.mark.unit


class Flags:
    def __init__(self) -> None:
        self.alive = True
        self.ready: CheckResult = (False, "restoring partition state")


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("fengqiao_test_events", "Events.", ["reason"], registry=registry).labels("ok").inc(3)
    return registry


@pytest.fixture
def flags() -> Flags:
    return Flags()


@pytest.fixture
def server(registry: CollectorRegistry, flags: Flags) -> Iterator[HttpServer]:
    http = HttpServer(registry, alive=lambda: flags.alive, ready=lambda: flags.ready)
    http.start("127.0.0.1", 0)
    yield http
    http.stop()


def get(server: HttpServer, path: str, method: str = "GET") -> tuple[int, str, str]:
    url = f"http://127.0.0.1:{server.port}{path}"
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers["Content-Type"], err.read().decode()


def test_start_binds_a_free_port_when_asked_for_0(server: HttpServer) -> None:
    assert server.port is not None
    assert server.port > 0


def test_metrics(server: HttpServer) -> None:
    status, ctype, body = get(server, "/metrics")
    assert status == 200
    assert ctype == CONTENT_TYPE_LATEST
    assert 'fengqiao_test_events_total{reason="ok"} 3.0' in body
    assert get(server, "/metrics?name[]=x")[0] == 200


def test_healthz_follows_the_loop(server: HttpServer, flags: Flags) -> None:
    assert get(server, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
    flags.alive = False
    status, _, body = get(server, "/healthz")
    assert (status, body) == (503, "not alive\n")


def test_readyz_flips_from_503_to_200(server: HttpServer, flags: Flags) -> None:
    assert get(server, "/readyz")[::2] == (503, "restoring partition state\n")
    flags.ready = False
    assert get(server, "/readyz")[::2] == (503, "not ready\n")
    flags.ready = True
    assert get(server, "/readyz")[::2] == (200, "ready\n")
    flags.ready = (True, "")
    assert get(server, "/readyz")[0] == 200


def test_a_check_that_raises_answers_503(registry: CollectorRegistry) -> None:
    def broken() -> bool:
        raise RuntimeError("case 12345 exploded")

    with HttpServer(registry, alive=broken, ready=broken) as http:
        http.start("127.0.0.1", 0)
        status, _, body = get(http, "/healthz")
        assert status == 503
        assert body == "not alive: check raised RuntimeError\n"
        assert get(http, "/readyz")[0] == 503


def test_unknown_path_is_404(server: HttpServer) -> None:
    assert get(server, "/")[0] == 404
    assert get(server, "/metricsx")[0] == 404


def test_head_has_no_body(server: HttpServer) -> None:
    status, _, body = get(server, "/healthz", method="HEAD")
    assert (status, body) == (200, "")


def test_requests_are_not_logged(server: HttpServer, capfd: pytest.CaptureFixture[str]) -> None:
    get(server, "/metrics")
    get(server, "/nope")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_concurrent_scrapes(server: HttpServer) -> None:
    results: list[int] = []

    def scrape() -> None:
        results.append(get(server, "/metrics")[0])

    threads = [threading.Thread(target=scrape) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8


def test_stop_releases_the_port(registry: CollectorRegistry) -> None:
    http = HttpServer(registry, alive=lambda: True, ready=lambda: True)
    port = http.start("127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="already started"):
        http.start("127.0.0.1", 0)
    http.stop()
    http.stop()  # twice is fine
    assert http.port is None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    again = HttpServer(registry, alive=lambda: True, ready=lambda: True)
    assert again.start("127.0.0.1", port) == port
    again.stop()


def test_port_in_use_is_a_clear_error(registry: CollectorRegistry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        http = HttpServer(registry, alive=lambda: True, ready=lambda: True)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            http.start("127.0.0.1", port)
