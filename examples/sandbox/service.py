"""The sandbox's HTTP service: one process per version (stable, canary), stdlib only.

    GET /            the "application": 200, or 500 at the configured error rate, after
                     the configured added latency
    GET /metrics     Prometheus text format: http_requests_total{version,code} and
                     http_request_duration_seconds_bucket{version,le} (+ _sum, _count)
    GET /healthz     HAProxy's health check (not counted)
    GET /knobs       the knobs as JSON; with ?error_rate=0.05&latency_ms=200 sets them
    POST /knobs      the same, with a JSON body {"error_rate": 0.05, "latency_ms": 200}

Knobs besides error_rate and latency_ms: lazy_errors=1 stops pre-creating the 5xx series
(it then appears with the first error, as client libraries do; `--lazy-errors` starts
that way), and restart=1 sets every counter back to zero, as a restarted process would.

Errors are spread evenly (an accumulator, not a coin toss), so 5 % means one request in
twenty, and a gate's verdict does not depend on luck. Listens on loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
KNOBS = {"error_rate": (0.0, 1.0), "latency_ms": (0.0, 10_000.0), "lazy_errors": (0.0, 1.0),
         "restart": (0.0, 1.0)}


class State:
    def __init__(self, version: str, lazy_errors: bool = False) -> None:
        self.version = version
        self.lock = threading.Lock()
        self.knobs: dict[str, float] = {"error_rate": 0.0, "latency_ms": 0.0,
                                        "lazy_errors": float(lazy_errors)}
        self._error_credit = 0.0
        self._zero()

    def _zero(self) -> None:
        # Unless lazy_errors, both codes exist from the start: a 5xx series that appears
        # only with the first error makes `rate(...{code=~"5.."})` an empty result, not 0,
        # while all is well. Real client libraries are lazy; relconsole reads counters and
        # takes a missing 5xx series as 0 errors, which lazy_errors lets a test show.
        self.requests: dict[str, int] = {} if self.knobs["lazy_errors"] else {"200": 0, "500": 0}
        self.buckets = [0] * len(BUCKETS)
        self.total = 0
        self.seconds = 0.0

    def set_knobs(self, changes: dict[str, Any]) -> dict[str, float]:
        clean: dict[str, float] = {}
        for key, value in changes.items():
            if key not in KNOBS:
                raise ValueError(f"unknown knob {key!r} (known: {', '.join(KNOBS)})")
            number = float(value)
            low, high = KNOBS[key]
            if not low <= number <= high:
                raise ValueError(f"{key} must be between {low:g} and {high:g}")
            clean[key] = number
        with self.lock:
            restart = clean.pop("restart", 0.0) >= 1.0
            self.knobs.update(clean)
            if "error_rate" in clean:
                self._error_credit = 0.0
            if restart:
                self._zero()
            elif not self.knobs["lazy_errors"]:
                for code in ("200", "500"):
                    self.requests.setdefault(code, 0)
            return dict(self.knobs)

    def next_is_error(self) -> bool:
        with self.lock:
            self._error_credit += self.knobs["error_rate"]
            if self._error_credit >= 1.0 - 1e-9:
                self._error_credit -= 1.0
                return True
            return False

    def observe(self, code: str, seconds: float) -> None:
        with self.lock:
            self.requests[code] = self.requests.get(code, 0) + 1
            self.total += 1
            self.seconds += seconds
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1

    def exposition(self) -> str:
        v = self.version
        with self.lock:
            lines = [
                "# HELP http_requests_total Requests served, by version and status code.",
                "# TYPE http_requests_total counter",
            ]
            lines += [f'http_requests_total{{version="{v}",code="{code}"}} {n}'
                      for code, n in sorted(self.requests.items())]
            lines += [
                "# HELP http_request_duration_seconds Time to serve a request.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            lines += [f'http_request_duration_seconds_bucket{{version="{v}",le="{b:g}"}} {n}'
                      for b, n in zip(BUCKETS, self.buckets, strict=True)]
            lines += [
                f'http_request_duration_seconds_bucket{{version="{v}",le="+Inf"}} {self.total}',
                f'http_request_duration_seconds_sum{{version="{v}"}} {self.seconds:.6f}',
                f'http_request_duration_seconds_count{{version="{v}"}} {self.total}',
            ]
        return "\n".join(lines) + "\n"


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"sandbox/{state.version}"

        def log_message(self, format: str, *args: Any) -> None:
            return None  # 40 requests a second in a log file help nobody

        def _send(self, code: int, body: str, kind: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _knobs(self, changes: dict[str, Any]) -> None:
            try:
                knobs = state.set_knobs(changes)
            except (ValueError, TypeError) as exc:
                self._send(400, json.dumps({"error": str(exc)}) + "\n", "application/json")
                return
            self._send(200, json.dumps({"version": state.version, **knobs}) + "\n",
                       "application/json")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/metrics":
                self._send(200, state.exposition(), "text/plain; version=0.0.4")
            elif url.path == "/healthz":
                self._send(200, "ok\n")
            elif url.path == "/knobs":
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                self._knobs(query)
            else:
                started = time.perf_counter()
                delay = state.knobs["latency_ms"] / 1000.0
                if delay > 0:
                    time.sleep(delay)
                if state.next_is_error():
                    code, body = 500, f"injected error from {state.version}\n"
                else:
                    code, body = 200, f"hello from {state.version}\n"
                self._send(code, body)
                state.observe(str(code), time.perf_counter() - started)

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/knobs":
                self._send(404, "not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(min(length, 65536)) or b"{}")
            except ValueError:
                self._send(400, '{"error": "body is not JSON"}\n', "application/json")
                return
            if not isinstance(body, dict):
                self._send(400, '{"error": "body must be a JSON object"}\n', "application/json")
                return
            self._knobs(body)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # HAProxy's health check hangs up as soon as it has the status line; that is not
        # worth a traceback in the log.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="the version label of this process")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tag", default="", help="marks the process as the sandbox's")
    parser.add_argument("--lazy-errors", action="store_true",
                        help="do not pre-create the 5xx series (it appears at the first error)")
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port),
                    make_handler(State(args.version, lazy_errors=args.lazy_errors)))
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
