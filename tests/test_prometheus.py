"""The Prometheus metrics provider: templating, parsing every malformed answer, auth, TLS,
timeouts, and how many requests a poll costs — against a local HTTP server that speaks
Prometheus's API (the real server is in tests/integration/test_sandbox.py).
"""

from __future__ import annotations

import json
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from relconsole.clock import FastClock
from relconsole.config import Secret
from relconsole.model import MetricSpec, Reading
from relconsole.providers import registry
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.providers.prometheus import (
    PrometheusMetrics,
    check_queries,
    explain_status,
    parse_instant,
    parse_number,
    parse_range,
    parse_settings,
    render,
)
from tests.helpers import demo_config, self_signed_certificate

ERROR_RATE = MetricSpec(
    "error_rate",
    'sum(rate(http_requests_total{version="{{version}}",code=~"5.."}[1m])) / '
    'sum(rate(http_requests_total{version="{{version}}"}[1m]))',
    "ratio",
)
P99 = MetricSpec(
    "latency_p99",
    'histogram_quantile(0.99, sum by (le) (rate(x_bucket{version="{{ version }}"}[1m])))',
    "seconds",
)
VERSIONS = {"canary": "2.3.0", "baseline": "2.2.1"}
TOKEN = "s3cr3t-t0ken-value"


def vector(*values: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"n": str(i)}, "value": [1_700_000_000.0, v]} for i, v in enumerate(values)
    ]}}


# ----------------------------------------------------------------------------- a fake API

Answer = tuple[int, bytes | str | dict[str, Any]]


@dataclass
class FakePrometheus:
    """A Prometheus API on loopback; `answer(path, query)` decides each reply."""

    answer: Callable[[str, dict[str, str]], Answer]
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Prometheus does

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                fake.requests.append({"path": url.path, "query": query,
                                      "headers": dict(self.headers),
                                      "port": self.client_address[1]})
                if fake.delay:
                    time.sleep(fake.delay)
                status, body = fake.answer(url.path, query)
                if isinstance(body, dict):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        return Handler


class Server(ThreadingHTTPServer):
    request_queue_size = 64  # socketserver's default of 5 drops a poll's parallel connects
    daemon_threads = True


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    prom = FakePrometheus(answer=lambda path, q: (200, vector("0.5")))
    server = Server(("127.0.0.1", 0), prom.handler())
    prom.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield prom
    server.shutdown()
    server.server_close()


def provider(url: str, call_timeout: float = 5.0, **extra: Any) -> PrometheusMetrics:
    settings = parse_settings({"type": "prometheus", "url": url, **extra}, call_timeout)
    return PrometheusMetrics(settings, VERSIONS, FastClock())


# ----------------------------------------------------------------------------- templating


def test_render_fills_version_in_every_placeholder_spelling() -> None:
    assert render(ERROR_RATE.query, "2.3.0").count('version="2.3.0"') == 2
    assert 'version="2.3.0"' in render(P99.query, "2.3.0")
    assert "{{" not in render(P99.query, "2.3.0")


def test_render_escapes_the_version_for_a_promql_string() -> None:
    assert render('x{v="{{version}}"}', 'a"b\\c') == 'x{v="a\\"b\\\\c"}'


def test_render_leaves_other_braces_alone() -> None:
    assert render('sum by (le) (x{a="{{version}}"}) {{other}}', "1") == \
        'sum by (le) (x{a="1"}) {{other}}'


def test_queries_without_a_placeholder_or_empty_are_refused() -> None:
    with pytest.raises(ProviderError, match="no query"):
        check_queries([MetricSpec("error_rate", "")])
    with pytest.raises(ProviderError, match="placeholder"):
        check_queries([MetricSpec("error_rate", "sum(rate(http_requests_total[1m]))")])


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("result", "value", "problem"),
    [
        (vector("0.0125")["data"]["result"], 0.0125, None),
        (vector("0")["data"]["result"], 0.0, None),
        ([1_700_000_000.0, "3.5"], 3.5, None),  # a scalar
        ([], None, "no data"),
        (vector("NaN")["data"]["result"], None, "NaN"),
        (vector("+Inf")["data"]["result"], None, "+Inf"),
        (vector("-Inf")["data"]["result"], None, "-Inf"),
        (vector("1", "2", "3")["data"]["result"], None, "3 series where one was expected"),
        ([1_700_000_000.0, "hello"], None, "not a number"),
        ([{"metric": {}, "values": [[1, "1"], [2, "2"]]}], None, "range vector"),
        ([{"metric": {}, "value": "0.5"}], None, "unexpected answer"),
        ([{"metric": {}, "value": [1, None]}], None, "unexpected answer"),
        ({"resultType": "vector"}, None, "unexpected answer"),
        (None, None, "unexpected answer"),
        (["a", "b", "c"], None, "unexpected answer"),
    ],
)
def test_parse_instant_turns_every_bad_answer_into_a_reason(
    result: Any, value: float | None, problem: str | None
) -> None:
    got_value, got_problem = parse_instant(result)
    assert got_value == value
    if problem is None:
        assert got_problem is None
    else:
        assert got_problem is not None and problem in got_problem


def test_parse_number_never_lets_a_non_finite_value_through() -> None:
    for raw in ("NaN", "+Inf", "-Inf", "inf", "nan"):
        value, problem = parse_number(raw)
        assert value is None and problem
    assert parse_number("1e-3") == (0.001, None)
    assert parse_number(True)[0] is None


def test_parse_range_aligns_points_on_the_grid_and_marks_gaps() -> None:
    times = [100.0, 101.0, 102.0, 103.0]
    result = [{"metric": {}, "values": [[100, "0.1"], [101, "NaN"], [103, "0.3"]]}]
    out = parse_range(result, times)
    assert out[0] == (0.1, None)
    assert out[1][0] is None and "NaN" in (out[1][1] or "")
    assert out[2] == (None, "no data")
    assert out[3] == (0.3, None)
    several = parse_range([{"values": []}, {"values": []}], times)
    assert all(v is None and "2 series" in (p or "") for v, p in several)
    assert all(v is None for v, _ in parse_range([], times))
    assert all(v is None for v, _ in parse_range("junk", times))


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"status": "error", "errorType": "bad_data",
               "error": "1:5: parse error: unexpected identifier"},
         "bad query (bad_data: 1:5: parse error: unexpected identifier)"),
        (422, {"status": "error", "errorType": "execution", "error": "many-to-many matching"},
         "query failed (execution: many-to-many matching)"),
        (503, {"status": "error", "errorType": "unavailable", "error": "starting up"},
         "unavailable (unavailable: starting up)"),
        (401, b"Unauthorized", "401 unauthorized"),
        (403, b"", "403 forbidden"),
        (404, b"<html>not found</html>", "404"),
        (500, b"<html>oops</html>", "HTTP 500"),
    ],
)
def test_error_answers_are_explained(status: int, body: Any, expected: str) -> None:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    message = explain_status(status, raw, "http://prom:9090")
    assert message.startswith("prometheus: ")
    assert expected in message


# ----------------------------------------------------------------------------- settings


def settings(call_timeout: float = 5.0, **raw: Any):
    return parse_settings({"type": "prometheus", **raw}, call_timeout)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "'url' is required"),
        ({"url": "prom:9090"}, "url must be http(s)://host:port"),
        ({"url": "ftp://prom"}, "url must be http(s)://host:port"),
        ({"url": "http://prom:notaport"}, "invalid port"),
        ({"url": "http://u:p@prom:9090"}, "must not carry user:password@"),
        ({"url": "http://prom:9090/?x=1"}, "without ?query"),
        ({"url": "http://prom", "token": "plain-text-token"}, "must be a secret reference"),
        ({"url": "http://prom", "token": Secret("t", "env:T"), "username": "u",
          "password": Secret("p", "env:P")}, "not both"),
        ({"url": "http://prom", "password": Secret("p", "env:P")}, "password needs a username"),
        ({"url": "http://prom", "username": "u"}, "username needs a password"),
        ({"url": "http://prom", "headers": ["X-A: b"]}, "'headers' must be a mapping"),
        ({"url": "http://prom", "headers": {"Bad Header": "x"}}, "not a valid header name"),
        ({"url": "http://prom", "headers": {"X-A": "a\r\nInjected: 1"}}, "one line"),
        ({"url": "http://prom", "headers": {"Authorization": "Basic x"},
          "token": Secret("t", "env:T")}, "conflicts"),
        ({"url": "http://prom", "ca_file": "/nonexistent/ca.pem"}, "does not exist"),
        ({"url": "http://prom", "insecure": "yes"}, "must be true or false"),
        ({"url": "http://prom", "timeout": "soon"}, "'timeout'"),
        ({"url": "http://prom", "timeout": "4s"}, "does not fit in release.call_timeout"),
        ({"url": "http://prom", "retries": 9}, "between 0 and 5"),
        ({"url": "http://prom", "tokn": "x"}, "did you mean 'token'"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        settings(**raw)
    assert message in str(caught.value)
    assert str(caught.value).startswith("prometheus: ")


def test_ca_file_and_insecure_contradict(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ProviderError, match="contradict"):
        settings(url="https://prom", ca_file=str(ca), insecure=True)
    assert settings(url="https://prom", ca_file=str(ca)).verify == str(ca)


def test_tls_verification_is_on_by_default_and_off_only_when_asked() -> None:
    assert settings(url="https://prom").verify is True
    assert settings(url="https://prom", insecure=True).verify is False


def test_default_timeout_and_retries_fit_inside_the_engine_call() -> None:
    s = settings(url="http://prom", call_timeout=1.0)
    assert s.timeout * (s.retries + 1) <= 1.0
    s = settings(url="http://prom")
    assert s.timeout == 2.0 and s.retries == 1


def test_secrets_never_show_in_the_settings_repr() -> None:
    s = settings(url="http://prom", token=Secret(TOKEN, "env:T"))
    assert TOKEN not in repr(s)
    assert s.headers["Authorization"] == f"Bearer {TOKEN}"


def test_registry_builds_it_and_validates_the_queries() -> None:
    cfg = demo_config("healthy")
    ctx = BuildContext(plan=cfg.plan, clock=FastClock(), versions=VERSIONS)
    # The demo's metrics have no queries: the prometheus adapter must say so.
    with pytest.raises(ProviderError, match="no query"):
        registry.build("metrics", {"type": "prometheus", "url": "http://prom"}, ctx)
    assert "prometheus" in registry.available("metrics")


# ----------------------------------------------------------------------------- on the wire


async def test_one_request_per_metric_and_version_per_poll(fake: FakePrometheus) -> None:
    fake.answer = lambda path, q: (200, vector("0.25" if '"2.3.0"' in q["query"] else "0.5"))
    prom = provider(fake.url)
    pairs = await prom.sample([ERROR_RATE, P99])
    assert len(fake.requests) == 4 == prom.requests_sent
    assert pairs["error_rate"].canary.value == 0.25
    assert pairs["error_rate"].baseline.value == 0.5
    assert pairs["latency_p99"].canary.usable and pairs["latency_p99"].baseline.usable
    sent = sorted(r["query"]["query"] for r in fake.requests)
    assert sum('"2.3.0"' in q for q in sent) == 2 and sum('"2.2.1"' in q for q in sent) == 2
    assert all(r["path"] == "/api/v1/query" for r in fake.requests)
    await prom.sample([ERROR_RATE, P99])
    assert len(fake.requests) == 8
    await prom.close()


async def test_polls_reuse_their_connections(fake: FakePrometheus) -> None:
    prom = provider(fake.url)
    metrics = [MetricSpec(f"m{i}", f'm{i}{{v="{{{{version}}}}"}}') for i in range(6)]
    for _ in range(3):
        await prom.sample(metrics)
    assert len(fake.requests) == 3 * 12 == prom.requests_sent
    connections = {r["port"] for r in fake.requests}
    assert len(connections) <= 8, "one pool of 8 kept-alive connections, not one per query"
    await prom.close()


async def test_every_malformed_answer_is_an_inconclusive_reading(fake: FakePrometheus) -> None:
    answers: dict[str, Answer] = {
        "empty": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
        "nan": (200, vector("NaN")),
        "inf": (200, vector("+Inf")),
        "several": (200, vector("1", "2")),
        "bad": (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
        "html": (200, "<html>login</html>"),
        "noresult": (200, {"status": "success"}),
        "unavailable": (503, {"status": "error", "errorType": "unavailable", "error": "x"}),
    }
    fake.answer = lambda path, q: answers[q["query"].split("{")[0]]
    prom = provider(fake.url, retries=0)
    metrics = [MetricSpec(name, name + '{v="{{version}}"}') for name in answers]
    pairs = await prom.sample(metrics)
    expected = {
        "empty": "no data", "nan": "NaN", "inf": "+Inf", "several": "2 series",
        "bad": "bad query", "html": "not JSON", "noresult": "unexpected answer",
        "unavailable": "unavailable",
    }
    for name, words in expected.items():
        for reading in (pairs[name].canary, pairs[name].baseline):
            assert isinstance(reading, Reading)
            assert not reading.usable, name
            assert reading.error is not None and words in reading.error, (name, reading.error)


async def test_bearer_token_and_custom_headers_are_sent(fake: FakePrometheus) -> None:
    prom = provider(fake.url, token=Secret(TOKEN, "env:T"),
                    headers={"X-Scope-OrgID": "team-a", "X-Api-Key": Secret("k3y", "env:K")})
    await prom.sample([ERROR_RATE])
    headers = fake.requests[0]["headers"]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["X-Scope-OrgID"] == "team-a"
    assert headers["X-Api-Key"] == "k3y"


async def test_basic_auth_is_sent(fake: FakePrometheus) -> None:
    import base64

    prom = provider(fake.url, username="relconsole", password=Secret("pw", "env:P"))
    await prom.sample([ERROR_RATE])
    expected = "Basic " + base64.b64encode(b"relconsole:pw").decode()
    assert fake.requests[0]["headers"]["Authorization"] == expected


async def test_a_secret_echoed_by_the_server_never_reaches_the_reading(
    fake: FakePrometheus,
) -> None:
    fake.answer = lambda path, q: (400, {"status": "error", "errorType": "bad_data",
                                         "error": f"token {TOKEN} is not allowed here"})
    prom = provider(fake.url, token=Secret(TOKEN, "env:T"))
    pairs = await prom.sample([ERROR_RATE])
    assert TOKEN not in (pairs["error_rate"].canary.error or "")
    assert "***" in (pairs["error_rate"].canary.error or "")


async def test_a_dead_host_is_a_quick_reading_with_a_reason() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prom = provider(f"http://127.0.0.1:{port}")
    started = time.monotonic()
    pairs = await prom.sample([ERROR_RATE, P99])
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, "the library's default retries would block for seconds"
    reading = pairs["error_rate"].canary
    assert not reading.usable
    assert reading.error == f"prometheus: connection refused by http://127.0.0.1:{port}"


async def test_a_slow_server_times_out_within_the_configured_bound(fake: FakePrometheus) -> None:
    fake.delay = 1.0
    prom = provider(fake.url, timeout="300ms", retries=0)
    started = time.monotonic()
    pairs = await prom.sample([ERROR_RATE])
    assert time.monotonic() - started < 0.9
    assert "no answer" in (pairs["error_rate"].canary.error or "")
    assert "300ms" in (pairs["error_rate"].canary.error or "") or "0.3s" in (
        pairs["error_rate"].canary.error or "")


async def test_the_query_timeout_is_sent_as_a_duration_prometheus_parses(
    fake: FakePrometheus,
) -> None:
    # Prometheus refuses "0.8s" (bad_data); a timeout that is not whole seconds goes as ms.
    prom = provider(fake.url, call_timeout=2.0)  # timeout 0.8 s
    pairs = await prom.sample([ERROR_RATE])
    assert pairs["error_rate"].canary.usable
    assert {r["query"]["timeout"] for r in fake.requests} == {"800ms"}


async def test_a_missing_baseline_version_is_inconclusive_without_a_request(
    fake: FakePrometheus,
) -> None:
    settings_ = parse_settings({"type": "prometheus", "url": fake.url}, 5.0)
    prom = PrometheusMetrics(settings_, {"canary": "2.3.0", "baseline": ""}, FastClock())
    pairs = await prom.sample([ERROR_RATE])
    assert pairs["error_rate"].canary.usable
    assert "versions.baseline" in (pairs["error_rate"].baseline.error or "")
    assert len(fake.requests) == 1


async def test_history_is_one_range_query_per_metric_and_version(fake: FakePrometheus) -> None:
    def answer(path: str, q: dict[str, str]) -> Answer:
        start, end, step = float(q["start"]), float(q["end"]), float(q["step"])
        points = [[start + i * step, "NaN" if i == 1 else str(i)]
                  for i in range(int((end - start) / step) + 1)]
        return 200, {"status": "success",
                     "data": {"resultType": "matrix", "result": [{"metric": {},
                                                                  "values": points}]}}

    fake.answer = answer
    prom = provider(fake.url)
    history = await prom.history([ERROR_RATE, P99], seconds=60, step=5)
    assert len(fake.requests) == 4
    assert all(r["path"] == "/api/v1/query_range" for r in fake.requests)
    pairs = history["error_rate"]
    assert len(pairs) == 12
    assert pairs[0].canary.value == 0.0 and pairs[2].canary.value == 2.0
    assert not pairs[1].canary.usable  # NaN stays a gap
    assert pairs[-1].canary.at - pairs[0].canary.at == 55


# ----------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed_certificate(tmp_path)
    prom = FakePrometheus(answer=lambda path, q: (200, vector("0.5")))
    server = Server(("127.0.0.1", 0), prom.handler())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


async def test_tls_verifies_by_default_and_accepts_a_ca_file_or_insecure(
    tls_server: tuple[str, Path],
) -> None:
    url, cert = tls_server
    refused = await provider(url).sample([ERROR_RATE])
    assert "TLS verification failed" in (refused["error_rate"].canary.error or "")
    trusted = await provider(url, ca_file=str(cert)).sample([ERROR_RATE])
    assert trusted["error_rate"].canary.value == 0.5
    insecure = await provider(url, insecure=True).sample([ERROR_RATE])
    assert insecure["error_rate"].canary.value == 0.5
    assert not math.isnan(insecure["error_rate"].baseline.value or math.nan)
