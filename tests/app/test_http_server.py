"""The ops HTTP server over real HTTP: probes, metrics, status, the bearer-protected trigger."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from syncd.app.service.http_server import OpsServer
from syncd.app.service.metrics import Metrics
from syncd.model import SecretValue
from tests.app.conftest import LogCapture


class FakeSource:
    """A StatusSource whose answers the test sets; records the triggers it receives."""

    def __init__(self) -> None:
        self.healthy: tuple[bool, dict[str, Any]] = (True, {"status": "ok"})
        self.ready: tuple[bool, dict[str, Any]] = (True, {"status": "ready"})
        self.mappings = {"api-keys", "signing"}
        self.triggered: list[str | None] = []
        self.fail_with: Exception | None = None

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        self._maybe_fail()
        return self.healthy

    def readyz(self) -> tuple[bool, dict[str, Any]]:
        self._maybe_fail()
        return self.ready

    def status(self) -> dict[str, Any]:
        self._maybe_fail()
        return {"mappings": [{"name": name, "in_sync": True} for name in sorted(self.mappings)]}

    def trigger(self, mapping: str | None) -> tuple[int, dict[str, Any]]:
        if mapping is not None and mapping not in self.mappings:
            return 404, {"error": "unknown mapping", "mapping": mapping}
        self.triggered.append(mapping)
        return 202, {"accepted": True, "mapping": mapping}

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with


class Token:
    """The trigger token as a rotatable credential."""

    def __init__(self) -> None:
        self.current = "canary-trigger-" + secrets.token_hex(8)

    def __call__(self) -> SecretValue:
        return SecretValue(self.current)


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def token() -> Token:
    return Token()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(version="1.2.3")


ServerFactory = Callable[..., OpsServer]


@pytest.fixture
def make_server(source: FakeSource, metrics: Metrics) -> Iterator[ServerFactory]:
    started: list[OpsServer] = []

    def make(trigger_token: Callable[[], SecretValue] | None = None) -> OpsServer:
        server = OpsServer(source, metrics, bind="127.0.0.1", port=0, trigger_token=trigger_token)
        started.append(server.start())
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: ServerFactory, token: Token) -> OpsServer:
    return make_server(token)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        yield client


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# --- read-only endpoints ------------------------------------------------------------------------


def test_port_zero_binds_a_free_port_and_url_points_at_it(server: OpsServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_metrics_endpoint_serves_the_registry_as_prometheus_text(
    server: OpsServer, http: httpx.Client, metrics: Metrics
) -> None:
    metrics.set_ready(True)
    response = http.get(f"{server.url}/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'syncd_build_info{python="' in response.text
    assert "syncd_ready 1.0" in response.text


@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate, gzip;q=0.5"])
def test_metrics_of_many_mappings_arrive_whole_with_their_content_length(
    server: OpsServer, http: httpx.Client, metrics: Metrics, encoding: str
) -> None:
    metrics.configure_mappings([f'm{i}"\\' for i in range(600)])  # several chunks, escaped labels
    for i in range(600):
        metrics.count_drift(f'm{i}"\\', corrected=True)
    response = http.get(f"{server.url}/metrics", headers={"Accept-Encoding": encoding})
    expected, _ = metrics.render()

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == response.num_bytes_downloaded
    assert len(metrics.render_chunks()[0]) > 3
    if encoding == "identity":
        assert "content-encoding" not in response.headers
    else:  # gzip, as Prometheus asks for it: compressed while the exposition is written
        assert response.headers["content-encoding"] == "gzip"
        assert response.num_bytes_downloaded * 4 < len(response.content)

    def stable(body: bytes) -> list[bytes]:  # process_* (CPU time, RSS) move between two scrapes
        return [line for line in body.splitlines() if not line.startswith((b"process_", b"# HELP process_"))]

    assert stable(response.content) == stable(expected)
    assert b'syncd_drift_corrected_total{mapping="m599\\"\\\\"} 1.0' in response.content


@pytest.mark.parametrize("header", ["gzip;q=0", "gzip; q=0.000", "br", ""])
def test_metrics_are_not_compressed_for_a_client_that_does_not_take_gzip(
    server: OpsServer, http: httpx.Client, header: str
) -> None:
    response = http.get(f"{server.url}/metrics", headers={"Accept-Encoding": header})

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert int(response.headers["content-length"]) == len(response.content)


def test_head_on_metrics_has_headers_and_no_body(server: OpsServer, http: httpx.Client) -> None:
    response = http.head(f"{server.url}/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert int(response.headers["content-length"]) > 1000
    assert response.content == b""


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probe_answers_200_with_its_json_when_ok(server: OpsServer, http: httpx.Client, path: str) -> None:
    response = http.get(server.url + path)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] in {"ok", "ready"}


def test_failing_probes_answer_503_with_the_sources_reasons(
    server: OpsServer, http: httpx.Client, source: FakeSource
) -> None:
    source.healthy = (False, {"status": "unhealthy", "problems": ["no cycle finished for 300s"]})
    source.ready = (False, {"status": "not ready", "problems": ["no valid Vault token"]})

    health, ready = http.get(f"{server.url}/healthz"), http.get(f"{server.url}/readyz")

    assert (health.status_code, health.json()["problems"]) == (503, ["no cycle finished for 300s"])
    assert (ready.status_code, ready.json()["problems"]) == (503, ["no valid Vault token"])


def test_a_probe_that_raises_answers_503_with_the_error_class_only(
    server: OpsServer, http: httpx.Client, source: FakeSource, json_logs: LogCapture
) -> None:
    canary = "canary-" + secrets.token_hex(8)
    source.fail_with = RuntimeError(f"state store broke near {canary}")

    response = http.get(f"{server.url}/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "error_code": "RuntimeError"}
    assert canary not in response.text


def test_status_serves_the_sources_json(server: OpsServer, http: httpx.Client) -> None:
    response = http.get(f"{server.url}/status")

    assert response.status_code == 200
    assert [m["name"] for m in response.json()["mappings"]] == ["api-keys", "signing"]


def test_status_that_raises_answers_500_with_the_error_class(
    server: OpsServer, http: httpx.Client, source: FakeSource, json_logs: LogCapture
) -> None:
    source.fail_with = KeyError("api-keys")

    response = http.get(f"{server.url}/status")

    assert response.status_code == 500
    assert response.json()["error_code"] == "KeyError"


def test_head_on_a_probe_has_headers_and_no_body(server: OpsServer, http: httpx.Client) -> None:
    response = http.head(f"{server.url}/healthz")

    assert response.status_code == 200
    assert int(response.headers["content-length"]) > 0
    assert response.content == b""


# --- routing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/metrics/", "/trigger/now", "/admin"])
def test_unknown_path_is_404(server: OpsServer, http: httpx.Client, path: str) -> None:
    assert http.get(server.url + path).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("POST", "/metrics", "GET, HEAD"), ("DELETE", "/status", "GET, HEAD"), ("GET", "/trigger", "POST")],
)
def test_wrong_method_is_405_with_allow(
    server: OpsServer, http: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = http.request(method, server.url + path)

    assert response.status_code == 405
    assert response.headers["allow"] == allow


def test_oversized_request_body_is_refused(server: OpsServer, http: httpx.Client, token: Token) -> None:
    response = http.post(f"{server.url}/trigger", headers=bearer(token.current), content=b"x" * (65 * 1024))

    assert response.status_code == 413


# --- trigger ------------------------------------------------------------------------------------


def test_trigger_without_a_configured_token_is_403_and_runs_nothing(
    make_server: ServerFactory, http: httpx.Client, source: FakeSource
) -> None:
    server = make_server(trigger_token=None)

    response = http.post(f"{server.url}/trigger", headers=bearer("anything"))

    assert response.status_code == 403
    assert "trigger_token" in response.json()["reason"]
    assert source.triggered == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
    ids=["missing", "wrong", "basic-scheme", "empty-bearer"],
)
def test_trigger_without_the_right_bearer_token_is_401_with_a_challenge(
    server: OpsServer, http: httpx.Client, source: FakeSource, headers: dict[str, str]
) -> None:
    response = http.post(f"{server.url}/trigger", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert source.triggered == []


def test_trigger_with_the_right_token_is_accepted_for_all_mappings(
    server: OpsServer, http: httpx.Client, source: FakeSource, token: Token
) -> None:
    response = http.post(f"{server.url}/trigger", headers=bearer(token.current))

    assert response.status_code == 202
    assert response.json() == {"accepted": True, "mapping": None}
    assert source.triggered == [None]


def test_trigger_with_a_mapping_passes_it_to_the_source(
    server: OpsServer, http: httpx.Client, source: FakeSource, token: Token
) -> None:
    response = http.post(f"{server.url}/trigger", params={"mapping": "signing"}, headers=bearer(token.current))

    assert response.status_code == 202
    assert source.triggered == ["signing"]


def test_trigger_for_an_unknown_mapping_is_404(
    server: OpsServer, http: httpx.Client, source: FakeSource, token: Token
) -> None:
    response = http.post(f"{server.url}/trigger", params={"mapping": "ghost"}, headers=bearer(token.current))

    assert response.status_code == 404
    assert response.json()["mapping"] == "ghost"
    assert source.triggered == []


@pytest.mark.parametrize("query", ["mapping=", "mapping=a&mapping=b"])
def test_trigger_with_an_empty_or_repeated_mapping_is_400(
    server: OpsServer, http: httpx.Client, source: FakeSource, token: Token, query: str
) -> None:
    response = http.post(f"{server.url}/trigger?{query}", headers=bearer(token.current))

    assert response.status_code == 400
    assert source.triggered == []


def test_a_rotated_trigger_token_applies_at_the_next_request(
    server: OpsServer, http: httpx.Client, token: Token
) -> None:
    old = token.current
    token.current = "canary-trigger-rotated-" + secrets.token_hex(8)

    assert http.post(f"{server.url}/trigger", headers=bearer(old)).status_code == 401
    assert http.post(f"{server.url}/trigger", headers=bearer(token.current)).status_code == 202


def test_the_trigger_token_never_reaches_logs_or_responses(
    server: OpsServer, http: httpx.Client, token: Token, json_logs: LogCapture
) -> None:
    wrong = "canary-wrong-" + secrets.token_hex(8)
    bodies = [
        http.post(f"{server.url}/trigger", headers=bearer(wrong)).text,
        http.post(f"{server.url}/trigger", headers=bearer(token.current)).text,
    ]

    for text in [*bodies, json_logs.text]:
        assert token.current not in text
        assert wrong not in text


# --- logging and lifecycle ------------------------------------------------------------------------


def test_access_lines_go_to_structlog_at_debug_and_not_to_stderr(
    server: OpsServer, http: httpx.Client, json_logs: LogCapture, capfd: pytest.CaptureFixture[str]
) -> None:
    http.get(f"{server.url}/healthz")
    http.get(f"{server.url}/nope")

    access = json_logs.events("ops request")
    assert [(a["method"], a["path"], a["status"], a["level"]) for a in access] == [
        ("GET", "/healthz", 200, "debug"),
        ("GET", "/nope", 404, "debug"),
    ]
    assert capfd.readouterr().err == ""


def test_concurrent_requests_are_served_in_parallel_threads(
    server: OpsServer, source: FakeSource, http: httpx.Client
) -> None:
    entered, release = threading.Barrier(3, timeout=10), threading.Event()
    original = source.status

    def slow_status() -> dict[str, Any]:
        entered.wait()  # both requests must be inside the handler at once
        release.wait(timeout=10)
        return original()

    source.status = slow_status  # type: ignore[method-assign]
    codes: list[int] = []
    workers = [
        threading.Thread(target=lambda: codes.append(http.get(f"{server.url}/status").status_code)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    entered.wait()
    release.set()
    for worker in workers:
        worker.join(timeout=10)

    assert codes == [200, 200]


def test_stop_closes_the_port_and_is_idempotent(make_server: ServerFactory, http: httpx.Client) -> None:
    server = make_server()
    url = server.url
    assert http.get(f"{url}/healthz").status_code == 200

    server.stop()
    server.stop()

    with pytest.raises(httpx.ConnectError):
        http.get(f"{url}/healthz")
    assert not any(t.name == "syncd-ops-http" and t.is_alive() for t in threading.enumerate())


def test_context_manager_starts_and_stops(source: FakeSource, metrics: Metrics, http: httpx.Client) -> None:
    with OpsServer(source, metrics, bind="127.0.0.1", port=0, trigger_token=None) as server:
        url = server.url
        assert http.get(f"{url}/status").status_code == 200
    with pytest.raises(httpx.ConnectError):
        http.get(f"{url}/status")
