"""Issue 5, "no leaked secrets": a recognisable fake token in every secret field of a
config never shows — not on screen, not in logs, not in the journal, not in any exception.

Every secret-capable setting gets its own token (all contain `SEKRIT`), read from the
environment with `env:`. The providers point at servers that fail and, worse, *echo
every request header back* in their error bodies (a debugging proxy, a chatty vendor),
at a closed port, and at a TLS server whose certificate nobody trusts. Then every CLI
command runs as a real subprocess, the TUI runs under Pilot, and the providers are called
directly; every output, every file in the state dir and every exception chain is scanned.

Also: a failing and a hanging keyring each give a clear message and the `env:` fallback
within seconds (end to end, through the CLI), and every HTTP provider verifies TLS by
default and says how to configure a CA when it refuses.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import html
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from relconsole.clock import FastClock
from relconsole.config import ConfigError, Secret, load_config
from relconsole.model import MetricSpec
from relconsole.providers import registry
from relconsole.providers.base import BuildContext, ProviderError
from tests.helpers import self_signed_certificate

ROOT = Path(__file__).resolve().parents[1]
MARK = "SEKRIT"
TOKEN = "tok-SEKRIT-4f1c9e"
USER = "reader"

# One variable per secret field, each with its own recognisable value.
SECRETS = {
    "RELC_T_PROM_TOKEN": f"{TOKEN}-prom-bearer",
    "RELC_T_PROM_PASSWORD": f"{TOKEN}-prom-password",
    "RELC_T_PROM_HEADER": f"{TOKEN}-prom-header",
    "RELC_T_DEPLOY_ARG": f"{TOKEN}-deploy-arg",
    "RELC_T_DEPLOY_ENV": f"{TOKEN}-deploy-env",
    "RELC_T_FLAGS_TOKEN": f"{TOKEN}-flags",
}
# Encoded forms reveal the secret just as well: Basic auth puts user:password in base64.
ENCODED = [base64.b64encode(f"{USER}:{SECRETS['RELC_T_PROM_PASSWORD']}".encode()).decode()]
FLAG = "checkout-new-pricing-release"
VENDORS = ("unleash", "launchdarkly", "split", "flagsmith")
METRIC = MetricSpec("error_rate", 'sum(errors{version="{{version}}"})', "ratio")


def leaks(text: str) -> list[str]:
    """Every trace of a secret in `text`: the shared marker, or an encoded credential."""
    found = [MARK] if MARK in text else []
    return found + [e for e in ENCODED if e in text]


def assert_clean(text: str, where: str) -> None:
    found = leaks(text)
    if found:
        at = text.find(found[0])
        raise AssertionError(f"secret leaked in {where}: …{text[max(0, at - 120):at + 60]}…")


def exception_texts(exc: BaseException) -> str:
    """str and repr of an exception and of everything chained to it, args included."""
    parts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args)]
        todo += [current.__cause__, current.__context__]
    return "\n".join(parts)


def test_the_scanner_finds_what_it_looks_for() -> None:
    """The checks below can fail: a printed token, an encoded one, a chained one."""
    assert leaks(f"401 for Bearer {SECRETS['RELC_T_FLAGS_TOKEN']}") == [MARK]
    assert leaks(f"Authorization: Basic {ENCODED[0]}") == ENCODED
    with pytest.raises(AssertionError, match="secret leaked in demo"):
        assert_clean(f"x {TOKEN} y", "demo")
    try:
        try:
            raise ValueError(f"bad header {TOKEN}")
        except ValueError:
            raise ProviderError("clean message") from None
    except ProviderError as exc:
        assert leaks(str(exc)) == []
        assert leaks(exception_texts(exc)) == [MARK]  # __context__ is still reachable
    proc = subprocess.run([sys.executable, "-c", f"print('{TOKEN}')"],
                          capture_output=True, text=True, check=True)
    assert leaks(proc.stdout) == [MARK]


# --------------------------------------------------------------------------- servers


class EchoServer:
    """Answers every request with `status` and a JSON body that quotes every request
    header — the Authorization header included — in every field a provider reads."""

    def __init__(self, status: int = 500, *, pad: int = 0, tls: ssl.SSLContext | None = None,
                 content: Any = None) -> None:
        self.status = status
        self.pad = pad
        self.content = content
        self.seen: list[dict[str, str]] = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = dict(self.headers.items())
                echo.seen.append(headers)
                # Credentials first, so that no message clip cuts them off unseen.
                first = sorted(headers.items(), key=lambda kv: kv[0].lower() not in (
                    "authorization", "x-scope-orgid"))
                quoted = "x" * echo.pad + " you sent " + "; ".join(
                    f"{k}: {v}" for k, v in first)
                if echo.content is not None:
                    status, body = 200, echo.content
                else:
                    status = echo.status
                    body = {"message": quoted, "error": quoted, "errorType": "bad_data",
                            "detail": quoted, "status": "error"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer(500)
    yield server
    server.close()


@pytest.fixture
def denier() -> Iterator[EchoServer]:
    server = EchoServer(401)
    yield server
    server.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_echo(certificate: tuple[Path, Path]) -> Iterator[EchoServer]:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = EchoServer(500, tls=context)
    yield server
    server.close()


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return dict(SECRETS)


# --------------------------------------------------------------------------- the config

# The deploy tool behind the command provider is as careless as it gets: it prints the
# token from its environment and its secret argument on both streams, and even in the
# status JSON it hands back.
HOOK = """\
import json, os, pathlib, sys
state = pathlib.Path(__file__).with_name("weight")
token = os.environ["DEPLOY_TOKEN"]
print("deploy: using", token, sys.argv[1:], file=sys.stderr)
mode = sys.argv[1]
if mode == "status":
    weight = int(state.read_text()) if state.exists() else 0
    print("login ok as", token)
    print(json.dumps({"canary_weight": weight, "servers": [
        {"name": "canary-1", "role": "canary", "up": True, "detail": "key " + token},
        {"name": "stable-1", "role": "stable", "up": True}]}))
elif mode == "set":
    if int(sys.argv[2]) >= 50:
        print("error: token", token, "may not set", sys.argv[2], file=sys.stderr)
        sys.exit(3)
    state.write_text(sys.argv[2])
    print("set weight with", sys.argv[3])
elif mode == "rollback":
    state.write_text("0")
    print("rolled back with", sys.argv[2], token)
"""


def flags_block(vendor: str, url: str) -> str:
    extra = {
        "unleash": "project: default",
        "launchdarkly": "project: default",
        "split": "workspace: ws-1",
        "flagsmith": "project: 7, environment: env-key-1",
    }[vendor]
    return (f"{{type: {vendor}, url: '{url}', token: 'env:RELC_T_FLAGS_TOKEN', {extra}, "
            "timeout: 1, max_retries: 0}")


def write_config(tmp_path: Path, *, metrics_url: str, flags_url: str, vendor: str = "unleash",
                 auth: str = "bearer") -> Path:
    hook = tmp_path / "hook.py"
    hook.write_text(HOOK)
    if auth == "bearer":
        prom_auth = "token: 'env:RELC_T_PROM_TOKEN'"
    else:
        prom_auth = f"username: {USER}\n    password: 'env:RELC_T_PROM_PASSWORD'"
    py = json.dumps(sys.executable)
    text = textwrap.dedent("""\
        release:
          service: shop
          version: 2.0.0
          environment: staging
          steps: [{{weight: 10}}, {{weight: 20}}, {{weight: 100}}]
          auto_advance: false
          auto_rollback: true
          poll_interval: 0.2s
          call_timeout: 2s
          rollback: {{retry_max: 0.2s, give_up: 2s}}
          flags: [{flag}]
        providers:
          metrics:
            type: prometheus
            url: {metrics_url}
            {prom_auth}
            headers: {{X-Scope-OrgID: 'env:RELC_T_PROM_HEADER'}}
            retries: 0
            timeout: 0.5s
          traffic:
            type: command
            status: [{py}, {hook}, status]
            set_weight: [{py}, {hook}, set, "{{weight}}", 'env:RELC_T_DEPLOY_ARG']
            rollback: [{py}, {hook}, rollback, 'env:RELC_T_DEPLOY_ARG']
            env: {{DEPLOY_TOKEN: 'env:RELC_T_DEPLOY_ENV'}}
            timeout: 1.5s
          flags: {flags}
        versions: {{canary: 2.0.0, baseline: 1.9.0}}
        metrics:
          error_rate: {{query: 'sum(errors{{version="{{{{version}}}}"}})', unit: ratio}}
        gates:
          - {{metric: error_rate, max: 0.01, failure_limit: 1, inconclusive_limit: 2}}
        """).format(flag=FLAG, metrics_url=metrics_url, prom_auth=prom_auth, py=py,
                    hook=json.dumps(str(hook)), flags=flags_block(vendor, flags_url))
    path = tmp_path / "relconsole.yaml"
    path.write_text(text)
    return path


def test_the_config_puts_a_secret_in_every_secret_field(
    tmp_path: Path, secret_env: dict[str, str]
) -> None:
    """Guard against a scan that passes because nothing secret was configured."""
    resolved: list[str] = []
    for auth in ("bearer", "basic"):
        path = write_config(tmp_path, metrics_url="http://127.0.0.1:9", auth=auth,
                            flags_url="http://127.0.0.1:9")
        cfg = load_config(path)

        def walk(value: Any) -> None:
            if isinstance(value, Secret):
                resolved.append(value.reveal())
            elif isinstance(value, dict):
                for v in value.values():
                    walk(v)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    walk(v)

        walk(cfg.providers)
        assert_clean(repr(cfg), "the loaded config's repr")
    assert set(resolved) == set(SECRETS.values())


# --------------------------------------------------------------------------- CLI


@dataclass
class Ran:
    args: list[str]
    code: int
    out: str
    err: str


def cli(*args: str, config: Path, env: dict[str, str], timeout: float = 20) -> Ran:
    argv = [sys.executable, "-m", "relconsole", *args, "-c", str(config)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return Ran(list(args), proc.returncode, proc.stdout, proc.stderr)


def cli_all(commands: list[list[str]], *, config: Path, env: dict[str, str]) -> list[Ran]:
    """Commands that do not change the release, run side by side (they only read)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda c: cli(*c, config=config, env=env), commands))


def cli_env(tmp_path: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELCONSOLE_")}
    env.update(SECRETS)
    env.update(RELCONSOLE_STATE_DIR=str(state), RELCONSOLE_LEASE_TTL="30",
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    env.pop("RELCONSOLE_DEBUG", None)
    return env


def assert_run_clean(ran: Ran) -> None:
    where = f"`relconsole {' '.join(ran.args)}`"
    assert_clean(ran.out, f"{where} stdout")
    assert_clean(ran.err, f"{where} stderr")
    for text in (ran.out, ran.err):
        assert "Traceback" not in text, f"{where} crashed:\n{text}"
        assert "internal error" not in text, f"{where} crashed: {text}"


def assert_state_clean(state: Path) -> int:
    files = [p for p in state.rglob("*") if p.is_file()]
    for path in files:
        assert_clean(path.read_bytes().decode("utf-8", "replace"), str(path))
    return len(files)


def test_every_cli_command_keeps_every_secret(
    tmp_path: Path, echo: EchoServer, denier: EchoServer
) -> None:
    """Prometheus answers 500 quoting the headers it got, the flag vendor 401 quoting
    them; the deploy hook prints its secrets everywhere."""
    config = write_config(tmp_path, metrics_url=echo.url, flags_url=denier.url)
    state = tmp_path / "state"
    env = cli_env(tmp_path, state)
    k = FLAG
    reading = [["check"], ["status"], ["status", "--json"],
               ["flags"], ["flags", "--json"], ["flags", "--audit"]]
    driving = [
        ["advance", "--reason", "go"], ["advance", "--reason", "go"],
        ["pause", "--reason", "look"], ["resume"], ["promote"],
        ["flag", "kill", k, "--reason", "spike"], ["flag", "restore", k, "--reason", "ok"],
        ["flag", "set", k, "30", "--reason", "ramp"],
        ["rollback", "--reason", "bad"],
        ["run", "--headless", "--json"], ["run", "--headless"],
    ]
    journal = [["journal"], ["journal", "--verify"], ["journal", "--format", "json"],
               ["journal", "--format", "md"]]
    results = cli_all(reading, config=config, env=env)
    results += [cli(*c, config=config, env=env) for c in driving]
    results += cli_all(journal, config=config, env=env)
    if os.environ.get("RELC_T_SHOW"):
        for ran in results:
            print(ran)
    for ran in results:
        assert_run_clean(ran)
    by = {" ".join(r.args): r for r in results}
    # The failures really happened, so the scan looked at error text, not at silence.
    assert by["check"].code == 1
    assert "✗ flags (unleash)" in by["check"].out and "HTTP 401" in by["check"].out
    assert "***" in by["check"].out  # the echo was scrubbed, not dropped
    assert "✓ traffic (command)" in by["check"].out
    assert "metrics" in by["check"].out and "HTTP 500" in by["check"].out
    assert by["flags"].code != 0 and "401" in by["flags"].err
    assert by[f"flag kill {k} --reason spike"].code != 0
    assert by["promote"].code != 0 and "HTTP 500" in by["promote"].err
    assert by["rollback --reason bad"].code == 0
    assert by["run --headless --json"].code == 3  # attached to the rolled-back release
    assert json.loads(by["status --json"].out)["service"] == "shop"
    records = [json.loads(line) for line in by["journal --format json"].out.splitlines()]
    assert len(records) >= 5
    assert by["journal --verify"].code == 0
    assert seen_secret(echo, "RELC_T_PROM_TOKEN") and seen_secret(denier, "RELC_T_FLAGS_TOKEN")
    assert assert_state_clean(state) >= 1


def test_cli_changes_through_a_deploy_tool_that_prints_its_secrets(
    tmp_path: Path, denier: EchoServer
) -> None:
    """Healthy metrics this time, so advance and promote reach the deploy hook, which
    prints its token and secret argument on both streams, and fails at 50% and above."""
    vector = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [time.time(), "0"]}]}}
    healthy = EchoServer(content=vector)
    try:
        config = write_config(tmp_path, metrics_url=healthy.url, flags_url=denier.url)
        env = cli_env(tmp_path, tmp_path / "state")
        results = [cli(*c, config=config, env=env) for c in (
            ["advance", "--reason", "go"], ["advance", "--reason", "go"], ["promote"],
            ["status"], ["journal", "--format", "json"],
        )]
        env = cli_env(tmp_path, tmp_path / "state2")
        (tmp_path / "weight").unlink()
        results.append(cli("run", "--headless", "--json", config=config, env=env))
    finally:
        healthy.close()
    if os.environ.get("RELC_T_SHOW"):
        for ran in results:
            print(ran)
    for ran in results:
        assert_run_clean(ran)
    advance, advance2, promote, status, journal, headless = results
    assert advance.code == 0 and advance2.code == 0, (advance, advance2)
    assert promote.code != 0 and "exited 3" in promote.err, promote
    assert "***" in promote.err  # the hook's output is shown, scrubbed
    assert "canary: 20%" in status.out, status
    assert "exited 3" in journal.out
    assert "exited 3" in headless.out and headless.code in (3, 4), headless
    assert_state_clean(tmp_path / "state")
    assert_state_clean(tmp_path / "state2")


def seen_secret(server: EchoServer, name: str) -> bool:
    """The server did receive the secret (so its echo did carry it)."""
    return any(SECRETS[name] in " ".join(h.values()) for h in server.seen)


@pytest.mark.parametrize("vendor", VENDORS[1:])
def test_every_flag_vendor_keeps_its_token_through_the_cli(
    tmp_path: Path, echo: EchoServer, vendor: str
) -> None:
    config = write_config(tmp_path, metrics_url=f"http://127.0.0.1:{closed_port()}",
                          flags_url=echo.url, vendor=vendor)
    state = tmp_path / "state"
    env = cli_env(tmp_path, state)
    results = cli_all([["check"], ["flags"], ["flag", "kill", FLAG, "--reason", "spike"]],
                      config=config, env=env)
    for ran in results:
        assert_run_clean(ran)
    assert f"✗ flags ({vendor})" in results[0].out and "HTTP 500" in results[0].out
    assert "connection refused" in results[0].out  # metrics on the closed port
    assert results[1].code != 0 and "500" in results[1].err
    assert seen_secret(echo, "RELC_T_FLAGS_TOKEN")
    assert_state_clean(state)




def test_basic_auth_password_stays_hidden_through_the_cli(
    tmp_path: Path, echo: EchoServer
) -> None:
    config = write_config(tmp_path, metrics_url=echo.url, auth="basic",
                          flags_url=f"http://127.0.0.1:{closed_port()}")
    state = tmp_path / "state"
    env = cli_env(tmp_path, state)
    results = cli_all([["check"], ["status"]], config=config, env=env)
    assert any(h.get("Authorization", "").startswith("Basic ") for h in echo.seen)
    for ran in results:
        assert_run_clean(ran)
    assert "HTTP 500" in results[0].out
    assert_state_clean(state)


# --------------------------------------------------------------------------- providers


def build(kind: str, settings: dict[str, Any], tmp_path: Path) -> Any:
    plan = load_config(ROOT / "relconsole" / "demo.yaml", resolve_secrets=False).plan
    plan = dataclasses.replace(plan, call_timeout=2.0, metrics=(METRIC,))
    ctx = BuildContext(plan=plan, clock=FastClock(), versions={"canary": "2", "baseline": "1"},
                       shared={"state_dir": tmp_path})
    return registry.build(kind, settings, ctx)


def vendor_settings(vendor: str, url: str, token: str, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"type": vendor, "url": url,
                                "token": Secret(token, "env:RELC_T_FLAGS_TOKEN"),
                                "timeout": 1, "max_retries": 0}
    settings.update({"unleash": {"project": "default"}, "launchdarkly": {"project": "default"},
                     "split": {"workspace": "ws-1"},
                     "flagsmith": {"project": 7, "environment": "env-key-1"}}[vendor])
    settings.update(extra)
    return settings


async def flag_errors(provider: Any) -> list[BaseException]:
    """Every call a flag provider offers, each expected to fail."""
    calls = [provider.list_flags(), provider.set_enabled(FLAG, False, reason="spike")]
    if getattr(provider, "supports_rollout", True):
        calls.append(provider.set_rollout(FLAG, 20, reason="ramp"))
    errors: list[BaseException] = []
    for call in calls:
        try:
            await call
        except Exception as exc:  # any failure is what we scan
            errors.append(exc)
    await provider.close()
    return errors


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("status,pad", [(401, 0), (403, 0), (500, 0), (500, 170), (404, 0)])
async def test_flag_vendor_errors_never_carry_the_token(
    tmp_path: Path, vendor: str, status: int, pad: int
) -> None:
    """`pad` moves the echoed token across the 200-character clip of a vendor message:
    no prefix of it may survive either."""
    server = EchoServer(status, pad=pad)
    try:
        provider = build("flags", vendor_settings(vendor, server.url, SECRETS[
            "RELC_T_FLAGS_TOKEN"]), tmp_path)
        errors = await flag_errors(provider)
    finally:
        server.close()
    assert errors and all(isinstance(e, ProviderError) for e in errors)
    assert seen_secret(server, "RELC_T_FLAGS_TOKEN")
    for exc in errors:
        assert_clean(exception_texts(exc), f"{vendor} error {exc}")
        # No prefix of the token either (a clip through its middle).
        assert "tok-SEK" not in exception_texts(exc)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("raw", [
    "{token}\n", " {token} ", "{token}\r\nX-Evil: 1", "{token}\x00", "{token}é",
], ids=["newline", "spaces", "crlf", "nul", "non-ascii"])
async def test_a_token_an_http_header_cannot_carry_is_refused_without_quoting_it(
    tmp_path: Path, vendor: str, raw: str, echo: EchoServer
) -> None:
    """A secret read from a file often ends in a newline; httpx's complaint about such
    a header quotes it verbatim (with the exception chained), so it must never get there."""
    token = raw.format(token=SECRETS["RELC_T_FLAGS_TOKEN"])
    errors: list[BaseException] = []
    try:
        provider = build("flags", vendor_settings(vendor, echo.url, token), tmp_path)
    except ProviderError as exc:
        errors.append(exc)
        assert "HTTP header cannot carry" in str(exc)
    else:  # surrounding whitespace is not part of a token: stripped, and it works
        assert raw in ("{token}\n", " {token} ")
        errors = await flag_errors(provider)
        assert any("HTTP 500" in str(e) for e in errors)
        assert echo.seen and all(
            h.get("Authorization", "").strip() == h.get("Authorization") for h in echo.seen)
    for exc in errors:
        assert_clean(exception_texts(exc), f"{vendor} error")


@pytest.mark.parametrize("vendor", VENDORS)
def test_credentials_in_a_vendor_url_are_refused_without_quoting_them(
    tmp_path: Path, vendor: str
) -> None:
    url = f"https://admin:{TOKEN}@flags.example.com"
    with pytest.raises(ProviderError) as caught:
        build("flags", vendor_settings(vendor, url, "t0ken"), tmp_path)
    assert "must not carry user:password@" in str(caught.value)
    assert_clean(exception_texts(caught.value), f"{vendor} url error")


def test_credentials_in_the_prometheus_url_are_refused_without_quoting_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(ProviderError) as caught:
        build("metrics", {"type": "prometheus", "url": f"http://{USER}:{TOKEN}@127.0.0.1:9"},
              tmp_path)
    assert "must not carry user:password@" in str(caught.value)
    assert_clean(exception_texts(caught.value), "prometheus url error")


def prometheus_settings(url: str, auth: str, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "type": "prometheus", "url": url, "retries": 0, "timeout": 0.5,
        "headers": {"X-Scope-OrgID": Secret(SECRETS["RELC_T_PROM_HEADER"], "env:H")},
    }
    if auth == "bearer":
        settings["token"] = Secret(SECRETS["RELC_T_PROM_TOKEN"], "env:T")
    else:
        settings.update(username=USER,
                        password=Secret(SECRETS["RELC_T_PROM_PASSWORD"], "env:P"))
    settings.update(extra)
    return settings


@pytest.mark.parametrize("auth", ["bearer", "basic"])
@pytest.mark.parametrize("status", [400, 422, 500, 503])
async def test_prometheus_problems_never_carry_a_secret(
    tmp_path: Path, auth: str, status: int
) -> None:
    server = EchoServer(status)
    try:
        prom = build("metrics", prometheus_settings(server.url, auth), tmp_path)
        sample = await prom.sample([METRIC])
        history = await prom.history([METRIC], 10, 5)
        await prom.close()
    finally:
        server.close()
    assert server.seen
    problems = [sample["error_rate"].canary.problem, sample["error_rate"].baseline.problem]
    problems += [p.canary.problem for p in history["error_rate"]]
    assert all(problems), problems
    for problem in problems:
        assert_clean(problem or "", f"prometheus {auth} HTTP {status} problem")


async def test_command_provider_failures_never_carry_a_secret(
    tmp_path: Path, secret_env: dict[str, str]
) -> None:
    config = write_config(tmp_path, metrics_url="http://127.0.0.1:9",
                          flags_url="http://127.0.0.1:9")
    cfg = load_config(config)
    traffic = build("traffic", cfg.providers["traffic"], tmp_path)
    state = await traffic.read()
    assert_clean(repr(state), "traffic state")
    assert "***" in traffic.last_run.stderr  # the hook printed it; it was scrubbed
    with pytest.raises(ProviderError) as caught:
        await traffic.set_weight(50, reason="step")
    assert "exited 3" in str(caught.value)
    assert_clean(exception_texts(caught.value), "command error")
    assert_clean(repr(traffic.last_run), "the last command run")


# --------------------------------------------------------------------------- TUI


async def test_the_console_shows_no_secret_with_every_provider_failing(
    tmp_path: Path, secret_env: dict[str, str], echo: EchoServer, denier: EchoServer,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    """Pilot on the real engine and real providers: metrics healthy at first (so the
    keys reach the deploy hook), then answering 500 with the headers quoted; the flag
    vendor says 401 quoting them; the hook prints its secrets and fails at 50%."""
    from textual.widgets import Input
    from textual.worker import WorkerCancelled

    from relconsole.assembly import open_session
    from relconsole.tui.app import ReleaseApp

    caplog.set_level("DEBUG")
    echo.content = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [time.time(), "0"]}]}}
    cfg = load_config(write_config(tmp_path, metrics_url=echo.url, flags_url=denier.url))
    state = tmp_path / "state"
    clock = FastClock()
    session = open_session(cfg, clock=clock, state=state)
    await session.engine.attach()
    app = ReleaseApp(session.engine, theme="dark", start_engine=False)
    screens: list[str] = []

    async def settle(pilot: Any, ticks: int = 1) -> None:
        for _ in range(ticks):
            clock.advance(0.2)
            await asyncio.wait_for(session.engine.tick(), 10)
            await pilot.pause()
        if len(app.screen_stack) == 1:  # else a worker waits for the open dialog
            with contextlib.suppress(WorkerCancelled):
                await asyncio.wait_for(app.workers.wait_for_complete(), 10)
        await pilot.pause()

    async def shoot(pilot: Any, label: str) -> None:
        await settle(pilot)
        svg = app.export_screenshot()
        # The SVG as exported, and its text as a human reads it (one span per style run).
        text = html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")
        screens.append(f"--- {label}\n{svg}\n{text}")

    async def type_text(pilot: Any, text: str) -> None:
        await pilot.press(*["space" if c == " " else c for c in text])

    async def answer(pilot: Any, text: str) -> None:
        """Type a reason if the dialog asks for one, then confirm."""
        if isinstance(app.focused, Input):
            await type_text(pilot, text)
        await pilot.press("enter")

    try:
        async with app.run_test(size=(140, 45)) as pilot:
            await shoot(pilot, "start")
            for label in ("advance 10%", "advance 20%"):
                await pilot.press("a")
                await shoot(pilot, f"{label} dialog")
                if len(app.screen_stack) > 1:
                    await answer(pilot, "go")
                await shoot(pilot, label)
            await pilot.press("P")  # promote: the hook fails, quoting its secrets
            await shoot(pilot, "promote dialog")
            await pilot.press("enter")  # the reason is optional
            await shoot(pilot, "promote failed")
            await pilot.press("k")  # kill the selected flag: the vendor says 401
            await shoot(pilot, "kill dialog")
            if len(app.screen_stack) > 1:
                await answer(pilot, "spike")
            await shoot(pilot, "kill refused")
            echo.content = None  # Prometheus now fails, quoting the headers
            await shoot(pilot, "metrics failing")
            await pilot.press("r")
            await shoot(pilot, "rollback dialog")
            await answer(pilot, "bad")
            await shoot(pilot, "rolled back")
            await pilot.press("question_mark")
            await shoot(pilot, "help")
            await pilot.press("escape")
            await pilot.press("ctrl+p")
            await shoot(pilot, "palette")
            await pilot.press("escape")
            snap = session.engine.snapshot()
            problems = [p.message for p in snap.problems]
            gates = [g.reason for g in snap.gates]
    finally:
        await session.close()
    everything = "\n".join(screens)
    if os.environ.get("RELC_T_SHOW"):
        print("\n".join(s.split("</svg>")[-1] for s in screens))
    # The screens and the engine really carry the failures we provoked.
    assert "exited 3" in everything
    assert "401" in everything or "rejected" in everything
    assert any("HTTP 500" in g for g in gates), gates
    assert seen_secret(echo, "RELC_T_PROM_TOKEN") and seen_secret(denier, "RELC_T_FLAGS_TOKEN")
    for text in screens:
        assert_clean(text, text.splitlines()[0])
    assert_clean("\n".join(problems + gates), "engine problems")
    captured = capsys.readouterr()
    assert_clean(captured.out + captured.err, "captured output")
    assert_clean(caplog.text, "log records")
    assert assert_state_clean(state) >= 1


# --------------------------------------------------------------------------- TLS


async def test_every_http_provider_verifies_tls_by_default_and_says_how_to_trust_a_ca(
    tmp_path: Path, tls_echo: EchoServer, certificate: tuple[Path, Path]
) -> None:
    cert, _ = certificate
    token = SECRETS["RELC_T_FLAGS_TOKEN"]
    for vendor in VENDORS:
        provider = build("flags", vendor_settings(vendor, tls_echo.url, token), tmp_path)
        with pytest.raises(ProviderError) as caught:
            await provider.list_flags()
        await provider.close()
        message = str(caught.value)
        assert "ca_file" in message and "TLS" in message, message
        assert_clean(exception_texts(caught.value), f"{vendor} TLS error")
        # With the CA named, the same server is reached (and answers 500).
        trusted = build("flags", vendor_settings(vendor, tls_echo.url, token,
                                                 ca_file=str(cert)), tmp_path)
        with pytest.raises(ProviderError, match="HTTP 500"):
            await trusted.list_flags()
        await trusted.close()

    metric = METRIC
    prom = build("metrics", prometheus_settings(tls_echo.url, "bearer"), tmp_path)
    problem = (await prom.sample([metric]))["error_rate"].canary.problem or ""
    await prom.close()
    assert "TLS" in problem and "ca_file" in problem, problem
    assert_clean(problem, "prometheus TLS problem")
    trusted = build("metrics", prometheus_settings(tls_echo.url, "bearer", ca_file=str(cert)),
                    tmp_path)
    problem = (await trusted.sample([metric]))["error_rate"].canary.problem or ""
    await trusted.close()
    assert "HTTP 500" in problem, problem
    # Nothing was accepted without verification: only the trusted clients got through.
    assert len(tls_echo.seen) == len(VENDORS) + 2  # one per vendor, canary + baseline


# --------------------------------------------------------------------------- keyring


HANGING_BACKEND = """\
import time
from keyring.backend import KeyringBackend

class Hanging(KeyringBackend):
    priority = 1

    def get_password(self, service, username):
        time.sleep(60)  # a locked Secret Service waiting for a prompt nobody answers

    def set_password(self, service, username, password):
        raise NotImplementedError

    def delete_password(self, service, username):
        raise NotImplementedError
"""


@pytest.mark.parametrize("backend", ["fail", "hang"])
def test_a_broken_keyring_gives_a_clear_message_and_the_env_fallback_quickly(
    tmp_path: Path, backend: str
) -> None:
    config = write_config(tmp_path, metrics_url="http://127.0.0.1:9",
                          flags_url="http://127.0.0.1:9")
    text = config.read_text().replace("'env:RELC_T_FLAGS_TOKEN'", "'keyring:relconsole/flags'")
    config.write_text(text)
    env = cli_env(tmp_path, tmp_path / "state")
    if backend == "hang":
        (tmp_path / "hanging_keyring.py").write_text(HANGING_BACKEND)
        env["PYTHONPATH"] = str(tmp_path)
        env["PYTHON_KEYRING_BACKEND"] = "hanging_keyring.Hanging"
    started = time.monotonic()
    ran = cli("check", config=config, env=env)
    elapsed = time.monotonic() - started
    assert ran.code == 2, ran
    assert_run_clean(ran)
    message = ran.err.strip()
    assert message.count("\n") == 0, message  # one line, no traceback
    assert "providers.flags.token" in message
    if backend == "fail":
        assert "no keyring backend" in message
        assert elapsed < 5
    else:
        assert "did not answer within 3s" in message
        assert elapsed < 8  # the 3 s keyring timeout, plus start-up
    assert "env:RELCONSOLE_UNLEASH_TOKEN" in message  # what to write instead

    # And the fallback it names works: the same config with env: loads.
    config.write_text(text.replace("'keyring:relconsole/flags'", "'env:RELCONSOLE_UNLEASH_TOKEN'"))
    env["RELCONSOLE_UNLEASH_TOKEN"] = SECRETS["RELC_T_FLAGS_TOKEN"]
    with contextlib.suppress(KeyError):
        del env["PYTHON_KEYRING_BACKEND"]
    ran = cli("check", config=config, env=env)
    assert "config ok" in ran.out, ran
    assert_run_clean(ran)


def test_config_errors_about_a_secret_never_quote_it(
    tmp_path: Path, secret_env: dict[str, str]
) -> None:
    """A secret put where no secret belongs is refused without quoting its value."""
    config = write_config(tmp_path, metrics_url="http://127.0.0.1:9",
                          flags_url="http://127.0.0.1:9")
    text = config.read_text().replace("project: default", "project: 'env:RELC_T_FLAGS_TOKEN'")
    text = text.replace("type: prometheus\n    url: http://127.0.0.1:9",
                        "type: prometheus\n    url: 'env:RELC_T_PROM_TOKEN'")
    config.write_text(text)
    cfg = load_config(config)
    from relconsole.assembly import build_providers

    with pytest.raises(ConfigError) as caught:
        build_providers(cfg, FastClock(), state=tmp_path / "state")
    assert "providers.metrics" in str(caught.value)
    assert_clean(exception_texts(caught.value), "config error")


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_ca_file_that_is_no_certificate_is_a_clear_provider_error(
    tmp_path: Path, vendor: str
) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text(f"not a certificate {TOKEN}\n")
    with pytest.raises(ProviderError, match="holds no PEM certificate"):
        build("flags", vendor_settings(vendor, "https://127.0.0.1:9", "t0ken",
                                       ca_file=str(bogus)), tmp_path)
