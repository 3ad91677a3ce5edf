"""A whole release on an Argo Rollout, through the engine, against the FAKE API server.

What a new user does with a kubeconfig: `relconsole run -c rollout.yaml`, see the Rollout's
steps, press `a` to promote past its pause, `r` to abort with a reason, and find that
reason on the cluster (`kubectl describe rollout` shows the Rollout's Events). Also: two
consoles meet one driver through the Lease, `status --json` reports the controller, and
an API server that goes away pauses the release with a journalled reason.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relconsole.assembly import open_session
from relconsole.clock import FastClock
from relconsole.config import load_config
from relconsole.model import Actor, Mode, Phase
from tests.fake_kube import ROLLOUTS, FakeKube
from tests.test_argo_provider import (
    NS,
    TOKEN,
    deploy,
    events_for,
    last_action,
    rollout,
    write_kubeconfig,
)

ALICE = Actor(user="alice", host="bastion-1")
BOB = Actor(user="bob", host="bastion-2")
STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50},
                               {"pause": {}}]


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RELCONSOLE_STATE_DIR", str(tmp_path / "state"))
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    server = FakeKube(token=TOKEN, user="alice", workloads=True)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def config(kube: FakeKube, tmp_path: Path) -> Path:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url)
    path = tmp_path / "rollout.yaml"
    path.write_text(f"""\
release:
  service: web
  version: "2"
  environment: production
  auto_advance: false
  poll_interval: 1s
providers:
  traffic: {{type: argo-rollouts, rollout: web, namespace: {NS}, kubeconfig: {kubeconfig}}}
""")
    return path


async def ticks(engine: Any, kube: FakeKube, n: int = 1) -> None:
    # The fake's controller runs on its own (start_controller), as Argo does; the
    # watch delivers what it wrote.
    for _ in range(n):
        await asyncio.sleep(0.05)
        await engine.tick()


async def until(engine: Any, kube: FakeKube, done: Any, tries: int = 60) -> None:
    for _ in range(tries):
        if done(engine.snapshot()):
            return
        await ticks(engine, kube)
    raise AssertionError(f"not reached; controller says {engine.snapshot().controller}")


async def test_promote_then_abort_with_a_reason_that_kubectl_describe_shows(
    kube: FakeKube, config: Path,
) -> None:
    deploy(kube, rollout(steps=STEPS), passes=2)
    kube.start_controller(interval=0.02)
    cfg = load_config(config)
    session = open_session(cfg, clock=FastClock(), actor=ALICE)
    engine = session.engine
    try:
        assert engine.mode is Mode.DRIVE
        await engine.attach()
        await until(engine, kube, lambda s: s.controller is not None and s.controller.waiting)
        snap = engine.snapshot()
        c = snap.controller
        assert c is not None
        # The Rollout's steps are the plan on screen, as the plugin counts them.
        assert [s.text for s in c.plan] == [
            "set weight 20%", "pause (until promoted)", "set weight 50%",
            "pause (until promoted)"]
        assert (c.phase, c.message, c.step) == ("Paused", "CanaryPauseStep", 1)
        assert snap.step_label == "step 1/4" and snap.weight == 20

        result = await engine.advance("canary looks fine at 20%")
        assert result.ok, result.message
        await until(engine, kube, lambda s: s.controller is not None and s.controller.step == 3)
        assert engine.snapshot().weight == 50

        result = await engine.rollback("p99 doubled on the canary")
        assert result.ok, result.message
        assert engine.phase is Phase.ROLLED_BACK
        c = engine.snapshot().controller
        assert c is not None and c.aborted and c.message.startswith("RolloutAborted")
        assert (c.set_weight, c.actual_weight) == (0, 0)
    finally:
        await session.close()
    # What `kubectl describe rollout web` lists under Events, and the annotation.
    (advance,) = events_for(kube, "RelconsoleAdvance")
    assert advance["message"].startswith("advance by alice on bastion-1: canary looks fine")
    (abort,) = events_for(kube, "RelconsoleAbort")
    assert abort["type"] == "Warning"
    assert abort["message"].startswith("abort by alice on bastion-1: p99 doubled on the canary")
    assert last_action(kube)["reason"] == "p99 doubled on the canary"
    intents = [(r["intent"], r["outcome"]) for r in engine.journal.records()]
    assert ("rollback", "verified") in intents


async def test_two_consoles_on_one_rollout_meet_one_driver(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(steps=STEPS), passes=2)
    cfg = load_config(config)
    first = open_session(cfg, clock=FastClock(), actor=ALICE)
    # Another bastion: its own state folder, so only the Lease on the cluster is shared.
    second = open_session(cfg, clock=FastClock(), actor=BOB, state=config.parent / "other")
    try:
        assert first.engine.mode is Mode.DRIVE
        assert second.engine.mode is Mode.WATCH
        assert "alice@bastion-1" in second.watch_reason
        lease = kube.get_object(*_lease(kube))
        assert lease is not None and lease["spec"]["holderIdentity"].startswith("alice@bastion-1/")
    finally:
        await first.close()
        await second.close()


def _lease(kube: FakeKube) -> tuple[Any, str, str]:
    from tests.fake_kube import LEASES

    return LEASES, NS, "relconsole-web"


async def test_an_api_server_that_goes_away_pauses_the_release_and_is_journalled(
    kube: FakeKube, config: Path,
) -> None:
    deploy(kube, rollout(steps=STEPS), passes=2)
    kube.start_controller(interval=0.02)
    session = open_session(load_config(config), clock=FastClock(), actor=ALICE)
    engine = session.engine
    try:
        await engine.attach()
        await until(engine, kube, lambda s: s.controller is not None and s.controller.waiting)
        kube.forbid("*", "rollouts")  # every read refused from here on
        kube.drop_watches()
        for _ in range(12):
            await asyncio.sleep(0.05)
            await engine.tick()
            if engine.phase is Phase.PAUSED:
                break
        assert engine.phase is Phase.PAUSED
        reason = engine.snapshot().pause_reason
        assert "no traffic read" in reason and "argo-rollouts: 403 forbidden" in reason
        records = engine.journal.records()
        problem = [r for r in records if r["intent"] == "provider"]
        assert problem and problem[0]["data"]["source"] == "traffic"
        assert any(r["intent"] == "pause" for r in records)
    finally:
        await session.close()


def test_status_json_has_the_controller(kube: FakeKube, config: Path, tmp_path: Path) -> None:
    deploy(kube, rollout(steps=STEPS), passes=3)
    ro = kube.get_object(ROLLOUTS, NS, "web")
    assert ro is not None
    done = subprocess.run(
        [sys.executable, "-m", "relconsole", "status", "-c", str(config), "--json"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["controller"] == {"phase": "Paused", "message": "CanaryPauseStep", "step": 1,
                                 "steps": 4, "set_weight": 20, "actual_weight": 20}
    assert out["weight"] == 20


def test_release_steps_that_disagree_with_the_rollout_are_refused_at_start(
    kube: FakeKube, config: Path,
) -> None:
    deploy(kube, rollout(steps=STEPS), passes=2)
    text = config.read_text().replace("  auto_advance: false",
                                      "  steps: [{weight: 10}, {weight: 100}]\n"
                                      "  auto_advance: false")
    config.write_text(text)
    done = subprocess.run([sys.executable, "-m", "relconsole", "status", "-c", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert ("release.steps (10%, 100%) disagree with the plan of rollout shop/web "
            "(20%, 50%, 100%)") in done.stderr


def _status_with(config: Path, release_lines: str) -> subprocess.CompletedProcess[str]:
    text = config.read_text().replace("  auto_advance: false",
                                      release_lines + "  auto_advance: false")
    config.write_text(text)
    return subprocess.run([sys.executable, "-m", "relconsole", "status", "-c", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_a_shadow_release_on_a_rollout_that_mirrors_nothing_is_refused(
    kube: FakeKube, config: Path,
) -> None:
    deploy(kube, rollout(steps=STEPS), passes=2)
    done = _status_with(config, "  strategy: shadow\n")
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    assert ("release.strategy: strategy shadow, but rollout shop/web has no setMirrorRoute "
            "step: it would run as a plain canary") in done.stderr


def test_a_shadow_release_on_a_rollout_with_mirror_steps_is_accepted(
    kube: FakeKube, config: Path,
) -> None:
    mirrored = [{"setMirrorRoute": {"name": "m", "percentage": 20,
                                    "match": [{"path": {"prefix": "/"}}]}},
                {"pause": {}}, *STEPS]
    body = rollout(steps=mirrored)
    body["spec"]["strategy"]["canary"]["trafficRouting"]["managedRoutes"] = [{"name": "m"}]
    deploy(kube, body, passes=2)
    done = _status_with(config, "  strategy: shadow\n")
    assert done.returncode == 0, done.stderr


def test_release_strategy_must_be_the_rollouts_own(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(steps=STEPS), passes=2)
    done = _status_with(config, "  strategy: blue-green\n")
    assert done.returncode == 2
    assert ("release.strategy: release.strategy is blue-green, but rollout shop/web runs a "
            "canary strategy") in done.stderr
