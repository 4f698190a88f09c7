"""`fengqiao view` without a broker: the probes and `/metrics` in front of the app
(consumers/view/serve.py), and every failure to start as one `error:` line with its exit code
(consumers/cli/view.py). The service on a real broker: tests/integration/test_view_service.py."""

from __future__ import annotations

import asyncio
import os
import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from consumers.cli import view as view_cli
from consumers.cli.main import main
from consumers.view.metrics import ViewMetrics
from consumers.view.serve import HttpThread, bind, not_found, with_probes
from consumers.view.settings import load_view_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith("FENGQIAO_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def no_broker_needed(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    clean_env.setattr(view_cli, "topics_problem", lambda _config: None)
    return clean_env


def test_probes_and_metrics_answer_in_front_of_the_app() -> None:
    registry = CollectorRegistry()
    ViewMetrics.create(registry).records.labels("applied").inc(3)
    app = with_probes(not_found, registry, alive=lambda: (True, "ok"),
                      ready=lambda: (False, "catching up: 12 offsets of t to read"))  # fmt: skip
    with TestClient(app) as client:
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert 'fengqiao_view_records_total{outcome="applied"} 3.0' in metrics.text
        assert metrics.headers["content-type"].startswith("text/plain; version=")
        assert (client.get("/healthz").status_code, client.get("/healthz").text) == (200, "ok\n")
        ready = client.get("/readyz")
        assert (ready.status_code, ready.text) == (503, "catching up: 12 offsets of t to read\n")
        assert client.head("/readyz").content == b""
        assert client.get("/api/cases").status_code == 404  # no API: the app behind says


def test_a_check_that_raises_answers_503_with_its_type_only() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("secret detail")

    app = with_probes(not_found, CollectorRegistry(), alive=broken, ready=broken)
    with TestClient(app) as client:
        answer = client.get("/healthz")
    assert (answer.status_code, answer.text) == (503, "check raised RuntimeError\n")


def test_a_busy_port_is_one_error_line(
    no_broker_needed: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = load_view_config(
            {"view_db": f"sqlite:///{tmp_path / 'v.db'}", "view_http_host": "127.0.0.1",
             "view_http_port": port},
            {"workflows": ROOT / "workflows"},
        )  # fmt: skip
        assert view_cli.run_view(config) == 2
    assert capsys.readouterr().err == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_bind_names_an_unknown_host() -> None:
    with pytest.raises(OSError, match=r"cannot listen on no-such-host.invalid:0: "):
        bind("no-such-host.invalid", 0)


def test_connections_on_the_bound_socket_send_without_delay() -> None:
    """asyncio (under uvicorn) turns Nagle's algorithm off only on sockets that say TCP: with
    protocol 0, each keep-alive answer's body waited for the client's delayed ACK (~40 ms)."""

    async def accepted_nodelay() -> int:
        found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            found.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        sock = bind("127.0.0.1", 0)
        async with await asyncio.start_server(accepted, sock=sock):
            _, client = await asyncio.open_connection(*sock.getsockname())
            nodelay = await asyncio.wait_for(found, 10)
            client.close()
            await client.wait_closed()
        return nodelay

    assert asyncio.run(accepted_nodelay()) != 0


def test_a_database_that_does_not_answer_is_one_line_without_the_password(
    no_broker_needed: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://view:hunter2@127.0.0.1:{port}/fengqiao"
    config = load_view_config({"view_db": url}, {"workflows": ROOT / "workflows"})
    assert view_cli.run_view(config) == 2
    err = capsys.readouterr().err
    shown = f"postgresql+psycopg://view:***@127.0.0.1:{port}/fengqiao"
    assert err.startswith(f"error: the read model's database {shown}: ")
    assert err.count("\n") == 1
    assert "hunter2" not in err


def test_an_unusable_access_file_is_one_line(
    no_broker_needed: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - name: ops\n    sha256: not-a-hash\n")
    no_broker_needed.setenv("FENGQIAO_VIEW_ACCESS", str(tokens))
    config = load_view_config({"view_db": f"sqlite:///{tmp_path / 'v.db'}", "view_http_port": 0},
                              {"workflows": ROOT / "workflows"})  # fmt: skip
    assert view_cli.run_view(config) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tokens}: ")
    assert err.count("\n") == 1


def test_bad_settings_are_one_error_line_and_exit_2(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("FENGQIAO_VIEW_BATCH", "0")
    clean_env.setenv("FENGQIAO_VIEW_DB", "sqlite:///x.db")
    clean_env.setenv("FENGQIAO_VIEW_BATCHES", "5")
    assert main(["view"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("warning: FENGQIAO_VIEW_BATCHES is not a Fengqiao setting "
                      "(did you mean FENGQIAO_VIEW_BATCH?)")  # fmt: skip
    assert err[1] == "error: invalid settings (1 problem):"
    assert err[2].strip() == "FENGQIAO_VIEW_BATCH: Input should be greater than 0 (got '0')"


def test_uvicorn_serves_on_its_thread_and_stops_when_asked() -> None:
    registry = CollectorRegistry()
    app = with_probes(
        not_found, registry, alive=lambda: (True, "ok"), ready=lambda: (True, "ready")
    )
    http = HttpThread(app, bind("127.0.0.1", 0))
    assert http.start()
    port = http.port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            assert (answer.status, answer.read()) == (200, b"ready\n")
    finally:
        http.stop()
    assert not http._thread.is_alive()
    with pytest.raises(ConnectionRefusedError):  # the socket is closed: nothing listens
        socket.create_connection(("127.0.0.1", port), timeout=1)
