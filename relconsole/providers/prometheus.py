"""Prometheus metrics provider (type `prometheus`), on prometheus-api-client.

Each poll sends one instant query per metric and version (canary, baseline), all at
once, each in a worker thread of the provider's own pool: the client is requests-based
and blocking, and a slow Prometheus must never freeze the console. On attach, one range
query per metric and version fills the sparklines. A metric judged on counts is also
read raw (`sample_counters`): one instant query per counter selector and version, every
series' value as it is, for the engine to take increments of (`engine.counts`).

Safety rule 1 lives at this edge too: an empty result, NaN, ±Inf, several series where
one was expected, an error answer or an unreachable server each become a `Reading` with
`error=` a short reason the gates panel shows — never an exception, never a number.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from relconsole.clock import Clock
from relconsole.model import (
    CounterPair,
    CounterSet,
    MetricPair,
    MetricSpec,
    Reading,
    Role,
    series_key,
)
from relconsole.placeholders import VERSION as PLACEHOLDER
from relconsole.placeholders import expand_query
from relconsole.providers._settings import Settings, kind_of
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.secrets import Secret

NAME = "prometheus"
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+\Z")
_MESSAGE_LIMIT = 160
# A sample as Prometheus writes it (Go's strconv.FormatFloat, or NaN/±Inf). float() also
# reads "٥٠", "1_000" and " 7 ", which no Prometheus sends: taken as 50, 1000 and 7 they
# would be numbers made up from text, so such text is "not a number".
_SAMPLE = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|nan)\Z", re.ASCII | re.IGNORECASE)
# Queries of one poll run side by side: against a distant Prometheus a poll costs one
# round trip, not one per query. The connection pool matches, so every thread keeps its
# connection alive between polls instead of opening a new one.
MAX_THREADS = 8


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class PrometheusSettings:
    url: str
    display_url: str  # the url without user:password@, safe for messages
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    verify: bool | str = True  # True, a CA file, or False (insecure: true)
    timeout: float = 2.0
    retries: int = 1
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values to scrub from messages


def parse_settings(raw: dict[str, Any], call_timeout: float) -> PrometheusSettings:
    s = Settings(
        NAME,
        raw,
        ("url", "token", "username", "password", "headers", "ca_file", "insecure", "timeout",
         "retries"),
    )
    url = s.text("url", required=True)
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise s.error(f"url must be http(s)://host:port, not '{url[:60]}'")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise s.error("url has an invalid port") from None
    if parts.query or parts.fragment:
        raise s.error("url must be the server's base address, without ?query or #fragment")
    if parts.username or parts.password:
        raise s.error("url must not carry user:password@; use username: and password: "
                      "(password as env:VAR or keyring:SERVICE/NAME)")
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))

    headers: dict[str, str] = {}
    secrets: list[str] = []
    raw_headers = raw.get("headers")
    if raw_headers is not None:
        if not isinstance(raw_headers, dict):
            raise s.error(f"'headers' must be a mapping of name: value, not "
                          f"{kind_of(raw_headers)}")
        for name, value in raw_headers.items():
            if not isinstance(name, str) or not _HEADER_NAME.match(name):
                raise s.error(f"headers: '{str(name)[:40]}' is not a valid header name")
            if isinstance(value, Secret):
                headers[name] = value.reveal()
                secrets.append(value.reveal())
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                headers[name] = str(value)
            else:
                raise s.error(f"headers.{name} must be text or a secret, not {kind_of(value)}")
            if "\n" in headers[name] or "\r" in headers[name]:
                raise s.error(f"headers.{name} must be one line")

    token = s.secret("token")
    username = s.text("username")
    password = s.secret("password")
    auth: tuple[str, str] | None = None
    if token is not None and (username or password):
        raise s.error("use either token (bearer) or username/password (basic), not both")
    if password is not None and not username:
        raise s.error("password needs a username")
    if username and password is None:
        raise s.error("username needs a password (env:VAR or keyring:SERVICE/NAME)")
    has_auth_header = any(h.lower() == "authorization" for h in headers)
    if has_auth_header and (token is not None or username):
        raise s.error("headers.Authorization conflicts with token/username; keep one")
    if token is not None:
        headers["Authorization"] = f"Bearer {token.reveal()}"
        secrets.append(token.reveal())
    if username and password is not None:
        auth = (username, password.reveal())
        secrets.append(password.reveal())
        # What goes on the wire is base64(user:password): a server that echoes headers
        # back in its error would show that, not the password.
        secrets.append(base64.b64encode(
            f"{username}:{password.reveal()}".encode("latin-1", "replace")).decode("ascii"))

    insecure = s.flag("insecure", False)
    ca_file = s.text("ca_file")
    verify: bool | str = True
    if ca_file is not None:
        if insecure:
            raise s.error("ca_file and insecure: true contradict each other; keep one")
        path = Path(ca_file).expanduser()
        if not path.is_file():
            raise s.error(f"ca_file {ca_file} does not exist or is not a file")
        verify = str(path)
    elif insecure:
        verify = False

    retries = s.integer("retries", 1, low=0, high=5)
    # The engine gives the whole poll `call_timeout`; every attempt must fit inside it,
    # or the engine gives up first and the operator sees a bare "timed out".
    fitting = call_timeout / (retries + 1) * 0.8
    timeout = s.duration("timeout", None)
    if timeout is None:
        timeout = max(0.2, min(2.0, fitting))
    elif timeout * (retries + 1) > call_timeout:
        raise s.error(
            f"timeout {timeout:g}s × {retries + 1} attempts does not fit in "
            f"release.call_timeout ({call_timeout:g}s); lower timeout or retries, or raise "
            "release.call_timeout"
        )
    return PrometheusSettings(
        url=base,
        display_url=base,
        headers=headers,
        auth=auth,
        verify=verify,
        timeout=timeout,
        retries=retries,
        secrets=tuple(x for x in secrets if x),
    )


# ----------------------------------------------------------------------------- templating


def render(template: str, version: str) -> str:
    """The query as sent; the console shows the same text (`placeholders`)."""
    return expand_query(template, version)


# The baseline of a metric whose one query measures the canary (`MetricSpec.canary_only`).
CANARY_ONLY = "not measured: the query selects the canary itself (imported from Argo)"


def check_queries(metrics: Sequence[MetricSpec]) -> None:
    for m in metrics:
        if not m.query.strip():
            raise ProviderError(f"{NAME}: metrics.{m.name} has no query")
        if not PLACEHOLDER.search(m.query) and not m.canary_only:
            # Without it canary and baseline read the same series: every comparison gate
            # would compare a number with itself and pass.
            raise ProviderError(
                f"{NAME}: metrics.{m.name}.query has no {{{{version}}}} placeholder, so the "
                "canary and the baseline would read the same series"
            )


# ----------------------------------------------------------------------------- parsing


def parse_number(raw: Any) -> tuple[float | None, str | None]:
    """A sample value as Prometheus writes it ("0.5", "NaN", "+Inf") -> value or reason."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        return None, "unexpected answer from Prometheus (value is not a number)"
    if isinstance(raw, str) and not _SAMPLE.match(raw):
        return None, f"not a number: {raw[:30]!r}"
    try:
        value = float(raw)
    except ValueError:
        return None, f"not a number: {str(raw)[:30]!r}"
    except OverflowError:
        # A JSON integer beyond float's range (e.g. 400 digits): float(int) raises
        # instead of giving inf, which crashed the poll.
        return None, "number too large"
    if math.isnan(value):
        return None, "NaN (no requests in the window, or 0/0)"
    if math.isinf(value):
        sign = "+" if value > 0 else "-"
        return None, f"{sign}Inf (e.g. a quantile above the largest histogram bucket)"
    return value, None


def _several(n: int) -> str:
    return f"{n} series where one was expected (aggregate it, e.g. sum(...))"


def parse_instant(result: Any) -> tuple[float | None, str | None]:
    """`data.result` of an instant query -> one usable value, or why there is none."""
    if not isinstance(result, list):
        return None, "unexpected answer from Prometheus (result is not a list)"
    if not result:
        return None, "no data (the query returned no series)"
    first = result[0]
    if isinstance(first, dict):  # a vector: [{"metric": {...}, "value": [ts, "v"]}, ...]
        if len(result) > 1:
            return None, _several(len(result))
        if "values" in first and "value" not in first:
            return None, "the query returns a range vector; wrap it in rate(...) or similar"
        pair = first.get("value")
        if not isinstance(pair, list) or len(pair) != 2:
            return None, "unexpected answer from Prometheus (sample is not [time, value])"
        return parse_number(pair[1])
    if len(result) == 2 and isinstance(result[0], (int, float)):  # a scalar: [ts, "v"]
        return parse_number(result[1])
    return None, "unexpected answer from Prometheus (unknown result shape)"


def parse_range(
    result: Any, times: Sequence[float]
) -> list[tuple[float | None, str | None]]:
    """`data.result` of a range query -> one (value, reason) per time in `times`."""
    if not isinstance(result, list):
        return [(None, "unexpected answer from Prometheus")] * len(times)
    if not result:
        return [(None, "no data")] * len(times)
    if len(result) > 1:
        return [(None, _several(len(result)))] * len(times)
    series = result[0]
    values = series.get("values") if isinstance(series, dict) else None
    if not isinstance(values, list):
        return [(None, "unexpected answer from Prometheus")] * len(times)
    by_time: dict[int, Any] = {}
    for point in values:
        # A finite time only: round() of an Inf or NaN time (Python's JSON reads them, and
        # 1e308 * 1000 is Inf) raised OverflowError/ValueError and crashed the history.
        if not (isinstance(point, list) and len(point) == 2
                and isinstance(point[0], (int, float))):
            continue
        at = point[0] * 1000
        if isinstance(at, float) and not math.isfinite(at):
            continue
        by_time[round(at)] = point[1]
    out: list[tuple[float | None, str | None]] = []
    for t in times:
        raw = by_time.get(round(t * 1000))
        out.append((None, "no data") if raw is None else parse_number(raw))
    return out


def parse_counters(result: Any) -> tuple[dict[str, float], str | None]:
    """`data.result` of a raw selector -> each series' value keyed by its labels.

    An empty vector is an empty mapping, not an error: a labelled counter child (the
    5xx one, say) does not exist until its first increment.
    """
    if not isinstance(result, list):
        return {}, "unexpected answer from Prometheus (result is not a list)"
    out: dict[str, float] = {}
    for series in result:
        if not isinstance(series, dict) or not isinstance(series.get("metric"), dict):
            return {}, "unexpected answer from Prometheus (not a vector of series)"
        pair = series.get("value")
        if not isinstance(pair, list) or len(pair) != 2:
            if "values" in series:
                return {}, "the selector returned a range vector; write it without [window]"
            return {}, "unexpected answer from Prometheus (sample is not [time, value])"
        value, problem = parse_number(pair[1])
        if problem is not None or value is None:
            return {}, f"counter {problem}"
        if value < 0:
            return {}, "counter is negative (is the selector a gauge?)"
        out[series_key(series["metric"])] = value
    return out, None


def explain_status(status: int, body: bytes, url: str) -> str:
    """An error answer (4xx/5xx) in words; Prometheus puts the reason in JSON `error`."""
    detail = ""
    try:
        doc = json.loads(body.decode("utf-8", "replace"))
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            kind = doc.get("errorType")
            detail = f"{kind}: {doc['error']}" if isinstance(kind, str) else doc["error"]
    except (ValueError, RecursionError):  # JSON nested thousands deep: no detail either
        pass
    detail = " ".join(detail.split())
    if status == 400:
        text = f"bad query ({detail or 'HTTP 400'})"
    elif status == 401:
        text = "HTTP 401 unauthorized (check token, or username and password)"
    elif status == 403:
        text = "HTTP 403 forbidden (the credentials may not read these series)"
    elif status == 404:
        text = f"HTTP 404 at {url}/api/v1/… (is url the Prometheus base address?)"
    elif status == 422:
        text = f"query failed ({detail or 'HTTP 422'})"
    elif status == 503:
        text = f"unavailable ({detail or 'HTTP 503'})"
    else:
        text = f"HTTP {status}" + (f" ({detail})" if detail else "")
    return f"{NAME}: {text}"


# ----------------------------------------------------------------------------- the provider


class PrometheusMetrics:
    """`MetricsProvider` over Prometheus's HTTP API."""

    name = NAME

    def __init__(
        self,
        settings: PrometheusSettings,
        versions: dict[str, str],
        clock: Clock,
    ) -> None:
        # Imported here: a release that does not use Prometheus never loads requests.
        import requests
        from prometheus_api_client import PrometheusConnect
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.settings = settings
        self.versions = {Role.CANARY: versions.get("canary", ""),
                         Role.BASELINE: versions.get("baseline", "")}
        self.clock = clock
        self.requests_sent = 0  # HTTP answers received, retries included (for the bench)
        self._count_lock = threading.Lock()
        self._local = threading.local()

        session = requests.Session()
        session.verify = settings.verify
        session.hooks["response"].append(self._on_response)
        if settings.verify is False:
            import urllib3

            # The operator asked for it in the config; a warning per poll helps nobody.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        # The library's default Retry (3 tries, backoff 1 s) blocks ~6 s on a dead host:
        # one quick retry for a dropped connection or a 502/503/504, nothing more.
        retry = Retry(
            total=settings.retries,
            connect=settings.retries,
            read=0,
            status=settings.retries,
            backoff_factor=0.05,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self._client = PrometheusConnect(
            url=settings.url,
            headers=dict(settings.headers) or None,
            retry=retry,
            auth=settings.auth,
            session=session,
            timeout=(min(1.0, settings.timeout), settings.timeout),
        )
        # The library mounted an adapter with a pool of 10; one sized to our threads keeps
        # each thread's connection alive between polls (same Retry).
        session.mount(settings.url, HTTPAdapter(max_retries=retry, pool_connections=1,
                                                pool_maxsize=MAX_THREADS))
        self._session = session
        # Its own threads, not the loop's default pool: a Prometheus that hangs until the
        # timeout cannot starve other users of asyncio.to_thread (keyring, flag vendors).
        self._pool = ThreadPoolExecutor(max_workers=MAX_THREADS,
                                        thread_name_prefix="relconsole-prometheus")

    async def _in_thread(self, call: Callable[..., tuple[Any, str | None]],
                         *args: Any) -> tuple[Any, str | None]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call, *args)

    # -- blocking side (worker threads)

    def _on_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._local.response = response
        with self._count_lock:
            self.requests_sent += 1

    def _blocking(self, call: Callable[[], Any]) -> tuple[Any, str | None]:
        """Run one library call; return (result, None) or (None, reason)."""
        import requests
        from prometheus_api_client import PrometheusApiClientException

        self._local.response = None
        try:
            return call(), None
        except PrometheusApiClientException:
            response = getattr(self._local, "response", None)
            if response is None:
                return None, f"{NAME}: error answer from {self.settings.display_url}"
            return None, explain_status(response.status_code, response.content or b"",
                                        self.settings.display_url)
        except requests.exceptions.SSLError:
            return None, (f"{NAME}: TLS verification failed for {self.settings.display_url} "
                          "(set ca_file, or insecure: true for a test server)")
        except requests.exceptions.ConnectTimeout:
            return None, (f"{NAME}: no connection to {self.settings.display_url} within "
                          f"{min(1.0, self.settings.timeout):g}s")
        except requests.exceptions.ReadTimeout:
            return None, (f"{NAME}: no answer from {self.settings.display_url} within "
                          f"{self.settings.timeout:g}s")
        except requests.exceptions.ConnectionError as exc:
            # With retries spent, urllib3 reports a read timeout as a connection error.
            if "read timed out" in str(exc).lower():
                return None, (f"{NAME}: no answer from {self.settings.display_url} within "
                              f"{self.settings.timeout:g}s")
            return None, f"{NAME}: {_connection_problem(str(exc))} {self.settings.display_url}"
        except (requests.exceptions.JSONDecodeError, ValueError):
            # requests' JSONDecodeError is also a RequestException: it must come first.
            return None, (f"{NAME}: the answer is not JSON (is url the Prometheus API, not a "
                          "login page or proxy?)")
        except (requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError):
            # The body stopped before its length (or its gzip stream) said it would end:
            # a proxy or the network dropped the connection mid-answer.
            return None, (f"{NAME}: the answer was cut short (connection closed mid-answer "
                          f"by {self.settings.display_url} or a proxy on the way)")
        except requests.exceptions.RequestException as exc:
            return None, f"{NAME}: request failed ({type(exc).__name__})"
        except RecursionError:
            # json.loads of an answer nested thousands deep ("[[[[…") raises this, not
            # a ValueError; uncaught it ended the poll instead of one inconclusive reading.
            return None, f"{NAME}: unexpected answer (JSON nested too deeply)"
        except (KeyError, TypeError, IndexError):
            return None, f"{NAME}: unexpected answer (no data.result)"

    def _instant_blocking(self, query: str, at: float | None = None) -> tuple[Any, str | None]:
        # In whole milliseconds: Prometheus parses "800ms" but refuses "0.8s" (bad_data),
        # which would fail every query of a config whose timeout is not whole seconds.
        timeout = f"{max(1, round(self.settings.timeout * 1000))}ms"
        params = {"timeout": timeout}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._blocking(lambda: self._client.custom_query(query, params=params))

    def _range_blocking(self, query: str, start: float, end: float,
                        step: float) -> tuple[Any, str | None]:
        return self._blocking(lambda: self._client.custom_query_range(
            query,
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(end, UTC),
            step=f"{step:g}",
        ))

    def _clean(self, message: str) -> str:
        """Clip a reason to one short line and scrub every configured secret from it."""
        for secret in self.settings.secrets:
            message = message.replace(secret, "***")
        message = " ".join(message.split())
        if len(message) > _MESSAGE_LIMIT:
            message = message[: _MESSAGE_LIMIT - 1] + "…"
        return message

    # -- async side

    async def _instant(self, metric: MetricSpec, role: Role) -> Reading:
        if metric.canary_only and role is Role.BASELINE:
            return Reading(None, self.clock.now(), CANARY_ONLY)
        version = self.versions[role]
        if not version:
            return Reading(None, self.clock.now(),
                           f"no {role.value} version configured (versions.{role.value})")
        result, problem = await self._in_thread(
            self._instant_blocking, render(metric.query, version))
        now = self.clock.now()
        if problem is None:
            value, problem = parse_instant(result)
            if problem is None:
                return Reading(value, now)
        return Reading(None, now, self._clean(problem))

    async def sample(self, metrics: Sequence[MetricSpec]) -> dict[str, MetricPair]:
        jobs = [self._instant(m, role) for m in metrics for role in (Role.CANARY, Role.BASELINE)]
        readings = await asyncio.gather(*jobs)
        return {
            m.name: MetricPair(canary=readings[2 * i], baseline=readings[2 * i + 1])
            for i, m in enumerate(metrics)
        }

    async def _counters(self, selector: str, version: str,
                        at: float) -> tuple[dict[str, float], str | None]:
        result, problem = await self._in_thread(
            self._instant_blocking, render(selector, version), at)
        if problem is not None:
            return {}, self._clean(problem)
        values, problem = parse_counters(result)
        return values, None if problem is None else self._clean(f"{NAME}: {problem}")

    async def _counter_set(self, metric: MetricSpec, role: Role, at: float) -> CounterSet:
        source = metric.counts
        assert source is not None
        version = self.versions[role]
        if not version:
            return CounterSet({}, {}, self.clock.now(),
                              f"no {role.value} version configured (versions.{role.value})")
        events_selector = source.buckets if source.histogram else source.events
        total_selector = source.count if source.histogram else source.total
        (events, problem), (total, total_problem) = await asyncio.gather(
            self._counters(events_selector, version, at),
            self._counters(total_selector, version, at))
        now = self.clock.now()
        error = problem or total_problem
        if error is not None:
            return CounterSet({}, {}, now, error)
        return CounterSet(events, total, now)

    async def sample_counters(
        self, metrics: Sequence[MetricSpec], *, ago: float = 0.0
    ) -> dict[str, CounterPair]:
        """The raw counters of every count metric, per version: one query per selector.

        Every query of a poll is evaluated at the same instant, so a version's events
        and requests come from the same scrapes; `ago` moves that instant back (the
        counters keep their history in Prometheus).
        """
        counted = [m for m in metrics if m.counts is not None]
        at = time.time() - max(0.0, ago)  # Prometheus's time, not the injected clock's
        sets = await asyncio.gather(*(self._counter_set(m, role, at) for m in counted
                                      for role in (Role.CANARY, Role.BASELINE)))
        return {m.name: CounterPair(canary=sets[2 * i], baseline=sets[2 * i + 1])
                for i, m in enumerate(counted)}

    async def _range(self, metric: MetricSpec, role: Role, start: float, end: float,
                     step: float, times: list[float]) -> list[Reading]:
        if metric.canary_only and role is Role.BASELINE:
            return [Reading(None, t, CANARY_ONLY) for t in times]
        version = self.versions[role]
        if not version:
            return [Reading(None, t, f"no {role.value} version configured") for t in times]
        result, problem = await self._in_thread(
            self._range_blocking, render(metric.query, version), start, end, step)
        if problem is not None:
            clean = self._clean(problem)
            return [Reading(None, t, clean) for t in times]
        return [Reading(value, t, None if reason is None else self._clean(reason))
                for t, (value, reason) in zip(times, parse_range(result, times), strict=True)]

    async def history(
        self, metrics: Sequence[MetricSpec], seconds: float, step: float
    ) -> dict[str, list[MetricPair]]:
        if step <= 0 or seconds <= 0 or not metrics:
            return {m.name: [] for m in metrics}
        # Prometheus's own clock, not the injected one: the range is real time. The
        # library rounds start and end to whole seconds; the grid does the same.
        end = float(round(time.time()))
        count = max(1, int(seconds // step))
        start = float(round(end - step * (count - 1)))
        times = [start + i * step for i in range(count) if start + i * step <= end]
        return await self._pairs(metrics, start, end, step, times)

    async def _pairs(
        self, metrics: Sequence[MetricSpec], start: float, end: float, step: float,
        times: list[float],
    ) -> dict[str, list[MetricPair]]:
        """One range query per metric and version, all at once, paired per instant."""
        jobs = [self._range(m, role, start, end, step, times)
                for m in metrics for role in (Role.CANARY, Role.BASELINE)]
        series = await asyncio.gather(*jobs)
        return {
            m.name: [MetricPair(canary=c, baseline=b)
                     for c, b in zip(series[2 * i], series[2 * i + 1], strict=True)]
            for i, m in enumerate(metrics)
        }

    async def history_between(
        self, metrics: Sequence[MetricSpec], start: float, end: float, step: float
    ) -> dict[str, list[MetricPair]]:
        """Values of a past window (wall-clock seconds), for `relconsole report`."""
        if step <= 0 or end < start or not metrics:
            return {m.name: [] for m in metrics}
        start, end = float(round(start)), float(round(end))
        times = [start + i * step for i in range(int((end - start) // step) + 1)]
        return await self._pairs(metrics, start, end, step, times)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()


def _connection_problem(text: str) -> str:
    low = text.lower()
    if "refused" in low:
        return "connection refused by"
    if "name or service not known" in low or "nodename nor servname" in low or (
        "failed to resolve" in low
    ) or "temporary failure in name resolution" in low:
        return "cannot resolve the host of"
    if "reset" in low:
        return "connection reset by"
    if "max retries" in low or "timed out" in low:
        return "cannot reach"
    return "cannot reach"


def build_metrics(settings: dict[str, Any], ctx: BuildContext) -> PrometheusMetrics:
    parsed = parse_settings(settings, ctx.plan.call_timeout)
    check_queries(ctx.plan.metrics)
    return PrometheusMetrics(parsed, ctx.versions, ctx.clock)
