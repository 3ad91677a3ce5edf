"""HAProxy traffic provider (type `haproxy`), over the runtime API.

The canary's weight is realised as the weights of the stable and canary servers of one
backend, so that the canary's share of the backend's total weight is the requested
percent. Each change is one command line (`set weight …; set weight …`) so HAProxy
applies it in one go, then the weights are read back with `get weight` before the call
returns; the engine reads once more to verify.

Blue-green (`release.strategy: blue-green`; blue is `stable:`, green is `canary:`):

- Preview. `preview:` is a URL that reaches green only (a second frontend whose backend
  holds only the green servers, or a header route, whose header goes in
  `preview_headers:`). While green takes no user traffic, every `read()` GETs it and
  says what it answered (`TrafficState.note`, and the green servers' health detail).
- Switch (`set_weight(100)`). Refused, with nothing changed, unless the preview answers
  2xx right before it. Then green is made ready at full weight and blue goes to `state
  drain`; the call waits until blue's sessions reach zero or `drain_timeout` (default
  45 s) passes, and returns once `get weight` and `show servers state` say green ready,
  blue drained. `action_timeout` tells the engine how long such a call may take.
- Rollback (`set_weight(0)`) is the same switch the other way, without the preview.

The runtime API answers in free text; every answer is parsed defensively, and anything
unexpected (unknown server, permission denied, garbage) becomes a `ProviderError` with
a message an operator can act on. Connections use asyncio streams with a timeout: one
command line per connection, which is how HAProxy's non-interactive mode works.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from relconsole.model import Role, ServerHealth, TrafficState
from relconsole.providers._http import HttpApi, HttpSettings
from relconsole.providers._settings import Settings, kind_of
from relconsole.providers.base import BuildContext, ProviderError

NAME = "haproxy"
MAX_WEIGHT = 256  # HAProxy's limit for an absolute server weight
FULL_WEIGHT = 100  # a blue-green side's weight while it takes traffic
DEFAULT_DRAIN = 45.0  # blue-green: seconds the old side drains at a switch (30–60 s asked)
MAX_DRAIN = 600.0
# `show servers state` admin bits: forced drain (what a switch sets) and maintenance.
ADMIN_DRAIN = 0x08
ADMIN_MAINT = 0x01
MAX_REPLY = 8 * 1024 * 1024
# HAProxy's own rule for proxy and server names; it also keeps `;` (the command
# separator) and newlines out of every command we send.
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
# ASCII digits only: `\d` alone also matched "٣٠" (Arabic-Indic), which int() reads as 30 —
# a weight HAProxy never wrote. At most 3 digits: HAProxy's weights are 0..256, and
# int() of a 5000-digit "weight" raised ValueError.
_WEIGHT_REPLY = re.compile(r"(\d{1,3}) \(initial (\d{1,3})\)\Z", re.ASCII)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}\Z")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{0,1024}\Z")


def _err(message: str) -> ProviderError:
    return ProviderError(f"{NAME}: {message}")


def _clip(text: str, limit: int = 120) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class HAProxySettings:
    backend: str
    stable: tuple[str, ...]
    canary: tuple[str, ...]
    socket: str | None = None
    address: tuple[str, int] | None = None
    timeout: float = 2.0
    drain_timeout: float = DEFAULT_DRAIN
    blue_green: bool = False
    drain_poll: float = 0.2
    preview: str | None = None  # blue-green: a URL that reaches green only
    preview_headers: tuple[tuple[str, str], ...] = ()
    call_timeout: float = 5.0  # release.call_timeout, which bounds every call but a switch

    @property
    def where(self) -> str:
        if self.socket is not None:
            return self.socket
        assert self.address is not None
        return f"{self.address[0]}:{self.address[1]}"


def _names(s: Settings, key: str) -> tuple[str, ...]:
    value = s.raw.get(key)
    if value is None:
        raise s.error(f"'{key}' is required: the {key} server name, or a list of names")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise s.error(f"'{key}' must be a server name or a non-empty list, not {kind_of(value)}")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not _NAME.match(item):
            raise s.error(f"{key}: {kind_of(item)} is not a server name "
                          "(letters, digits, '_', '.', ':' and '-')")
        if item in out:
            raise s.error(f"{key}: server '{item}' is listed twice")
        out.append(item)
    return tuple(out)


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _err(f"address must be host:port, not '{text[:60]}'")
    return host, int(port)


def _preview(s: Settings, blue_green: bool) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    url = s.text("preview")
    headers_raw = s.raw.get("preview_headers")
    if not blue_green:
        for key in ("preview", "preview_headers"):
            if s.has(key):
                # Accepted and ignored would be a lie: only a blue-green switch uses it.
                raise s.error(f"'{key}' is for release.strategy: blue-green only; remove it")
        return None, ()
    if url is None:
        raise s.error(
            "'preview' is required for release.strategy: blue-green: a URL that reaches "
            "only the green (canary) servers, checked before the switch — a second "
            "frontend (preview: http://127.0.0.1:8081/healthz) or a header route "
            "(preview: http://app.internal/healthz with preview_headers: {X-Release: green})")
    try:
        parts = urlsplit(url)
        credentials = parts.username is not None or parts.password is not None
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        raise s.error(f"preview: '{_clip(url, 60)}' is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise s.error(f"preview must be an http:// or https:// URL, not '{_clip(url, 60)}'")
    if credentials:
        raise s.error("preview must not carry user:password@ (it is shown on screen); "
                      "send a header with preview_headers instead")
    headers: list[tuple[str, str]] = []
    if headers_raw is not None:
        if not isinstance(headers_raw, dict) or not headers_raw:
            raise s.error(f"preview_headers must be a mapping of header names to values, "
                          f"such as {{X-Release: green}}, not {kind_of(headers_raw)}")
        for name, value in headers_raw.items():
            if not isinstance(name, str) or not _HEADER_NAME.match(name):
                raise s.error(f"preview_headers: {kind_of(name)} is not an HTTP header name")
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) or \
                    not _HEADER_VALUE.match(str(value)):
                raise s.error(f"preview_headers: the value of {name} must be one line of "
                              f"printable text, not {kind_of(value)}")
            headers.append((name, str(value)))
    return url, tuple(headers)


def parse_settings(raw: dict[str, Any], *, strategy: str, call_timeout: float) -> HAProxySettings:
    s = Settings(NAME, raw, ("socket", "address", "backend", "stable", "canary", "timeout",
                             "drain_timeout", "preview", "preview_headers"))
    socket_path = s.text("socket")
    address_text = s.text("address")
    if (socket_path is None) == (address_text is None):
        raise s.error("give exactly one of socket: (a Unix socket path) or address: host:port "
                      "for the runtime API")
    address = parse_address(address_text) if address_text is not None else None
    backend = s.text("backend", required=True)
    assert backend is not None
    if not _NAME.match(backend):
        raise s.error(f"backend '{backend[:40]}' is not a valid HAProxy backend name")
    stable = _names(s, "stable")
    canary = _names(s, "canary")
    both = sorted(set(stable) & set(canary))
    if both:
        raise s.error(f"server '{both[0]}' is both stable and canary")
    timeout = s.duration("timeout", None)
    if timeout is None:
        timeout = max(0.2, min(2.0, call_timeout / 4))
    if timeout >= call_timeout:
        raise s.error(f"timeout {timeout:g}s must be shorter than release.call_timeout "
                      f"({call_timeout:g}s)")
    blue_green = strategy == "blue-green"
    if strategy == "canary" and s.has("drain_timeout"):
        raise s.error("'drain_timeout' is for release.strategy: blue-green only (a canary "
                      "moves weights and drains nothing); remove it")
    drain = s.duration("drain_timeout", DEFAULT_DRAIN)
    assert drain is not None
    # A switch is bounded by its own `action_timeout`, not by release.call_timeout; the
    # bound keeps a typo (45m for 45s) from holding the release for an hour.
    if drain > MAX_DRAIN:
        raise s.error(f"drain_timeout {drain:g}s is longer than {MAX_DRAIN / 60:g} minutes; "
                      "sessions that outlive a drain finish on the old side anyway, so a "
                      "shorter drain (30s–60s) loses nothing")
    preview, preview_headers = _preview(s, blue_green)
    return HAProxySettings(backend=backend, stable=stable, canary=canary, socket=socket_path,
                           address=address, timeout=timeout, drain_timeout=drain,
                           blue_green=blue_green, preview=preview,
                           preview_headers=preview_headers, call_timeout=call_timeout)


# ----------------------------------------------------------------------------- weights


def split_weights(percent: int, n_stable: int, n_canary: int) -> tuple[int, int]:
    """Per-server weights (canary, stable) so the canary's share of the total is `percent`.

    Exact where HAProxy's 0..256 range allows (for one server a side: canary = percent,
    stable = 100 - percent, which reads naturally in `get weight`); otherwise the closest
    pair whose share still rounds to `percent`.
    """
    if not 0 <= percent <= 100:
        raise _err(f"weight {percent} is outside 0..100")
    if percent == 0:
        return 0, FULL_WEIGHT
    if percent == 100:
        return FULL_WEIGHT, 0
    wc, ws = percent * n_stable, (100 - percent) * n_canary
    g = math.gcd(wc, ws)
    if max(wc, ws) > MAX_WEIGHT:
        wc, ws = wc // g, ws // g
    if max(wc, ws) <= MAX_WEIGHT:
        return wc, ws
    target = Fraction(percent, 100)
    best: tuple[Fraction, int, int] | None = None
    for c in range(MAX_WEIGHT, 0, -1):
        ideal = Fraction(c * n_canary * (100 - percent), percent * n_stable)
        # Clamped: past the limit, the nearest weight HAProxy accepts may still round right.
        for st in {min(max(math.floor(ideal), 1), MAX_WEIGHT),
                   min(max(math.ceil(ideal), 1), MAX_WEIGHT)}:
            share = Fraction(c * n_canary, c * n_canary + st * n_stable)
            error = abs(share - target)
            if best is None or error < best[0]:
                best = (error, c, st)
    if best is None or best[0] * 100 >= Fraction(1, 2):
        raise _err(f"{percent}% cannot be expressed with {n_canary} canary and {n_stable} "
                   f"stable servers within HAProxy's weight limit of {MAX_WEIGHT}")
    return best[1], best[2]


def share(canary_weights: Sequence[int], stable_weights: Sequence[int]) -> int | None:
    """The canary's percent of the total effective weight; None when nothing takes traffic."""
    total = sum(canary_weights) + sum(stable_weights)
    if total == 0:
        return None
    return round(100 * sum(canary_weights) / total)


# ----------------------------------------------------------------------------- replies


def explain_reply(command: str, reply: str, backend: str) -> ProviderError:
    """A non-empty answer to a command that answers nothing on success."""
    first = next((line.strip() for line in reply.splitlines() if line.strip()), "")
    if first.startswith("Permission denied"):
        return _err("permission denied: the runtime API socket must be at `level admin` to "
                    "change weights (stats socket … level admin)")
    if first.startswith("No such backend"):
        return _err(f"HAProxy has no backend named '{backend}'")
    if first.startswith("No such server"):
        # The server is the command's `backend/server` word. A command without one
        # (`show stat` answered "No such server" by something that is not HAProxy) has
        # no server to name: indexing its words blindly raised IndexError.
        server = next((w for w in command.split() if "/" in w), "")
        if server:
            return _err(f"backend {backend} has no server '{server.partition('/')[2]}'")
    if first.startswith("Unknown command"):
        verb = " ".join(command.split()[:2])
        return _err(f"this HAProxy does not know `{verb}` (too old, or not a runtime API?)")
    if "static LB algorithm" in first:
        return _err(f"backend {backend} uses a static balance algorithm (static-rr, hash…), "
                    "whose weights cannot change at runtime; use balance roundrobin")
    return _err(f"`{_clip(command, 60)}` failed: {_clip(first or reply)}")


def split_answers(reply: str, count: int) -> list[str]:
    """The answers to `a; b; c` in order. Each answer is its text and an empty line, and
    a command that succeeds silently answers the empty line alone."""
    lines = reply.split("\n")
    out: list[str] = []
    i = 0
    while len(out) < count and i < len(lines):
        block: list[str] = []
        while i < len(lines) and lines[i] != "":
            block.append(lines[i])
            i += 1
        out.append("\n".join(block))
        i += 1  # the empty line that ends this answer
    return out


def parse_weights(reply: str, servers: Sequence[str], backend: str) -> dict[str, int]:
    """Answers of `get weight b/s1; get weight b/s2; …` in order -> {server: weight}."""
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    if len(lines) != len(servers):
        if lines and not _WEIGHT_REPLY.match(lines[0]):
            raise explain_reply(f"get weight {backend}/{servers[0]}", lines[0], backend)
        raise _err(f"unexpected answer to get weight: {_clip(reply) or '(empty)'}")
    out: dict[str, int] = {}
    for server, line in zip(servers, lines, strict=True):
        match = _WEIGHT_REPLY.match(line)
        if match is None:
            raise explain_reply(f"get weight {backend}/{server}", line, backend)
        out[server] = int(match.group(1))
        if out[server] > MAX_WEIGHT:  # not a weight HAProxy can have: not read as one
            raise _err(f"unexpected answer to get weight: {_clip(line)}")
    return out


def _table(reply: str, what: str) -> tuple[list[str], list[list[str]], str]:
    """Header and rows of a `# a,b,c` (show stat) or `# a b c` (show servers state) table."""
    lines = [line for line in reply.splitlines() if line.strip()]
    header_at = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if header_at is None:
        if lines:
            raise explain_reply(what, lines[0], "")
        raise _err(f"empty answer to `{what}`")
    header_line = lines[header_at][2:]
    sep = "," if "," in header_line else " "
    header = [h.strip() for h in header_line.split(sep)]
    rows = [line.split(sep) for line in lines[header_at + 1:] if not line.startswith("#")]
    return header, rows, sep


def parse_stat(reply: str, backend: str) -> dict[str, dict[str, str]]:
    """`show stat` CSV -> {server: {column: value}} for one backend's servers."""
    header, rows, _ = _table(reply, "show stat")
    for column in ("pxname", "svname", "status", "scur"):
        if column not in header:
            raise _err(f"unexpected `show stat` answer (no {column} column)")
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        record = dict(zip(header, row, strict=False))
        # A row cut short before its svname column has no server: `record["svname"]`
        # raised KeyError on it. It is skipped; its server then reads "not in show stat".
        server = record.get("svname")
        if record.get("pxname") == backend and server is not None and server not in (
                "FRONTEND", "BACKEND"):
            out[server] = record
    return out


def parse_servers_state(reply: str, backend: str) -> dict[str, int]:
    """`show servers state <backend>` -> {server: admin state bits} (0 = ready)."""
    if reply.strip().startswith(("Can't find backend", "No such backend")):
        raise _err(f"HAProxy has no backend named '{backend}'")
    header, rows, _ = _table(reply, f"show servers state {backend}")
    for column in ("be_name", "srv_name", "srv_admin_state"):
        if column not in header:
            raise _err(f"unexpected `show servers state` answer (no {column} column)")
    out: dict[str, int] = {}
    for row in rows:
        record = dict(zip(header, row, strict=False))
        if record.get("be_name") != backend:
            continue
        try:
            out[record["srv_name"]] = int(record["srv_admin_state"])
        except (KeyError, ValueError):
            raise _err(f"unexpected `show servers state` row: {_clip(' '.join(row))}") from None
    return out


def health(name: str, role: Role, row: dict[str, str] | None) -> ServerHealth:
    """One server's health as `show stat` reports it."""
    if row is None:
        return ServerHealth(name, role, up=False, detail="not in show stat")
    status = row.get("status", "").strip()
    check = row.get("check_status", "").strip()
    sessions = row.get("scur", "").strip() or "0"
    # "UP 1/3" is still up (going down); DRAIN and NOLB are healthy but out of rotation.
    up = status.startswith("UP") or status in ("DRAIN", "NOLB", "no check")
    detail = " ".join(x for x in (status, check, f"{sessions} sess") if x)
    return ServerHealth(name, role, up=up, detail=detail)


# ----------------------------------------------------------------------------- transport


class RuntimeAPI:
    """One command line per connection, as HAProxy's non-interactive mode expects."""

    def __init__(self, settings: HAProxySettings) -> None:
        self.settings = settings
        self.calls = 0

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        s = self.settings
        if s.socket is not None:
            return await asyncio.open_unix_connection(s.socket)
        assert s.address is not None
        return await asyncio.open_connection(*s.address)

    async def call(self, command: str) -> str:
        if "\n" in command or "\r" in command:
            raise _err("refusing a command with a line break")
        self.calls += 1
        s = self.settings
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(s.timeout):
                reader, writer = await self._open()
                writer.write(command.encode() + b"\n")
                await writer.drain()
                chunks: list[bytes] = []
                size = 0
                while True:
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > MAX_REPLY:
                        raise _err(f"answer to `{command.split(';')[0]}` is larger than "
                                   f"{MAX_REPLY // 1024 // 1024} MB")
                    chunks.append(chunk)
        except TimeoutError:
            raise _err(f"no answer from {s.where} within {s.timeout:g}s") from None
        except FileNotFoundError:
            raise _err(f"no socket at {s.where} (is HAProxy running with "
                       f"`stats socket {s.where} level admin`?)") from None
        except ConnectionRefusedError:
            raise _err(f"connection refused at {s.where}") from None
        except PermissionError:
            raise _err(f"permission denied opening {s.where} (run as a user who may "
                       "write the socket)") from None
        except OSError as exc:
            raise _err(f"cannot reach {s.where}: {exc.strerror or type(exc).__name__}") from None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        reply = b"".join(chunks).decode("utf-8", "replace")
        if reply and not reply.endswith("\n"):
            # Every answer ends with a line break (and a blank line); one that stops in
            # the middle of a line lost its tail to a dropped connection.
            raise _err(f"answer to `{_clip(command.split(';')[0], 60)}` was cut short "
                       f"(connection closed mid-answer): …{_clip(reply[-40:], 40)}")
        return reply


# ----------------------------------------------------------------------------- the provider


@dataclass(frozen=True)
class PreviewResult:
    """One GET of the preview URL: green's answer while it takes no user traffic."""

    url: str
    status: int | None  # None: no HTTP answer at all (see `problem`)
    millis: float
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def text(self) -> str:
        """'200 in 12 ms at http://…', or what went wrong instead."""
        if self.status is None:
            return f"no answer from {self.url}: {self.problem}"
        return f"{self.status} in {self.millis:.0f} ms at {self.url}"


class HAProxyTraffic:
    """`TrafficProvider` over the weights of one backend's stable and canary servers."""

    name = NAME

    def __init__(self, settings: HAProxySettings) -> None:
        self.settings = settings
        self.api = RuntimeAPI(settings)
        self.last_drain = ""  # how the last blue-green switch drained, for the operator
        self.last_preview: PreviewResult | None = None
        self._http: HttpApi | None = None

    @property
    def servers(self) -> tuple[str, ...]:
        return self.settings.canary + self.settings.stable

    @property
    def action_timeout(self) -> float:
        """Seconds one move may take, for the engine to bound it by (instead of
        release.call_timeout): a switch drains, then reads back. The runtime-API calls
        of a switch, one timeout each: the check of the servers, the preview's GET, the
        change, the last `show stat` of the drain, the read-back of weights and states."""
        s = self.settings
        if not s.blue_green:
            return s.call_timeout
        return max(s.call_timeout, s.drain_timeout + s.drain_poll + 6 * s.timeout + 1.0)

    def _path(self, server: str) -> str:
        return f"{self.settings.backend}/{server}"

    async def weights(self) -> dict[str, int]:
        servers = self.servers
        reply = await self.api.call("; ".join(f"get weight {self._path(s)}" for s in servers))
        return parse_weights(reply, servers, self.settings.backend)

    async def admin_states(self) -> dict[str, int]:
        reply = await self.api.call(f"show servers state {self.settings.backend}")
        states = parse_servers_state(reply, self.settings.backend)
        for server in self.servers:
            if server not in states:
                raise _err(f"backend {self.settings.backend} has no server '{server}'")
        return states

    async def stats(self) -> dict[str, dict[str, str]]:
        return parse_stat(await self.api.call("show stat"), self.settings.backend)

    async def probe_preview(self) -> PreviewResult:
        """GET the preview URL once (blue-green): its status and time, or why none came."""
        s = self.settings
        assert s.preview is not None
        if self._http is None:
            parts = urlsplit(s.preview)
            self._http = HttpApi(
                NAME, HttpSettings(url=f"{parts.scheme}://{parts.netloc}", timeout=s.timeout,
                                   max_retries=0), dict(s.preview_headers))
        started = time.monotonic()
        try:
            # Every status is an answer to report: only a 2xx lets the switch go.
            response = await self._http.request("GET", s.preview, "green preview",
                                                ok=tuple(range(100, 600)))
        except ProviderError as exc:
            problem = str(exc).removeprefix(f"{NAME}: green preview: ")
            result = PreviewResult(s.preview, None, 0.0, _clip(problem, 100))
        else:
            millis = (time.monotonic() - started) * 1000
            result = PreviewResult(s.preview, response.status_code, millis)
        self.last_preview = result
        return result

    async def read(self) -> TrafficState:
        s = self.settings
        weights, states, stats = await asyncio.gather(
            self.weights(), self.admin_states(), self.stats())
        # A drained or maintenance server takes no new traffic whatever its weight;
        # health is reported, not counted, so a flapping check does not read as a
        # change of plan.
        def effective(server: str) -> int:
            return weights[server] if states.get(server, 0) == 0 else 0

        percent = share([effective(x) for x in s.canary], [effective(x) for x in s.stable])
        if percent is None:
            raise _err(f"no server of backend {s.backend} can take traffic "
                       "(all at weight 0, drained or in maintenance)")
        preview = await self.probe_preview() if s.blue_green and percent == 0 else None
        servers = tuple(
            _with_preview(health(x, role, stats.get(x)), preview)
            for role, names in ((Role.CANARY, s.canary), (Role.BASELINE, s.stable))
            for x in names
        )
        notes = [f"green preview: {preview.text}"] if preview is not None else []
        if s.blue_green and self.last_drain:
            notes.append(f"last switch: {self.last_drain}")
        return TrafficState(canary_weight=percent, servers=servers, note=" · ".join(notes))

    async def _send(self, commands: list[str]) -> None:
        """Commands that answer nothing on success, sent as one line (applied together)."""
        if not commands:
            return
        reply = await self.api.call("; ".join(commands))
        if reply.strip():
            for command, answer in zip(commands, split_answers(reply, len(commands)),
                                       strict=False):
                if answer.strip():
                    raise explain_reply(command, answer, self.settings.backend)
            raise explain_reply(commands[0], reply, self.settings.backend)

    async def set_weight(self, weight: int, *, reason: str) -> None:
        s = self.settings
        if not 0 <= weight <= 100:
            raise _err(f"weight {weight} is outside 0..100")
        before = await self.weights()  # unknown servers fail here, by name, before anything changes
        if s.blue_green and weight in (0, 100):
            to_canary = weight == 100
            if await self._switched(before, to_canary=to_canary):
                return  # already there, verified: a repeated switch changes nothing
            if to_canary:
                preview = await self.probe_preview()
                if not preview.ok:
                    raise _err(f"switch refused, nothing changed: the green preview must "
                               f"answer 2xx first, and got {preview.text}")
            wanted = await self._switch(to_canary=to_canary)
        else:
            wc, ws = split_weights(weight, len(s.stable), len(s.canary))
            wanted = {**{c: wc for c in s.canary}, **{st: ws for st in s.stable}}
            commands = [f"set weight {self._path(x)} {w}" for x, w in wanted.items()]
            if s.blue_green:
                # Part-way in blue-green both sides serve; undo an earlier drain.
                commands += [f"set server {self._path(x)} state ready" for x in self.servers]
            await self._send(commands)
        got = await self.weights()
        wrong = [f"{x} reports {got[x]}, asked {w}" for x, w in wanted.items() if got[x] != w]
        if wrong:
            raise _err(f"weights not applied on backend {s.backend}: {'; '.join(wrong)}")
        if s.blue_green and weight in (0, 100):
            new, old = (s.canary, s.stable) if weight == 100 else (s.stable, s.canary)
            states = await self.admin_states()
            bad = [f"{x} is not ready (admin state {states[x]})" for x in new if states[x]]
            bad += [f"{x} is not drained (admin state {states[x]})" for x in old
                    if not states[x] & ADMIN_DRAIN]
            if bad:
                raise _err(f"switch not applied on backend {s.backend} (show servers state): "
                           f"{'; '.join(bad)}")

    async def _switched(self, weights: dict[str, int], *, to_canary: bool) -> bool:
        """Whether the switch asked for is already in place: the new side ready at full
        weight, the old side drained (`show servers state`)."""
        s = self.settings
        new, old = (s.canary, s.stable) if to_canary else (s.stable, s.canary)
        if any(weights[x] != FULL_WEIGHT for x in self.servers):
            return False
        states = await self.admin_states()
        return all(states[x] == 0 for x in new) and all(states[x] & ADMIN_DRAIN for x in old)

    async def _switch(self, *, to_canary: bool) -> dict[str, int]:
        """Blue-green: the new side ready at full weight, then the old side drained."""
        s = self.settings
        new, old = (s.canary, s.stable) if to_canary else (s.stable, s.canary)
        wanted = {x: FULL_WEIGHT for x in self.servers}
        await self._send(
            [f"set weight {self._path(x)} {FULL_WEIGHT}" for x in self.servers]
            + [f"set server {self._path(x)} state ready" for x in new]
            + [f"set server {self._path(x)} state drain" for x in old]
        )
        started = time.monotonic()
        while True:
            stats = await self.stats()
            left = sum(_int(stats.get(x, {}).get("scur")) for x in old)
            waited = time.monotonic() - started
            if left == 0:
                self.last_drain = f"{', '.join(old)} drained in {waited:.1f}s"
                break
            if waited >= s.drain_timeout:
                # New traffic already goes to the new side; the old side's sessions end
                # on their own. Waiting longer would only hold the engine's call.
                self.last_drain = (f"{', '.join(old)} still had {left} session(s) after "
                                   f"{s.drain_timeout:g}s; they finish on the old side")
                break
            await asyncio.sleep(s.drain_poll)
        return wanted

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def _with_preview(server: ServerHealth, preview: PreviewResult | None) -> ServerHealth:
    """A green server's health with what the preview answered, while it is the only
    traffic green gets (the preview reaches green as a whole, not one server)."""
    if preview is None or server.role is not Role.CANARY:
        return server
    said = f"preview {preview.status}" if preview.status is not None else "preview failed"
    return replace(server, detail=f"{server.detail} · {said}".strip(" ·"))


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def build_traffic(settings: dict[str, Any], ctx: BuildContext) -> object:
    # Each strategy that routes by more than a weight has its own module beside this one.
    if ctx.plan.strategy == "ab":
        from relconsole.providers.haproxy_cohorts import build_cohort_traffic
        return build_cohort_traffic(settings, ctx)
    if ctx.plan.strategy == "rolling":
        from relconsole.providers.rolling import build_haproxy_rolling
        return build_haproxy_rolling(settings, ctx)
    parsed = parse_settings(settings, strategy=ctx.plan.strategy,
                            call_timeout=ctx.plan.call_timeout)
    return HAProxyTraffic(parsed)
