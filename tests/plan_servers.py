"""A loopback HTTP server for the plan and preflight tests: a dependency's health
endpoint (any path) and a Prometheus instant-query API (`/api/v1/query`)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answers:
    url: str = ""
    health: tuple[int, str] = (200, '{"status": "ok", "version": "4.1.0"}')
    # The value answered for a PromQL query; "" answers an empty result.
    promql: Callable[[str], str] = lambda query: "1"
    queries: list[str] = field(default_factory=list)


@contextlib.contextmanager
def serve() -> Iterator[Answers]:
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/api/v1/query":
                query = parse_qs(url.query)["query"][0]
                answers.queries.append(query)
                value = answers.promql(query)
                result = [] if value == "" else [{"metric": {}, "value": [1.7e9, value]}]
                status, body = 200, json.dumps({"status": "success", "data": {
                    "resultType": "vector", "result": result}})
            else:
                status, body = answers.health
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    answers.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        httpd.shutdown()
        httpd.server_close()
