"""Notifications, against real local HTTP receivers: one that answers, one that hangs,
one that refuses (a closed port) and one that answers 500 until it is mended."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from relconsole.assembly import Session, build_providers, demo_config, open_session
from relconsole.clock import FastClock
from relconsole.config import ConfigError, LoadedConfig, load_config
from relconsole.model import Actor, Mode, Phase
from relconsole.notify.announce import announce
from relconsole.notify.bridge import NotifyBridge
from relconsole.notify.delivery import Notifier, Outbox
from relconsole.notify.senders import Notice, Target
from relconsole.secrets import Secret
from tests.helpers import run_until, terminal

HMAC_SECRET = "hmac-s3cret-value-9f2c"
AUTH_SECRET = "Bearer auth-s3cret-token-77aa"
DASHBOARD = "https://grafana.example.com/d/checkout?var-version={{version}}"


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request it gets."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode  # ok | hang | fail (500 until mode is set to ok)
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()  # lets hanging handlers go at teardown
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append({"method": "POST", "path": self.path,
                                          "headers": dict(self.headers.items()), "body": body})
                if receiver.mode == "hang":
                    receiver.release.wait(60)
                    return
                if receiver.mode == "fail":
                    # A proxy that echoes what it got: the echo must be scrubbed.
                    text = f"upstream broke on {self.path} {self.headers.get('Authorization')}"
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text.encode())
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0/B0/path-s3cret"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in list(self.requests)]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[[str], Receiver]]:
    made: list[Receiver] = []

    def make(mode: str = "ok") -> Receiver:
        made.append(Receiver(mode))
        return made[-1]

    yield make
    for r in made:
        r.stop()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {"index": extra.pop("index", 0), "type": extra.pop("type", "webhook"), "url": url,
            "headers": {}, "hmac_secret": None, "events": None, "timeout": 5.0, **extra}


def with_notify(cfg: LoadedConfig, *targets: dict[str, Any]) -> LoadedConfig:
    plan = dataclasses.replace(cfg.plan, dashboard=DASHBOARD)
    return dataclasses.replace(cfg, plan=plan, notify=list(targets))


async def until(done: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Let the loop and the delivery threads run until `done()`; fail after `limit`."""
    end = time.monotonic() + limit
    while not done():
        if time.monotonic() > end:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.02)


def journal_text(session: Session) -> str:
    return session.engine.journal.path.read_text()


def verifies(request: dict[str, Any], secret: str) -> bool:
    stamp = request["headers"]["X-Relconsole-Timestamp"]
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + request["body"], hashlib.sha256)
    return hmac.compare_digest(request["headers"]["X-Relconsole-Signature"],
                               "sha256=" + mac.hexdigest())


# --------------------------------------------------------------------------- a whole run


async def test_bad_canary_run_reaches_the_receiver_in_order_while_a_hanging_one_delays_nothing(
    tmp_path: Path, receivers: Callable[[str], Receiver]
) -> None:
    good, hanging = receivers("ok"), receivers("hang")
    cfg = with_notify(
        demo_config("bad-canary"),
        webhook(good.url, index=0, hmac_secret=Secret(HMAC_SECRET, "env:HOOK_SECRET"),
                headers={"Authorization": Secret(AUTH_SECRET, "env:HOOK_AUTH"),
                         "X-Team": "payments"}),
        webhook(hanging.url, index=1, timeout=30.0),
    )
    session = open_session(cfg, clock=FastClock(), state=tmp_path)
    assert session.notify is not None
    engine = session.engine
    await engine.attach()
    await run_until(session, terminal)
    assert engine.phase is Phase.ROLLED_BACK
    # The release went all the way while the hanging receiver had not answered once:
    # everything for it is still waiting, none of it was waited for.
    label = f"notify[1] webhook (127.0.0.1:{hanging.server.server_address[1]})"
    stuck = session.notify.stats()[label]
    assert stuck.sent == 0 and stuck.waiting == 3
    await until(lambda: len(good.requests) >= 3, "the good receiver's three notices")

    bodies = good.bodies()
    assert [b["event"] for b in bodies] == ["started", "step", "rolled_back"]
    steps = [(r["before"]["step"], r["after"]["step"]) for r in engine.journal.records()
             if r["intent"] == "advance" and r.get("outcome") == "verified"]
    assert [b["step"]["number"] for b in bodies[:2]] == [after for _, after in steps]
    assert [b["step"]["weight"] for b in bodies[:2]] == [1, 10]
    for body in bodies:
        assert body["schema"] == "relconsole.notify/v1"
        assert body["release"]["service"] == cfg.plan.service
        assert body["release"]["version"] == cfg.plan.version
        assert body["release"]["environment"] == cfg.plan.environment
        assert body["release"]["dashboard"].endswith(f"var-version={cfg.plan.version}")
        assert body["who"].startswith("engine (for ")
    rolled = bodies[-1]
    assert rolled["phase"] == "rolled_back" and "error_rate" in rolled["why"]
    gate = next(g for g in rolled["gates"] if g["gate"] == "error_rate")
    assert gate["verdict"] == "fail" and gate["canary"] > 0.01 and gate["baseline"] is not None
    for request in good.requests:
        assert request["method"] == "POST" and request["path"] == "/hooks/T0/B0/path-s3cret"
        assert request["headers"]["Authorization"] == AUTH_SECRET
        assert request["headers"]["X-Team"] == "payments"
        assert request["headers"]["X-Relconsole-Event"] == json.loads(request["body"])["event"]
        assert verifies(request, HMAC_SECRET)
        assert not verifies(request, "another secret")
    # Each notice has one id, the same on any retry: the receiver can de-duplicate.
    assert len({b["id"] for b in bodies}) == 3

    await session.close()
    # What the hanging receiver never took is said at exit, not lost silently.
    lost = [r for r in engine.journal.records() if r.get("outcome") == "not delivered"]
    assert lost and "3 not delivered at exit" in lost[0]["reason"]
    text = journal_text(session)
    for secret in (HMAC_SECRET, AUTH_SECRET, "path-s3cret"):
        assert secret not in text


async def test_slack_gets_a_block_kit_message_with_a_dashboard_button(
    tmp_path: Path, receivers: Callable[[str], Receiver]
) -> None:
    slack = receivers("ok")
    cfg = with_notify(demo_config("bad-canary"),
                      webhook(slack.url, type="slack", events=("rolled_back",)))
    session = open_session(cfg, clock=FastClock(), state=tmp_path)
    await session.engine.attach()
    await run_until(session, terminal)
    await until(lambda: len(slack.requests) == 1, "the Slack message")
    await session.close()
    assert len(slack.requests) == 1  # events: [rolled_back] only
    body = slack.bodies()[0]
    assert "Rolled back" in body["text"] and cfg.plan.service in body["text"]
    header, fields, *rest = body["blocks"]
    assert header == {"type": "header", "text": {
        "type": "plain_text", "emoji": True,
        "text": f"{cfg.plan.service} {cfg.plan.version} · {cfg.plan.environment}"}}
    assert fields["type"] == "section"
    said = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in fields["fields"]}
    assert said["*Event*"] == "Rolled back" and said["*Weight*"] == "0%"
    assert said["*Who*"].startswith("engine (for ")
    assert all(f["type"] == "mrkdwn" for f in fields["fields"]) and len(fields["fields"]) <= 10
    texts = [b["text"]["text"] for b in rest if b["type"] == "section"]
    assert any(t.startswith("*Why*") and "error_rate" in t for t in texts)
    gates = next(t for t in texts if t.startswith("*Gates*"))
    assert "error_rate: canary" in gates and "FAIL" in gates and "baseline" in gates
    assert any(b["type"] == "context" for b in rest)
    actions = next(b for b in rest if b["type"] == "actions")
    button = actions["elements"][0]
    assert button["type"] == "button" and button["text"]["type"] == "plain_text"
    assert button["url"] == f"https://grafana.example.com/d/checkout?var-version={cfg.plan.version}"


# --------------------------------------------------------------------------- failing targets


async def test_a_failing_target_is_a_problem_on_screen_and_in_the_journal_then_recovers(
    tmp_path: Path, receivers: Callable[[str], Receiver]
) -> None:
    broken = receivers("fail")
    cfg = demo_config("healthy", auto_advance=False)
    session = open_session(cfg, clock=FastClock(), state=tmp_path)
    engine = session.engine
    target = Target.from_settings(webhook(
        broken.url, headers={"Authorization": Secret(AUTH_SECRET, "env:HOOK_AUTH")}))
    bridge = NotifyBridge(engine, [target], notifier=functools.partial(
        Notifier, backoff_max=0.05))
    bridge.start()
    await engine.attach()
    await engine.advance("first step", Actor("alice", "bastion-1"))

    await until(lambda: engine.snapshot().problem("notify") is not None, "the problem")
    problem = engine.snapshot().problem("notify")
    assert problem is not None
    assert problem.message.startswith(f"{target.label}: HTTP 500")
    assert "1 waiting" in problem.message
    for secret in (AUTH_SECRET, "path-s3cret"):
        assert secret not in problem.message  # the receiver echoed both: scrubbed
    journalled = [r for r in engine.journal.records() if r["intent"] == "provider"
                  and r["data"].get("source") == "notify"]
    assert [r["outcome"] for r in journalled] == ["problem"]
    assert journalled[0]["data"]["target"] == target.label

    broken.mode = "ok"
    await until(lambda: engine.snapshot().problem("notify") is None, "the recovery")
    assert broken.bodies()[-1]["event"] == "started"
    assert broken.bodies()[-1]["why"] == "first step"
    assert broken.bodies()[-1]["who"] == "alice@bastion-1"
    outcomes = [r["outcome"] for r in engine.journal.records() if r["intent"] == "provider"
                and r["data"].get("source") == "notify"]
    assert outcomes == ["problem", "recovered"]
    assert bridge.stats()[target.label].sent == 1
    bridge.close()
    await session.close()
    for secret in (AUTH_SECRET, "path-s3cret"):
        assert secret not in journal_text(session)


async def test_a_refusing_target_is_named_with_its_reason(tmp_path: Path) -> None:
    cfg = demo_config("healthy", auto_advance=False)
    session = open_session(cfg, clock=FastClock(), state=tmp_path)
    engine = session.engine
    target = Target.from_settings(webhook(closed_port_url()))
    bridge = NotifyBridge(engine, [target], notifier=functools.partial(
        Notifier, backoff_max=0.05))
    bridge.start()
    await engine.attach()
    await engine.pause("hold on", Actor("alice", "bastion-1"))
    await until(lambda: engine.snapshot().problem("notify") is not None, "the problem")
    problem = engine.snapshot().problem("notify")
    assert problem is not None and "connection refused" in problem.message
    lost = bridge.close(timeout=0.2)
    assert lost and "1 not delivered at exit" in lost[0]
    await session.close()


def test_a_full_queue_drops_the_oldest_and_says_so(receivers: Callable[[str], Receiver]) -> None:
    hanging = receivers("hang")
    said: list[str | None] = []
    box = Outbox(Target.from_settings(webhook(hanging.url, timeout=30.0)),
                 lambda _label, message: said.append(message), limit=2)

    def notice(n: int) -> Notice:
        return Notice(event="step", at=0.0, release="r", service="s", version="v",
                      environment="e", phase="progressing", step=n, steps=5,
                      step_label=f"step {n}/5", weight=n * 10, who="engine", id=str(n))

    box.put(notice(1))
    deadline = time.monotonic() + 10
    while not hanging.requests and time.monotonic() < deadline:
        time.sleep(0.01)  # the first is in flight, hanging
    for n in range(2, 6):
        box.put(notice(n))
    stats = box.stats()
    assert stats.dropped == 2 and stats.waiting == 3  # 1 in flight, 4 and 5 queued
    assert said and said[-1] is not None and "2 dropped (queue full)" in said[-1]
    lost = box.close(timeout=0.1)
    assert lost is not None and "2 dropped (queue full)" in lost


# --------------------------------------------------------------------------- who speaks


async def test_a_watch_only_console_sends_nothing_until_it_takes_the_lease(
    tmp_path: Path, receivers: Callable[[str], Receiver]
) -> None:
    receiver = receivers("ok")
    clock = FastClock()
    plain = demo_config("healthy", auto_advance=True)
    providers = build_providers(plain, clock, {"state_dir": tmp_path})
    driver = open_session(plain, clock=clock, state=tmp_path, providers=providers)
    watcher = open_session(with_notify(plain, webhook(receiver.url)), clock=clock,
                           state=tmp_path, providers=providers,
                           actor=Actor("bob", "bastion-2"))
    assert driver.engine.mode is Mode.DRIVE and watcher.engine.mode is Mode.WATCH
    await driver.engine.attach()
    await watcher.engine.attach()
    for _ in range(40):
        await clock.sleep(driver.engine.plan.poll_interval)
        await driver.engine.tick()
        await watcher.engine.tick()
    assert driver.engine.snapshot().step_index >= 1  # the driver took steps; the watcher saw
    assert watcher.notify is not None
    assert all(s.sent == 0 and s.waiting == 0 for s in watcher.notify.stats().values())
    assert receiver.requests == []

    await driver.close()
    assert await watcher.take("alice went home") is None
    await watcher.engine.pause("bob holds it", Actor("bob", "bastion-2"))
    await until(lambda: len(receiver.requests) == 1, "the new driver's pause")
    body = receiver.bodies()[0]
    assert body["event"] == "paused" and body["why"] == "bob holds it"
    assert body["who"] == "bob@bastion-2"
    await watcher.close()


# --------------------------------------------------------------------------- announce


def test_announce_sends_the_plan(receivers: Callable[[str], Receiver]) -> None:
    receiver = receivers("ok")
    cfg = demo_config("healthy")
    lost = announce([webhook(receiver.url)], cfg.plan, "## Deployment Plan: x", who="alice")
    assert lost == []
    body = receiver.bodies()[0]
    assert body["event"] == "announced" and body["detail"]["plan"] == "## Deployment Plan: x"
    assert body["who"] == "alice" and body["step"]["number"] == 0


def test_plan_announce_sends_the_plan_from_the_command_line(
    receivers: Callable[[str], Receiver], tmp_path: Path,
) -> None:
    receiver = receivers("ok")
    path = tmp_path / "relconsole.yaml"
    path.write_text(BASE + f"notify: [{{type: webhook, url: '{receiver.url}'}}]\n")
    done = subprocess.run(
        [sys.executable, "-m", "relconsole", "plan", "-c", str(path), "--announce"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## Deployment Plan: api 1.0.0")
    (body,) = receiver.bodies()
    assert body["event"] == "announced"
    assert body["detail"]["plan"] == done.stdout


def test_plan_announce_without_targets_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "relconsole.yaml"
    path.write_text(BASE)
    done = subprocess.run(
        [sys.executable, "-m", "relconsole", "plan", "-c", str(path), "--announce"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 2
    assert "no notify: targets" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- config

BASE = """\
release: {service: api, version: 1.0.0, environment: staging, steps: [{weight: 100}]}
providers:
  traffic: {type: sim}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relconsole.yaml"
    path.write_text(text)
    return path


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def test_providers_notify_is_refused_with_a_pointer_to_notify(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, BASE + "  notify: {type: slack, webhook_url: x}\n"))
    assert err.key == "providers.notify" and err.line == 4
    assert "top-level" in str(err) and "notify: [{type: slack" in str(err)


def test_notify_entries_are_loaded_with_secrets_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://hooks.slack.com/services/T0/B0/s3cretpart"
    monkeypatch.setenv("RELCONSOLE_TEST_SLACK", url)
    monkeypatch.setenv("RELCONSOLE_TEST_HMAC", HMAC_SECRET)
    cfg = load_config(write(tmp_path, BASE + (
        "notify:\n"
        "  - {type: slack, url: 'env:RELCONSOLE_TEST_SLACK', events: [rolled_back]}\n"
        "  - {type: webhook, url: 'https://hooks.example.com/x', timeout: 2s,\n"
        "     hmac_secret: 'env:RELCONSOLE_TEST_HMAC', headers: {X-Key: 1234}}\n")))
    slack, hook = (Target.from_settings(s) for s in cfg.notify)
    assert isinstance(slack.url, Secret) and slack.address() == url
    assert slack.events == frozenset({"rolled_back"}) and slack.label == "notify[0] slack"
    assert hook.timeout == 2.0 and hook.headers == {"X-Key": "1234"}
    assert isinstance(hook.hmac_secret, Secret) and hook.label.endswith("(hooks.example.com)")
    assert url not in repr(cfg.notify) and HMAC_SECRET not in repr(cfg.notify)


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ("{type: slak, url: 'https://h.example/x'}", "notify[0].type", "did you mean 'slack'"),
        ("{type: webhook, url: 'https://h.example/x', events: [rolledback]}",
         "notify[0].events[0]", "did you mean 'rolled_back'"),
        ("{type: webhook, url: 'ftp://h.example/s3cretpart'}", "notify[0].url",
         "http:// or https://"),
        ("{type: slack, url: 'https://h.example/x', hmac_secret: s3cretpart}",
         "notify[0].hmac_secret", "do not check a signature"),
        ("{type: webhook, url: 'https://h.example/x', "
         "headers: {X-Relconsole-Signature: s3cretpart}}",
         "notify[0].headers.X-Relconsole-Signature", "written by relconsole"),
        ("{type: webhook, url: 'https://h.example/x', colour: red}", "notify[0].colour",
         "unknown key"),
    ],
)
def test_a_bad_notify_entry_gets_one_clear_message_that_quotes_no_value(
    tmp_path: Path, entry: str, key: str, words: str
) -> None:
    err = load_error(write(tmp_path, BASE + f"notify:\n  - {entry}\n"))
    assert err.key == key and err.line == 5
    assert words.lower() in str(err).lower()
    assert "s3cretpart" not in str(err)
