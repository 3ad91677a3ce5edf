"""Shadow traffic through the command provider: the `set_mirror` hook and its read-back.

What an operator would notice: a shadow release without a `set_mirror` hook is refused
naming the key; each step runs the hook that changes what differs (the mirror share first,
then the weight), with the share as one literal argument, and returns only once `status`
reads both back; a proxy that did not take the change is an error saying what status
reads; a rollback turns the mirror off even when status could not be read first. The hook
here is a small Python program (tests/data/mirror_hook.py) keeping the proxy's state in a
file; the last tests run `relconsole run --headless` on a shadow config against it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from relconsole.clock import FastClock
from relconsole.model import ReleasePlan, Route, Step
from relconsole.providers import registry
from relconsole.providers.base import BuildContext, ProviderError, RouteTraffic, routes
from relconsole.providers.command import CommandTraffic, parse_settings, parse_status
from tests.test_prometheus import FakePrometheus, vector

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]
HOOK = str(Path(__file__).parent / "data" / "mirror_hook.py")
VALUES = {"version": "2.0.0", "service": "shop", "environment": "staging"}


def hooks(**extra: Any) -> dict[str, Any]:
    return {
        "type": "command",
        "status": [PY, HOOK, "status"],
        "set_weight": [PY, HOOK, "set-weight", "{weight}"],
        "set_mirror": [PY, HOOK, "set-mirror", "{percent}"],
        **extra,
    }


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "proxy.json"
    monkeypatch.setenv("MIRROR_STATE", str(path))
    monkeypatch.delenv("MIRROR_HOOK_IGNORE", raising=False)
    return path


def make(**extra: Any) -> CommandTraffic:
    return CommandTraffic(parse_settings(hooks(**extra), call_timeout=5.0, strategy="shadow"),
                          dict(VALUES))


def calls(state: Path) -> list[list[str]]:
    log = Path(f"{state}.calls")
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def changes(state: Path, since: int = 0) -> list[list[str]]:
    """The calls that change the proxy (not the status reads), in order."""
    return [c for c in calls(state)[since:] if c[0] != "status"]


def proxy(state: Path) -> dict[str, int]:
    found = json.loads(state.read_text())
    assert isinstance(found, dict)
    return found


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "strategy", "message"), [
    ({"set_mirror": None}, "shadow", "'set_mirror' is required with release.strategy shadow"),
    ({}, "canary", "'set_mirror' is only used with release.strategy shadow (this release "
                   "is canary)"),
    ({"set_weight": [PY, HOOK, "set-weight", "{percent}"]}, "shadow",
     "set_weight[3]: {percent} is only known in set_mirror"),
    ({"status": [PY, HOOK, "status", "{percent}"]}, "shadow",
     "status[3]: {percent} is only known when changing traffic"),
    ({"set_mirror": [PY, HOOK, "set-mirror", "{precent}"]}, "shadow",
     "unknown placeholder {precent}"),
    ({"set_mirror": "proxyctl mirror {percent}"}, "shadow", "no shell is used"),
])
def test_bad_mirror_settings_are_refused(raw: dict[str, Any], strategy: str,
                                         message: str) -> None:
    settings = {k: v for k, v in hooks(**raw).items() if v is not None}
    with pytest.raises(ProviderError) as caught:
        parse_settings(settings, call_timeout=5.0, strategy=strategy)
    assert message in str(caught.value)
    assert str(caught.value).startswith("command: ")


def test_a_shadow_release_builds_a_provider_that_routes(state: Path) -> None:
    plan = ReleasePlan(service="shop", version="2.0.0", environment="staging",
                       strategy="shadow", steps=(Step(0, route=Route(mirror=20)), Step(100)))
    built = registry.build("traffic", hooks(), BuildContext(plan=plan, clock=FastClock()))
    assert isinstance(built, CommandTraffic) and built.mirrors
    assert isinstance(built, RouteTraffic) and routes(built)
    canary = ReleasePlan(service="shop", version="2.0.0", environment="staging",
                         strategy="canary", steps=(Step(100),))
    with pytest.raises(ProviderError, match="'set_mirror' is only used"):
        registry.build("traffic", hooks(), BuildContext(plan=canary, clock=FastClock()))


# --- status ---------------------------------------------------------------------------------


def test_status_carries_the_mirror_share() -> None:
    assert parse_status('{"canary_weight": 10, "mirror": 20}').route == Route(mirror=20)
    assert parse_status('{"canary_weight": 0, "mirror": 100.0}').route == Route(mirror=100)
    assert parse_status('{"canary_weight": 10}').route == Route()  # a canary's status


@pytest.mark.parametrize("bad", ["101", "-1", "true", "12.5", '"20"', "null"])
def test_a_bad_mirror_share_is_refused_like_a_bad_weight(bad: str) -> None:
    with pytest.raises(ProviderError, match=r"status mirror must be a whole number 0\.\.100"):
        parse_status(f'{{"canary_weight": 0, "mirror": {bad}}}')


def test_a_shadow_status_must_say_the_mirror_share() -> None:
    with pytest.raises(ProviderError, match=r'status printed no "mirror": N'):
        parse_status('{"canary_weight": 0}', mirror=True)


# --- set_route ------------------------------------------------------------------------------


async def test_each_step_changes_what_differs_mirror_first(state: Path) -> None:
    traffic = make()
    await traffic.set_route(0, Route(mirror=20), reason="shadow first")
    assert changes(state) == [["set-mirror", "20"]]  # the weight was 0 already
    assert proxy(state) == {"canary_weight": 0, "mirror": 20}
    live = await traffic.read()
    assert (live.canary_weight, live.route) == (0, Route(mirror=20))

    await traffic.set_route(0, Route(mirror=100), reason="all of it")
    await traffic.set_route(10, Route(mirror=100), reason="first users")
    await traffic.set_route(100, Route(mirror=100), reason="everyone")
    assert changes(state) == [["set-mirror", "20"], ["set-mirror", "100"],
                              ["set-weight", "10"], ["set-weight", "100"]]
    # Asked again for what is live: nothing runs but the read and the read-back.
    before = len(calls(state))
    await traffic.set_route(100, Route(mirror=100), reason="again")
    assert calls(state)[before:] == [["status"], ["status"]]


async def test_a_rollback_turns_the_mirror_off_then_the_weight(state: Path) -> None:
    traffic = make()
    await traffic.set_route(10, Route(mirror=50), reason="up")
    since = len(calls(state))
    await traffic.set_route(0, Route(), reason="shadow 5xx doubled")
    assert changes(state, since) == [["set-mirror", "0"], ["set-weight", "0"]]
    live = await traffic.read()
    assert (live.canary_weight, live.route) == (0, Route())


async def test_a_rollback_runs_both_hooks_when_status_cannot_be_read(state: Path) -> None:
    traffic = make()
    await traffic.set_route(0, Route(mirror=20), reason="up")
    Path(f"{state}.status-fails").touch()  # the read before the change fails, once
    since = len(calls(state))
    await traffic.set_route(0, Route(), reason="rollback")
    assert changes(state, since) == [["set-mirror", "0"], ["set-weight", "0"]]
    assert proxy(state) == {"canary_weight": 0, "mirror": 0}


async def test_a_proxy_that_did_not_take_the_mirror_is_an_error(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_HOOK_IGNORE", "set-mirror")
    traffic = make()
    with pytest.raises(ProviderError) as caught:
        await traffic.set_route(0, Route(mirror=20), reason="up")
    assert str(caught.value) == ("command: asked for mirror 20% and weight 0%, but status "
                                 "reads mirror 0% and weight 0%")


async def test_the_share_reaches_the_hook_as_one_argument_and_in_the_environment(
        state: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    script = tmp_path / "record.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, sys
        json.dump({{"argv": sys.argv[1:], "env": os.environ.get("RELCONSOLE_PERCENT")}},
                  open({str(seen)!r}, "w"))
        os.execv(sys.executable, [sys.executable, {HOOK!r}, "set-mirror", sys.argv[2]])
    """))
    traffic = make(set_mirror=[PY, str(script), "--mirror=canary@{percent}%", "{percent}",
                               "{reason}"])
    reason = "shadow; $(reboot) {weight}"
    await traffic.set_route(0, Route(mirror=35), reason=reason)
    recorded = json.loads(seen.read_text())
    assert recorded == {"argv": ["--mirror=canary@35%", "35", reason], "env": "35"}
    assert proxy(state)["mirror"] == 35


@pytest.mark.parametrize(("route", "message"), [
    (Route(cohorts=("beta-users",)), "cannot route cohort beta-users"),
    (Route(mirror=20, batches=1), "cannot route mirror 20% · 1 batch"),
])
async def test_cohorts_and_batches_are_not_its_to_route(state: Path, route: Route,
                                                        message: str) -> None:
    traffic = make()
    with pytest.raises(ProviderError, match=message):
        await traffic.set_route(10, route, reason="x")
    assert calls(state) == []  # refused before anything ran


async def test_out_of_range_shares_are_refused_before_anything_runs(state: Path) -> None:
    traffic = make()
    with pytest.raises(ProviderError, match=r"mirror 120% is outside 0\.\.100"):
        await traffic.set_route(0, Route(mirror=120), reason="x")
    with pytest.raises(ProviderError, match=r"weight 101 is outside 0\.\.100"):
        await traffic.set_route(101, Route(), reason="x")
    assert calls(state) == []


# --- a headless shadow release (needs the lead's strategy shadow in config and engine) -----


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    prom = FakePrometheus(answer=lambda path, q: (200, vector("0.001")))
    server = ThreadingHTTPServer(("127.0.0.1", 0), prom.handler())
    server.daemon_threads = True
    prom.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield prom
    server.shutdown()
    server.server_close()


def shadow_config(tmp_path: Path, prom_url: str, proxy_state: Path) -> Path:
    config = tmp_path / "shadow.yaml"
    py, hook = json.dumps(PY), json.dumps(HOOK)
    config.write_text(textwrap.dedent(f"""\
        release:
          service: shop
          version: 2.0.0
          environment: staging
          strategy: shadow
          steps:
            - {{mirror: 20, bake: 0.4s}}
            - {{mirror: 100, bake: 0.4s}}
            - {{weight: 10, bake: 0.4s}}
            - {{weight: 100}}
          auto_advance: true
          auto_rollback: true
          poll_interval: 0.1s
          call_timeout: 3s
          rollback: {{retry_max: 0.2s, give_up: 5s}}
        providers:
          metrics: {{type: prometheus, url: "{prom_url}", retries: 0, timeout: 0.5s}}
          traffic:
            type: command
            status: [{py}, {hook}, status]
            set_weight: [{py}, {hook}, set-weight, "{{weight}}"]
            set_mirror: [{py}, {hook}, set-mirror, "{{percent}}"]
            env: {{MIRROR_STATE: "{proxy_state}"}}
            timeout: 2s
        versions: {{canary: 2.0.0, baseline: 1.9.0}}
        metrics:
          error_rate: {{query: 'shop:error_ratio{{version="{{{{version}}}}"}}', unit: ratio}}
        gates:
          - {{metric: error_rate, max: 0.01}}
        """))
    return config


def headless(config: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RELCONSOLE_", "MIRROR_"))}
    env.update(RELCONSOLE_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", PYTHONUNBUFFERED="1")
    return subprocess.run([PY, "-m", "relconsole", "run", "--headless", "-c", str(config)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_a_headless_shadow_release_mirrors_then_weights(
        tmp_path: Path, prometheus: FakePrometheus) -> None:
    proxy_state = tmp_path / "proxy.json"
    ran = headless(shadow_config(tmp_path, prometheus.url, proxy_state), tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    done = changes(proxy_state)
    # The mirror comes on in two steps before any user reaches the canary, and goes off
    # with the promotion (everyone is on the new version: nothing left to copy to).
    assert done == [["set-mirror", "20"], ["set-mirror", "100"], ["set-weight", "10"],
                    ["set-mirror", "0"], ["set-weight", "100"]], done
    assert proxy(proxy_state)["canary_weight"] == 100
    assert proxy(proxy_state)["mirror"] == 0


def test_a_failing_shadow_is_rolled_back_with_the_mirror_off(
        tmp_path: Path, prometheus: FakePrometheus) -> None:
    # The shadow answers badly: its error ratio (its copies of requests) breaks the gate.
    prometheus.answer = lambda path, q: (
        200, vector("0.2" if '"2.0.0"' in q.get("query", "") else "0.001"))
    proxy_state = tmp_path / "proxy.json"
    ran = headless(shadow_config(tmp_path, prometheus.url, proxy_state), tmp_path)
    assert ran.returncode == 3, ran.stdout + ran.stderr
    done = changes(proxy_state)
    assert done == [["set-mirror", "20"], ["set-mirror", "0"]], done  # no user ever on it
    assert proxy(proxy_state) == {"canary_weight": 0, "mirror": 0}
