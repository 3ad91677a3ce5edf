"""Blue-green on the HAProxy provider: the preview that checks green before the switch,
the switch and its rollback with drain, verified with `get weight` and `show servers
state` — against the local runtime API of tests/test_haproxy.py and a real local HTTP
server as the preview. The real HAProxy is in tests/integration/test_blue_green.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from relconsole.model import Role
from relconsole.providers.base import ProviderError
from relconsole.providers.haproxy import HAProxyTraffic, parse_settings
from tests.test_haproxy import BASE, FakeRuntimeAPI, Server, settings


@dataclass
class Preview:
    """An HTTP server standing for the preview frontend: answers `status` to every GET."""

    status: int = 200
    port: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = await reader.readline()
        headers: dict[str, str] = {"_line": request_line.decode().strip()}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        self.requests.append(headers)
        writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 3\r\n"
                     "Connection: close\r\n\r\nok\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[FakeRuntimeAPI]:
    """Blue (stable) takes every user, green (canary) none: where a blue-green starts."""
    fake = FakeRuntimeAPI(tmp_path / "admin.sock", {
        "stable": Server(100, 100), "canary": Server(0, 0),
    })
    server = await asyncio.start_unix_server(fake.handle, path=str(fake.path))
    yield fake
    server.close()
    await server.wait_closed()


@pytest.fixture
async def preview() -> AsyncIterator[Preview]:
    fake = Preview()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    yield fake
    server.close()
    await server.wait_closed()


def blue_green(fake: FakeRuntimeAPI, preview: Preview | str, **changes: Any) -> HAProxyTraffic:
    url = preview if isinstance(preview, str) else preview.url
    raw = {**BASE, "socket": str(fake.path), "preview": url, "drain_timeout": "2s", **changes}
    parsed = parse_settings({k: v for k, v in raw.items() if v is not None},
                            strategy="blue-green", call_timeout=5.0)
    return HAProxyTraffic(dataclasses.replace(parsed, drain_poll=0.01))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- settings


def test_blue_green_needs_a_preview_and_says_what_to_write() -> None:
    with pytest.raises(ProviderError) as caught:
        settings("blue-green")
    message = str(caught.value)
    assert message.startswith("haproxy: 'preview' is required for release.strategy: blue-green")
    assert "preview: http://" in message and "preview_headers:" in message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preview": "ftp://green/"}, "must be an http:// or https:// URL"),
        ({"preview": "http://"}, "must be an http:// or https:// URL"),
        ({"preview": "http://h:port/"}, "is not a valid URL"),
        ({"preview": "http://u:secret@green/"}, "must not carry user:password@"),
        ({"preview": "http://green/", "preview_headers": ["X-Release"]}, "must be a mapping"),
        ({"preview": "http://green/", "preview_headers": {"X Release": "g"}},
         "is not an HTTP header name"),
        ({"preview": "http://green/", "preview_headers": {"X-Release": "a\r\nb"}},
         "must be one line of printable text"),
        ({"preview": "http://green/", "drain_timeout": "11m"}, "longer than 10 minutes"),
    ],
)
def test_bad_preview_and_drain_settings_are_refused(changes: dict[str, Any],
                                                     message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        settings("blue-green", **changes)


@pytest.mark.parametrize("key", ["preview", "drain_timeout"])
def test_blue_green_keys_are_refused_for_a_canary(key: str) -> None:
    with pytest.raises(ProviderError, match=f"'{key}' is for release.strategy: blue-green"):
        settings("canary", **{key: "http://green/" if key == "preview" else "30s"})


def test_the_drain_defaults_to_45_seconds_and_need_not_fit_in_the_call_timeout() -> None:
    s = settings("blue-green", preview="http://green/healthz")
    assert s.drain_timeout == 45.0
    long = settings("blue-green", preview="http://green/", drain_timeout="5m",
                    preview_headers={"X-Release": "green", "Host": "app.internal"})
    assert long.drain_timeout == 300.0 and long.call_timeout == 5.0
    assert long.preview_headers == (("X-Release", "green"), ("Host", "app.internal"))


def test_the_action_timeout_covers_the_drain_and_the_reads() -> None:
    bg = HAProxyTraffic(settings("blue-green", preview="http://green/", drain_timeout="45s",
                                 timeout="1s"))
    # The drain, then the runtime-API calls around it at a second each, plus margin.
    assert 45 + 6 <= bg.action_timeout <= 45 + 6 + 2
    assert HAProxyTraffic(settings("canary")).action_timeout == 5.0  # release.call_timeout


# ----------------------------------------------------------------------------- preview


async def test_while_green_has_no_users_each_read_checks_the_preview(
    runtime: FakeRuntimeAPI, preview: Preview,
) -> None:
    t = blue_green(runtime, preview, preview_headers={"X-Release": "green"})
    state = await t.read()
    assert state.canary_weight == 0
    assert state.note.startswith("green preview: 200 in ")
    assert state.note.endswith(f" ms at {preview.url}")
    green = next(s for s in state.servers if s.role is Role.CANARY)
    blue = next(s for s in state.servers if s.role is Role.BASELINE)
    assert green.detail.endswith("· preview 200") and "preview" not in blue.detail
    assert preview.requests[-1]["_line"] == "GET /healthz HTTP/1.1"
    assert preview.requests[-1]["x-release"] == "green"
    await t.close()


async def test_a_failing_preview_shows_on_green(runtime: FakeRuntimeAPI, preview: Preview) -> None:
    preview.status = 503
    t = blue_green(runtime, preview)
    state = await t.read()
    assert state.note.startswith("green preview: 503 in ")
    green = next(s for s in state.servers if s.role is Role.CANARY)
    assert green.detail.endswith("· preview 503")
    await t.close()


async def test_the_switch_is_refused_unless_the_preview_answers_2xx(
    runtime: FakeRuntimeAPI, preview: Preview,
) -> None:
    preview.status = 503
    t = blue_green(runtime, preview)
    with pytest.raises(ProviderError) as caught:
        await t.set_weight(100, reason="switch")
    message = str(caught.value)
    assert message.startswith("haproxy: switch refused, nothing changed: the green preview "
                              "must answer 2xx first, and got 503 in ")
    assert preview.url in message
    assert not any(line.startswith("set ") for line in runtime.lines)
    assert runtime.servers["stable"].weight == 100 and runtime.servers["canary"].weight == 0
    assert (await t.read()).canary_weight == 0
    await t.close()


async def test_an_unreachable_preview_refuses_the_switch_too(runtime: FakeRuntimeAPI) -> None:
    url = f"http://127.0.0.1:{closed_port()}/healthz"
    t = blue_green(runtime, url)
    with pytest.raises(ProviderError, match=r"nothing changed: .* and got no answer from "
                                            r"http://127\.0\.0\.1:\d+/healthz: cannot connect"):
        await t.set_weight(100, reason="switch")
    assert not any(line.startswith("set ") for line in runtime.lines)
    assert "connection refused" in (await t.read()).note
    await t.close()


# ----------------------------------------------------------------------------- switch


async def test_the_switch_drains_blue_and_is_verified(
    runtime: FakeRuntimeAPI, preview: Preview,
) -> None:
    runtime.servers["stable"].scur = 6
    runtime.drain_per_stat = 2
    t = blue_green(runtime, preview)
    await t.set_weight(100, reason="switch")
    assert runtime.servers["stable"].admin == 8 and runtime.servers["canary"].admin == 0
    assert runtime.servers["stable"].scur == 0
    assert t.last_drain.startswith("stable drained in")
    # Checked by HAProxy's own account after the change: weights, then admin states.
    assert runtime.lines[-2:] == ["get weight app/canary; get weight app/stable",
                              "show servers state app"]
    probes = len(preview.requests)
    state = await t.read()
    assert state.canary_weight == 100
    assert state.note.startswith("last switch: stable drained in")
    assert len(preview.requests) == probes  # green has the users now: no preview needed
    await t.close()


async def test_a_repeated_switch_changes_nothing(runtime: FakeRuntimeAPI, preview: Preview) -> None:
    t = blue_green(runtime, preview)
    await t.set_weight(100, reason="switch")
    preview.status = 500  # green's preview would no longer let a switch go …
    mark = len(runtime.lines)
    await t.set_weight(100, reason="done")  # … but it is already switched, and verified
    assert not any(line.startswith("set ") for line in runtime.lines[mark:])
    await t.close()


async def test_rollback_switches_back_with_drain(runtime: FakeRuntimeAPI, preview: Preview) -> None:
    t = blue_green(runtime, preview)
    await t.set_weight(100, reason="switch")
    runtime.servers["canary"].scur = 4
    runtime.drain_per_stat = 4
    preview.status = 503  # a broken green must not stop the way back
    await t.set_weight(0, reason="roll back")
    assert runtime.servers["canary"].admin == 8 and runtime.servers["stable"].admin == 0
    assert t.last_drain.startswith("canary drained in")
    state = await t.read()
    assert state.canary_weight == 0
    assert "last switch: canary drained in" in state.note
    assert "green preview: 503" in state.note  # green has no users again: checked again
    await t.close()


async def test_the_drain_gives_up_after_its_timeout(
    runtime: FakeRuntimeAPI, preview: Preview,
) -> None:
    runtime.servers["stable"].scur = 5  # sessions that never end
    t = blue_green(runtime, preview, drain_timeout="300ms")
    await t.set_weight(100, reason="switch")
    assert t.last_drain == ("stable still had 5 session(s) after 0.3s; they finish on the "
                            "old side")
    assert (await t.read()).canary_weight == 100  # new traffic moved anyway
    await t.close()


async def test_a_drain_haproxy_did_not_apply_fails_the_switch(
    runtime: FakeRuntimeAPI, preview: Preview,
) -> None:
    original = runtime.one

    def no_drain(command: str) -> str:
        if command.startswith("set server app/stable state drain"):
            return ""  # says yes, does nothing
        return original(command)

    runtime.one = no_drain  # type: ignore[method-assign]
    t = blue_green(runtime, preview)
    with pytest.raises(ProviderError, match=r"switch not applied on backend app \(show servers "
                                            r"state\): stable is not drained"):
        await t.set_weight(100, reason="switch")
    await t.close()
