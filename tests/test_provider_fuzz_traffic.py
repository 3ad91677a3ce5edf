"""Bad answers found by machine, for the metrics and traffic providers: whatever Prometheus
or HAProxy's runtime API says, each reading ends as a clean value, an inconclusive one,
or one clear `ProviderError` — never another exception, never a hang, never a made-up
number. The flag providers' twin is tests/test_provider_fuzz.py; its harness (settings,
example database in tests/hypothesis-db, JSON strategies, `Edit`, `no_hang`,
`check_error`) is imported from there, not copied.

Neither provider takes an httpx transport, so each `World` is served by a small local
server thread that answers whatever the current example says:

- Prometheus (requests, in worker threads): a `ThreadingHTTPServer` on loopback. Both
  the instant query (`sample`) and the range query (`history`) are fed arbitrary bytes,
  arbitrary JSON, the realistic answer with values removed or replaced by wrong shapes,
  and realistic shapes with nasty samples (NaN, ±Inf, huge numbers, several series,
  off-grid times) — on random HTTP statuses and headers, with bodies cut short or
  ended by closing the connection.
  A clean result is a `Reading` whose value is a finite float that the server really
  sent as a number (so no default, no number read out of a timestamp or some other
  field's text) and whose error is None, or whose value is None and whose error is a
  short one-line reason.
- HAProxy (asyncio, runtime API): a threaded Unix-socket server in a temporary folder.
  `get weight`, `show servers state`, `show stat` and the answer to `set weight` (and
  blue-green's `set server … state`) are each fed arbitrary bytes, or the realistic
  text (HAProxy 2.6's, from tests/test_haproxy.py) with lines or fields removed,
  replaced, duplicated, or the text cut short.
  A clean result: weights that are whole numbers 0..256 for exactly the configured
  servers, a `TrafficState` with a canary share 0..100 and one-line health, and a
  `set_weight` that succeeds only if HAProxy's read-back said, in HAProxy's own format,
  exactly the weights asked for. A clean failure is a `ProviderError` of one line that
  starts with "prometheus: " or "haproxy: ".

Keep each test's body one call: Hypothesis keys its database by the test's source.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import re
import socketserver
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hypothesis import example, given
from hypothesis import strategies as st

from relconsole.clock import FastClock
from relconsole.config import Secret
from relconsole.model import MetricPair, MetricSpec, Reading, Role, ServerHealth, TrafficState
from relconsole.providers.base import ProviderError
from relconsole.providers.haproxy import HAProxyTraffic
from relconsole.providers.haproxy import parse_settings as haproxy_settings
from relconsole.providers.prometheus import PrometheusMetrics
from relconsole.providers.prometheus import parse_settings as prometheus_settings
from tests.test_haproxy import SERVERS_STATE, STAT_HEADER, UNKNOWN_COMMAND
from tests.test_provider_fuzz import (
    ARBITRARY_BYTES,
    ARBITRARY_JSON,
    FUZZ,
    HEADERS,
    JSON,
    NUMBERS,
    REPLACEMENTS,
    STATUS,
    TEXT,
    TOKEN,
    Deep,
    Edit,
    _paths,
    check_error,
    dumps,
    mutate,
    no_hang,
)

# ====================================================================== Prometheus

METRIC = MetricSpec(
    "error_rate",
    'sum(rate(http_requests_total{version="{{version}}",code=~"5.."}[1m]))',
    "ratio",
)
VERSIONS = {"canary": "2.3.0", "baseline": "2.2.1"}
HISTORY_SECONDS, HISTORY_STEP = 60.0, 5.0  # 12 points on the grid
MESSAGE_LIMIT = 160  # what the gates panel shows of a reason


@dataclass(frozen=True)
class Tick:
    """A range point's time: the i-th time of the grid the request asked for, plus jitter.

    Filled in when the answer is served: the grid follows the wall clock (`history`
    asks for the last minute), so a realistic answer can only be written then."""

    index: int
    jitter: float = 0.0


def _fill(node: Any, start: float, step: float) -> Any:
    if isinstance(node, Tick):
        return start + node.index * step + node.jitter
    if isinstance(node, dict):
        return {k: _fill(v, start, step) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, start, step) for v in node]
    return node


PROM_REALISTIC: dict[str, Any] = {
    "instant": {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"version": "2.3.0"}, "value": [1_700_000_000.123, "0.0125"]},
    ]}},
    "range": {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"version": "2.3.0"},
         "values": [[Tick(i), str(0.01 * i) if i != 3 else "NaN"] for i in range(12)]},
    ]}},
    # What Prometheus answers with a 4xx/5xx. The token stands for a secret that a
    # proxy in front of Prometheus echoes back: it must never reach a reading.
    "error": {"status": "error", "errorType": "bad_data",
              "error": f'1:5: parse error: unexpected identifier near "{TOKEN}"'},
}
PROM_PATHS = [(e, p) for e, doc in PROM_REALISTIC.items() for p in _paths(doc)]


@dataclass(frozen=True)
class Wire:
    """How an answer goes on the wire."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    cut: int | None = None  # announce the whole body, send this many bytes, hang up
    length: bool = True  # False: no Content-Length, the body ends when the connection does


@dataclass(frozen=True)
class Served:
    """`endpoint` ("instant" or "range") answers `body` on `wire`; the other realistically."""

    endpoint: str
    body: bytes
    wire: Wire = Wire()


@dataclass(frozen=True)
class Edited:
    """Both endpoints answer their realistic JSON with `edits` applied; `endpoint` answers
    on `wire` — with Prometheus's (edited) error answer if `wire` is not a 200."""

    edits: tuple[Edit, ...] = ()
    endpoint: str = "instant"
    wire: Wire = Wire()


@dataclass(frozen=True)
class Shaped:
    """Each endpoint answers its own JSON document (Ticks filled in); `wire` for both."""

    instant: Any
    range: Any
    wire: Wire = Wire()


@dataclass
class PromWorld:
    case: Served | Edited | Shaped
    served: dict[str, list[bytes]] = dataclasses.field(
        default_factory=lambda: {"instant": [], "range": []})
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    rendered: dict[tuple[str, float, float], bytes] = dataclasses.field(default_factory=dict)

    def answer(self, endpoint: str, query: dict[str, str]) -> tuple[bytes, Wire]:
        case = self.case
        try:
            start, step = float(query["start"]), float(query["step"])
        except (KeyError, ValueError):
            start, step = 0.0, HISTORY_STEP

        def realistic(name: str, edits: tuple[Edit, ...] = ()) -> bytes:
            key = (name, start, step)  # canary and baseline ask alike: render once
            if key not in self.rendered:
                self.rendered[key] = dumps(
                    mutate(_fill(PROM_REALISTIC[name], start, step), edits, name))
            return self.rendered[key]

        if isinstance(case, Served):
            if endpoint == case.endpoint:
                body, wire = case.body, case.wire
            else:
                body, wire = realistic(endpoint), Wire()
        elif isinstance(case, Edited):
            wire = case.wire if endpoint == case.endpoint else Wire()
            body = realistic("error" if wire.status != 200 else endpoint, case.edits)
        else:
            body = dumps(_fill(case.instant if endpoint == "instant" else case.range,
                               start, step))
            wire = case.wire
        with self.lock:
            self.served[endpoint].append(body if wire.cut is None else body[: wire.cut])
        return body, wire


class PromHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    world: PromWorld | None = None  # the current example's

    def log_message(self, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        endpoint = {"/api/v1/query": "instant", "/api/v1/query_range": "range"}.get(url.path)
        world = PromHandler.world
        self.close_connection = True  # every answer ends its connection: no stale replies
        if world is None or endpoint is None:
            self.send_error(404)
            return
        body, wire = world.answer(endpoint, query)
        try:
            self.send_response(wire.status)
            names = {name.lower() for name, _ in wire.headers}
            if "content-type" not in names:
                self.send_header("Content-Type", "application/json")
            for name, value in wire.headers:
                self.send_header(name, value)
            if wire.length:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body if wire.cut is None else body[: wire.cut])
        except OSError:
            pass


class _PromServer(ThreadingHTTPServer):
    request_queue_size = 64
    daemon_threads = True


_prom_url: str | None = None


def prom_url() -> str:
    """One server for the whole module, started on first use (collection stays cheap)."""
    global _prom_url
    if _prom_url is None:
        server = _PromServer(("127.0.0.1", 0), PromHandler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        _prom_url = f"http://127.0.0.1:{server.server_address[1]}"
    return _prom_url


# ---------------------------------------------------------------------- the oracle

# Prometheus writes a sample as Go's strconv.FormatFloat does, or NaN/±Inf. A number
# taken from any other text ("٥٠", "1_000", "0x10") is one the server never sent.
_PROM_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z", re.ASCII)


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')


def _texts(body: bytes) -> list[str]:
    """`body` as every charset a client may read it in."""
    return [body.decode(encoding, "replace")
            for encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-32")]


def _sent_numbers(bodies: list[bytes]) -> tuple[set[float], bool]:
    """The numbers the server sent — JSON numbers, and strings written as Prometheus
    writes a sample — and whether any answer held several series (then no reading may
    have a value). Read token by token, not parsed: a body nested 2000 deep is fine."""
    numbers: set[float] = set()
    several = False
    for body in bodies:
        for text in _texts(body):
            for token in _TOKENS.findall(text):
                if token.startswith('"'):
                    try:
                        token = json.loads(token)
                    except ValueError:
                        continue
                    if not _PROM_FLOAT.match(token):
                        continue
                with contextlib.suppress(OverflowError, ValueError):
                    value = float(token)
                    if math.isfinite(value):
                        numbers.add(value)
            with contextlib.suppress(ValueError, RecursionError):
                doc = json.loads(text)
                data = doc.get("data") if isinstance(doc, dict) else None
                result = data.get("result") if isinstance(data, dict) else None
                if isinstance(result, list) and len(result) > 1 and isinstance(result[0], dict):
                    several = True
    return numbers, several


def check_reading(reading: Any, sent: tuple[set[float], bool]) -> None:
    """`sent`: what `_sent_numbers` says of the answers this reading was made from."""
    assert isinstance(reading, Reading), f"not a Reading: {reading!r}"
    assert type(reading.at) is float and math.isfinite(reading.at), f"at = {reading.at!r}"
    if reading.value is None:
        error = reading.error
        assert isinstance(error, str) and error.strip(), f"no value and no reason: {reading!r}"
        assert len(error.splitlines()) == 1, f"reason not one line: {error!r}"
        assert len(error) <= MESSAGE_LIMIT, f"reason too long: {error!r}"
        assert TOKEN not in error, "the token is in a reading's reason"
        return
    value = reading.value
    assert reading.error is None, f"a value with a reason: {reading!r}"
    assert type(value) is float and math.isfinite(value), f"value {value!r} is not finite"
    numbers, several = sent
    assert not several, f"{value!r} read from an answer with several series"
    assert value in numbers, f"{value!r} is not a number the server sent (made up)"


def check_pairs(pairs: Any, world: PromWorld, endpoint: str, count: int) -> None:
    assert isinstance(pairs, dict) and set(pairs) == {METRIC.name}, pairs
    got = pairs[METRIC.name]
    got = got if isinstance(got, list) else [got]
    assert len(got) == count, f"{len(got)} points, {count} expected"
    with world.lock:
        bodies = list(world.served[endpoint])
    sent = _sent_numbers(bodies)
    for pair in got:
        assert isinstance(pair, MetricPair)
        check_reading(pair.canary, sent)
        check_reading(pair.baseline, sent)


def prometheus(case: Served | Edited | Shaped) -> None:
    """`sample` (instant queries) then `history` (range queries) against `case`."""
    world = PromWorld(case)
    settings = prometheus_settings(
        {"type": "prometheus", "url": prom_url(), "token": Secret(TOKEN, "env:T"),
         "timeout": "1s", "retries": 1}, 5.0)
    provider = PrometheusMetrics(settings, VERSIONS, FastClock())
    count = int(HISTORY_SECONDS // HISTORY_STEP)

    async def go() -> None:
        try:
            for call, endpoint, points in (
                (lambda: provider.sample([METRIC]), "instant", 1),
                (lambda: provider.history([METRIC], HISTORY_SECONDS, HISTORY_STEP),
                 "range", count),
            ):
                try:
                    pairs = await call()
                except ProviderError as exc:
                    check_error(exc, "prometheus")
                    continue
                check_pairs(pairs, world, endpoint, points)
        finally:
            await provider.close()

    PromHandler.world = world
    try:
        with no_hang():
            asyncio.run(go())
    finally:
        PromHandler.world = None


# ---------------------------------------------------------------------- strategies

EXTRA_HEADERS = st.sampled_from([
    ("Content-Encoding", "gzip"), ("Content-Encoding", "deflate"), ("Content-Encoding", "br"),
    ("Transfer-Encoding", "chunked"), ("Content-Type", "application/json; charset=utf-8"),
    ("Content-Type", "text/plain; version=0.0.4"),
])
WIRE = st.builds(
    Wire,
    STATUS,
    st.tuples(HEADERS, st.lists(EXTRA_HEADERS, max_size=1).map(tuple)).map(
        lambda parts: parts[0] + parts[1]),
    st.one_of(st.none(), st.none(), st.integers(0, 400)),
    st.sampled_from([True, True, True, False]),
)
ENDPOINT = st.sampled_from(["instant", "range"])
SAMPLE = st.one_of(
    st.sampled_from([
        "0", "0.0125", "-0", "1e-3", "12", "NaN", "+Inf", "-Inf", "Inf", "inf", "nan",
        "Infinity", "1e400", "-1e400", "1e-400", "9" * 400, "1.7976931348623157e+308",
        "0x10", "1_000", " 7 ", "٥٠", "", "null", "true", "1,5",
    ]),
    st.floats().map(repr),
    NUMBERS,
    TEXT,
    st.none(),
    st.booleans(),
    JSON,
)
TIMESTAMP = st.one_of(
    st.floats(), st.integers(-(10**6), 10**12),
    st.sampled_from([1_700_000_000.5, 0, -1, 1e308, 10**400, "1700000000", None, True]),
)
TICK = st.builds(Tick, st.integers(-2, 13),
                 st.sampled_from([0.0, 0.0, 0.0004, -0.0004, 0.0006, 0.5, 1e-9]))
LABELS = st.dictionaries(st.sampled_from(["version", "__name__", "le", "code"]), TEXT,
                         max_size=2)


def _series(key: str, point: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({key: point}, optional={"metric": LABELS})


INSTANT_POINT = st.tuples(TIMESTAMP, SAMPLE).map(list)
RANGE_POINT = st.tuples(st.one_of(TICK, TICK, TIMESTAMP), SAMPLE).map(list)
INSTANT_RESULT = st.one_of(
    st.lists(_series("value", INSTANT_POINT), max_size=3),  # a vector, maybe of several
    INSTANT_POINT,  # a scalar
    st.lists(_series("values", st.lists(INSTANT_POINT, max_size=3)), max_size=2),
)
RANGE_RESULT = st.one_of(
    st.lists(_series("values", st.lists(RANGE_POINT, max_size=14)), max_size=3),
    st.lists(_series("value", INSTANT_POINT), max_size=2),
)


def _doc(result: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"status": st.sampled_from(["success", "success", "error"]),
         "data": st.fixed_dictionaries(
             {"resultType": st.sampled_from(["vector", "matrix", "scalar", "string"]),
              "result": result})},
        optional={"warnings": st.lists(TEXT, max_size=2)},
    )


SHAPED = st.builds(
    Shaped, _doc(INSTANT_RESULT), _doc(RANGE_RESULT),
    st.one_of(st.just(Wire()), st.just(Wire()), WIRE),
)
PROM_EDITS = st.lists(
    st.builds(lambda where, value, delete: Edit(where[0], where[1], value, delete),
              st.sampled_from(PROM_PATHS), REPLACEMENTS, st.booleans()),
    min_size=1, max_size=4,
).map(tuple)
PROM_EDITED = st.builds(Edited, PROM_EDITS, ENDPOINT, st.one_of(st.just(Wire()), WIRE))

RESULT = ("data", "result", 0)


# ====================================================================== HAProxy

BACKEND = "app"
CANARY, STABLE = ("canary",), ("stable-1", "stable-2")
SERVERS = CANARY + STABLE
# What each `set_weight` asks of each server (tests/test_haproxy.py checks the split).
ASKED = {
    (False, 30): {"canary": 60, "stable-1": 70, "stable-2": 70},
    (False, 100): {"canary": 100, "stable-1": 0, "stable-2": 0},
    (True, 30): {"canary": 60, "stable-1": 70, "stable-2": 70},
    (True, 100): {"canary": 100, "stable-1": 100, "stable-2": 100},  # switched by drain
}
HAPROXY_ENDPOINTS = ["get weight", "show servers state", "show stat", "set"]
_HAPROXY_WEIGHT = re.compile(r"(\d+) \(initial (\d+)\)\Z", re.ASCII)


@dataclass
class Backend:
    """A runtime API that answers as HAProxy 2.6 does (see tests/test_haproxy.py)."""

    weight: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"canary": 0, "stable-1": 100, "stable-2": 100})
    admin: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(SERVERS, 0))
    scur: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"canary": 0, "stable-1": 3, "stable-2": 0})

    def one(self, command: str) -> str:
        words = command.split()
        if words[:2] == ["get", "weight"] and len(words) == 3:
            backend, _, name = words[2].partition("/")
            if backend != BACKEND:
                return "No such backend.\n"
            if name not in self.weight:
                return "No such server.\n"
            return f"{self.weight[name]} (initial 100)\n"
        if words[:2] == ["set", "weight"] and len(words) == 4:
            _, _, name = words[2].partition("/")
            if name not in self.weight:
                return "No such server.\n"
            self.weight[name] = int(words[3])
            return ""
        if words[:2] == ["set", "server"] and words[3:4] == ["state"] and len(words) == 5:
            _, _, name = words[2].partition("/")
            if name not in self.weight:
                return "No such server.\n"
            self.admin[name] = {"ready": 0, "drain": 8, "maint": 1}[words[4]]
            if words[4] == "drain":
                self.scur[name] = 0  # sessions end at once: no example waits
            return ""
        if words[:2] == ["show", "stat"]:
            rows = [STAT_HEADER]
            for name in SERVERS:
                status = {0: "UP", 8: "DRAIN", 1: "MAINT"}[self.admin[name]]
                rows.append(f"{BACKEND},{name},0,0,{self.scur[name]},0,,0,0,0,,0,,0,0,0,0,"
                            f"{status},{self.weight[name]},1,0,0,0,1,0,,1,3,1,,0,,2,0,,0,"
                            "L7OK,200,1")
            rows.append(f"{BACKEND},BACKEND,0,0,3,5,999,0,0,0,0,0,,0,0,0,0,UP,"
                        f"{sum(self.weight.values())}")
            return "\n".join(rows) + "\n"
        if words[:3] == ["show", "servers", "state"]:
            head = SERVERS_STATE.splitlines()[:2]
            rows = [f"3 {BACKEND} {i} {name} 127.0.0.1 2 {self.admin[name]} "
                    f"{self.weight[name]} 100 0 6 3 4 6 0 0 0 - 80 - 0 0 - - 0"
                    for i, name in enumerate(SERVERS, 1)]
            return "\n".join(head + rows) + "\n"
        return UNKNOWN_COMMAND.rstrip("\n") + "\n"

    def line(self, line: str) -> str:
        return "".join(self.one(c.strip()) + "\n" for c in line.split(";"))


def endpoint_of(line: str) -> str:
    if line.startswith("get weight"):
        return "get weight"
    if line.startswith("show servers state"):
        return "show servers state"
    if line.startswith("show stat"):
        return "show stat"
    return "set"


@dataclass(frozen=True)
class TextEdit:
    """One change to a realistic answer's text. Line and field numbers wrap around."""

    endpoint: str
    op: str  # delete-line | replace-line | insert-line | repeat-line | field | drop-field | cut
    line: int = 0
    field: int = 0
    text: str = ""


def edit_text(text: str, e: TextEdit) -> str:
    if e.op == "cut":
        return text[: e.line % (len(text) + 1)]
    lines = text.split("\n")
    i = e.line % len(lines)
    if e.op == "delete-line":
        del lines[i]
    elif e.op == "replace-line":
        lines[i] = e.text
    elif e.op == "insert-line":
        lines.insert(i, e.text)
    elif e.op == "repeat-line":
        lines.insert(i, lines[i])
    else:
        sep = "," if "," in lines[i] else " "
        fields = lines[i].split(sep)
        j = e.field % len(fields)
        if e.op == "field":
            fields[j] = e.text
        else:
            del fields[j]
        lines[i] = sep.join(fields)
    return "\n".join(lines)


@dataclass(frozen=True)
class Raw:
    """`endpoint` answers `data` to every command line it gets; the others realistically.
    With `early`, the server answers and hangs up without reading the command."""

    endpoint: str
    data: bytes
    early: bool = False
    blue_green: bool = False


@dataclass(frozen=True)
class TextEdited:
    """Every answer is the realistic one with the `edits` for its endpoint applied."""

    edits: tuple[TextEdit, ...] = ()
    blue_green: bool = False


@dataclass
class HAProxyWorld:
    case: Raw | TextEdited
    backend: Backend = dataclasses.field(default_factory=Backend)
    served: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def answer(self, line: str) -> bytes:
        endpoint = endpoint_of(line)
        case = self.case
        with self.lock:
            if isinstance(case, Raw) and case.endpoint == endpoint:
                data = case.data
            else:
                text = self.backend.line(line)
                if isinstance(case, TextEdited):
                    for e in case.edits:
                        if e.endpoint == endpoint:
                            text = edit_text(text, e)
                data = text.encode("utf-8", "surrogatepass")
        return self.record(endpoint, data)

    def record(self, endpoint: str, data: bytes) -> bytes:
        """Note what went out; "*" is an answer given before the command was read."""
        with self.lock:
            self.served.append((endpoint, data))
        return data

    def last(self, endpoint: str) -> bytes | None:
        with self.lock:
            return next((d for e, d in reversed(self.served) if e in (endpoint, "*")), None)

    def served_since(self, mark: int, endpoint: str) -> list[bytes]:
        with self.lock:
            return [d for e, d in self.served[mark:] if e in (endpoint, "*")]


class RuntimeHandler(socketserver.StreamRequestHandler):
    world: HAProxyWorld | None = None

    def handle(self) -> None:
        world = RuntimeHandler.world
        if world is None:
            return
        early = isinstance(world.case, Raw) and world.case.early
        try:
            if early:
                # Every command line gets `data`, before the server has read which it is.
                self.wfile.write(world.record("*", world.case.data))  # type: ignore[union-attr]
                return
            line = self.rfile.readline(1 << 20).decode("utf-8", "replace").rstrip("\r\n")
            self.wfile.write(world.answer(line))
        except OSError:
            pass


class _RuntimeServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


_runtime_socket: str | None = None


class _PreviewHandler(BaseHTTPRequestHandler):
    """Blue-green's preview: green answers 200 (the fuzzed side is the runtime API)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


_preview_url: str | None = None


def preview_url() -> str:
    global _preview_url
    if _preview_url is None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _PreviewHandler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        _preview_url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    return _preview_url


def bg_settings(blue_green: bool) -> dict[str, Any]:
    """What a blue-green block adds: the preview that must answer before the switch."""
    return {"preview": preview_url()} if blue_green else {}


def runtime_socket() -> str:
    global _runtime_socket
    if _runtime_socket is None:
        folder = tempfile.mkdtemp(prefix="relconsole-fuzz-")
        path = str(Path(folder) / "admin.sock")
        server = _RuntimeServer(path, RuntimeHandler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        _runtime_socket = path
    return _runtime_socket


# ---------------------------------------------------------------------- the oracle


def strict_weights(data: bytes | None) -> dict[str, int] | None:
    """The weights a `get weight` line's answer says, read the way HAProxy writes them
    (ASCII digits, 0..256, one per server in order), or None if it says something else."""
    if data is None:
        return None
    lines = [line.strip() for line in data.decode("utf-8", "replace").split("\n")
             if line.strip()]
    if len(lines) != len(SERVERS):
        return None
    out = {}
    for server, line in zip(SERVERS, lines, strict=True):
        match = _HAPROXY_WEIGHT.match(line)
        if match is None or len(match.group(1)) > 3 or int(match.group(1)) > 256:
            return None
        out[server] = int(match.group(1))
    return out


def check_weights(weights: Any, world: HAProxyWorld) -> None:
    assert isinstance(weights, dict) and set(weights) == set(SERVERS), weights
    for server, w in weights.items():
        assert type(w) is int and 0 <= w <= 256, f"{server} weight {w!r}"
    said = strict_weights(world.last("get weight"))
    assert said == weights, f"weights {weights} from an answer that says {said}"


def check_state(state: Any, world: HAProxyWorld) -> None:
    assert isinstance(state, TrafficState), state
    share = state.canary_weight
    assert type(share) is int and 0 <= share <= 100, f"canary share {share!r}"
    assert strict_weights(world.last("get weight")) is not None, \
        "a traffic state from a `get weight` answer that is not HAProxy's"
    assert [s.name for s in state.servers] == list(SERVERS), state.servers
    for s in state.servers:
        assert isinstance(s, ServerHealth) and type(s.up) is bool
        assert s.role is (Role.CANARY if s.name in CANARY else Role.BASELINE)
        assert isinstance(s.detail, str) and len(s.detail.splitlines()) <= 1, s.detail


def haproxy(case: Raw | TextEdited) -> None:
    """weights, read, set_weight 30 then 100 (each read back), read — against `case`."""
    world = HAProxyWorld(case)
    settings = haproxy_settings(
        {"type": "haproxy", "socket": runtime_socket(), "backend": BACKEND,
         "stable": list(STABLE), "canary": list(CANARY), "timeout": "1s",
         **bg_settings(case.blue_green)},
        strategy="blue-green" if case.blue_green else "canary", call_timeout=5.0)
    # Blue-green drains briefly: a switch must not hold an example for seconds.
    settings = dataclasses.replace(settings, drain_timeout=0.02, drain_poll=0.005)
    provider = HAProxyTraffic(settings)

    def asked(weight: int) -> Callable[[], Any]:
        async def call() -> None:
            mark = len(world.served)
            await provider.set_weight(weight, reason="fuzz")
            # Success: HAProxy took every command silently and its read-back said,
            # in its own words, exactly the weights asked.
            for answer in world.served_since(mark, "set"):
                assert not answer.decode("utf-8", "replace").strip(), \
                    f"set_weight({weight}) succeeded on the answer {answer[:80]!r}"
            said = strict_weights(world.last("get weight"))
            assert said == ASKED[case.blue_green, weight], \
                f"set_weight({weight}) succeeded, but HAProxy's read-back says {said}"
        return call

    async def weights() -> None:
        check_weights(await provider.weights(), world)

    async def read() -> None:
        check_state(await provider.read(), world)

    async def go() -> None:
        try:
            for call in (weights, read, asked(30), asked(100), read):
                try:
                    await call()
                except ProviderError as exc:
                    check_error(exc, "haproxy")
        finally:
            await provider.close()

    RuntimeHandler.world = world
    try:
        with no_hang():
            asyncio.run(go())
    finally:
        RuntimeHandler.world = None


# ---------------------------------------------------------------------- strategies

NASTY_FIELDS = [
    "", " ", "-1", "0", "256", "257", "99999999999", "9" * 5000, "٣٠", "３０", "NaN", "1e3",
    "0x10", "\x00", "\ufffd", "\x85", "\u2028", "\x1e", "\r", "UP", "UP 1/3", "DOWN",
    "DRAIN", "MAINT", "no check", "app", "canary", "stable-1", "FRONTEND", "BACKEND", "#",
    "# pxname,svname,status,scur", "# be_name srv_name srv_admin_state", "60 (initial 100)",
    "70 (initial 100)", "100 (initial 100)", "٦٠ (initial 100)", "60 (initial 1e3)",
    "No such server.", "No such backend.", "Permission denied", "Can't find backend.",
    "Unknown command", "x" * 300, "a;b",
]
FIELD_TEXT = st.one_of(st.sampled_from(NASTY_FIELDS), st.text(max_size=12))
TEXT_EDIT = st.builds(
    TextEdit,
    st.sampled_from(HAPROXY_ENDPOINTS),
    st.sampled_from(["delete-line", "replace-line", "insert-line", "repeat-line", "field",
                     "field", "drop-field", "cut"]),
    st.integers(0, 400), st.integers(0, 120), FIELD_TEXT,
)
TEXT_EDITED = st.builds(TextEdited, st.lists(TEXT_EDIT, min_size=1, max_size=4).map(tuple),
                        st.booleans())
NASTY_REPLIES = [
    b"", b"\n", b"\n\n\n\n\n\n", b"\x00", b"\xff\xfe", b"Permission denied\n\n",
    UNKNOWN_COMMAND.encode(), b"60 (initial 100)\n\n70 (initial 100)\n\n",
    b"60 (initial 100)\n\n70 (initial 100)\n\n70 (initial 100)\n\n",
    "٦٠ (initial 100)\n\n٧٠ (initial 100)\n\n٧٠ (initial 100)\n\n".encode(),
    b"1000 (initial 100)\n\n1000 (initial 100)\n\n1000 (initial 100)\n\n",
    b"9" * 5000 + b" (initial 1)\n\n0 (initial 1)\n\n0 (initial 1)\n\n",
    b"# pxname,svname,status,scur\napp\n", b"# be_name srv_name srv_admin_state\napp\n",
    b"# pxname,svname,status,scur\napp,canary,UP,9999999999999999999999\n",
    b"# be_name srv_name srv_admin_state\napp canary " + b"9" * 5000 + b"\n",
    b"<html><body>502 Bad Gateway</body></html>",
]
HAPROXY_BYTES = st.one_of(
    st.binary(max_size=300), st.sampled_from(NASTY_REPLIES),
    st.lists(FIELD_TEXT, max_size=6).map(lambda xs: "\n".join(xs).encode("utf-8",
                                                                        "surrogatepass")),
)
RAW = st.builds(Raw, st.sampled_from(HAPROXY_ENDPOINTS), HAPROXY_BYTES,
                st.sampled_from([False, False, False, True]), st.booleans())


# ====================================================================== the properties
#
# Each @example is a case that once crashed (or broke the contract) and was fixed; they
# run first, every time. "found" marks a case the search found; "seen in review" one
# written while fixing its neighbours, proved to fail on the unfixed code.

DEEP_BODY = b"[" * 3000
NAN = float("nan")
EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}
TIME = ("data", "result", 0, "values", 0, 0)


def vector(sample: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1_700_000_000.0, sample]}]}}


def weights(*lines: str) -> bytes:
    return "".join(f"{line}\n\n" for line in lines).encode()


@FUZZ
@given(st.builds(Served, ENDPOINT, ARBITRARY_BYTES, WIRE))
@example(Served("instant", DEEP_BODY))  # found: RecursionError from response.json()
# seen in review: RecursionError explaining an error answer (explain_status)
@example(Served("range", DEEP_BODY, Wire(400)))
def test_prometheus_arbitrary_bytes(case):
    prometheus(case)


@FUZZ
@given(st.builds(Served, ENDPOINT, ARBITRARY_JSON, WIRE))
def test_prometheus_arbitrary_json(case):
    prometheus(case)


@FUZZ
@given(PROM_EDITED)
@example(Edited((Edit("instant", ("status",), Deep(2044)),)))  # found: RecursionError
# seen in review: OverflowError, float() of a 400-digit JSON integer as the sample
@example(Edited((Edit("instant", (*RESULT, "value", 1), 10**400),)))
# seen in review: ValueError, round() of a NaN point time in a range answer
@example(Edited((Edit("range", TIME, NAN),), "range"))
def test_prometheus_realistic_answers_with_a_few_things_wrong(case):
    prometheus(case)


@FUZZ
@given(SHAPED)
# found: OverflowError, round() of a point time that is Inf once in milliseconds
@example(Shaped(EMPTY, {"status": "success", "data": {"resultType": "matrix", "result": [
    {"values": [[1.797693134862316e305, None]]}]}}))
# seen in review: samples no Prometheus writes, read by float() as 50, 1000 and 7
@example(Shaped(vector("٥٠"), EMPTY))
@example(Shaped(vector("1_000"), EMPTY))
@example(Shaped(vector(" 7 "), EMPTY))
def test_prometheus_realistic_shapes_with_nasty_samples(case):
    prometheus(case)


@FUZZ
@given(RAW)
@example(Raw("show stat", b"No such server"))  # found: IndexError naming the server
# found: KeyError, a show stat row cut short before its svname
@example(Raw("show stat", b"# pxname,svname,status,scur\napp"))
# found: "٠٠ (initial 0)" (Arabic-Indic digits) read as weight 0
@example(Raw("get weight", weights(*["\u0660\u0660 (initial 0)"] * 3)))
# seen in review: a weight of 1000 (HAProxy's limit is 256); ValueError on 5000 digits
@example(Raw("get weight", weights(*["1000 (initial 100)"] * 3)))
@example(Raw("get weight", weights("9" * 5000 + " (initial 1)", "0 (initial 1)",
                                   "0 (initial 1)")))
def test_haproxy_arbitrary_bytes(case):
    haproxy(case)


@FUZZ
@given(TEXT_EDITED)
def test_haproxy_realistic_answers_with_a_few_things_wrong(case):
    haproxy(case)


# ---------------------------------------------------------------------- sanity


def test_the_realistic_prometheus_answers_give_values() -> None:
    """The harness itself: unmodified answers give the numbers a real server sent."""
    world = PromWorld(Edited())
    settings = prometheus_settings({"type": "prometheus", "url": prom_url()}, 5.0)
    provider = PrometheusMetrics(settings, VERSIONS, FastClock())

    async def go() -> tuple[dict[str, MetricPair], dict[str, list[MetricPair]]]:
        try:
            return (await provider.sample([METRIC]),
                    await provider.history([METRIC], HISTORY_SECONDS, HISTORY_STEP))
        finally:
            await provider.close()

    PromHandler.world = world
    try:
        now, history = asyncio.run(go())
    finally:
        PromHandler.world = None
    assert now[METRIC.name].canary.value == 0.0125
    assert [p.canary.value for p in history[METRIC.name]] == [
        None if i == 3 else 0.01 * i for i in range(12)]
    check_pairs(now, world, "instant", 1)
    check_pairs(history, world, "range", 12)


def test_the_realistic_runtime_api_sets_and_reads_back() -> None:
    for blue_green in (False, True):
        haproxy(TextEdited(blue_green=blue_green))
        world = HAProxyWorld(TextEdited(blue_green=blue_green))
        settings = haproxy_settings(
            {"type": "haproxy", "socket": runtime_socket(), "backend": BACKEND,
             "stable": list(STABLE), "canary": list(CANARY),
             **bg_settings(blue_green)},
            strategy="blue-green" if blue_green else "canary", call_timeout=5.0)
        provider = HAProxyTraffic(dataclasses.replace(settings, drain_timeout=0.02,
                                                      drain_poll=0.005))

        async def go(p: HAProxyTraffic = provider) -> TrafficState:
            await p.set_weight(30, reason="sanity")
            return await p.read()

        RuntimeHandler.world = world
        try:
            state = asyncio.run(go())
        finally:
            RuntimeHandler.world = None
        assert state.canary_weight == 30
        check_state(state, world)
