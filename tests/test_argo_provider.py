"""The argo-rollouts traffic provider against the FAKE Kubernetes API server.

What an operator would notice: what `read()` reports (as `kubectl argo rollouts get` would),
the exact requests each action sends (as the plugin sends them), the Event and annotation
that say who did it and why, and that the Rollout is watched rather than polled.
The fake's controller (`step_controller`, `start_controller`) plays Argo.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from relconsole.clock import FastClock
from relconsole.model import ReleasePlan
from relconsole.providers.argo.kube import KubeSettings, connect
from relconsole.providers.argo.provider import (
    ANNOTATION,
    ArgoRolloutsTraffic,
    build_traffic,
    parse_settings,
)
from relconsole.providers.base import BuildContext, ProviderError, StepController, owns_steps
from tests.fake_kube import (
    ANALYSISRUNS,
    ANALYSISTEMPLATES,
    CLUSTERANALYSISTEMPLATES,
    CORE_EVENTS,
    ROLLOUTS,
    FakeKube,
    LoggedRequest,
)

NS = "shop"
TOKEN = "kube-token-0123456789abcdef"
RO = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts"
WEB = f"{RO}/web"
EVENTS = f"/api/v1/namespaces/{NS}/events"
RS = f"/apis/apps/v1/namespaces/{NS}/replicasets"
MP = "application/merge-patch+json"
ACTOR = "alice@bastion-1"
NOW = datetime(2026, 8, 20, 10, 0, 0, 123456, tzinfo=UTC)

ROUTED_STEPS: list[dict[str, Any]] = [
    {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}},
    {"setWeight": 80}]

T = TypeVar("T")


# --- the cluster ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer kubeconfig, no cluster: each test writes the kubeconfig it needs."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def write_kubeconfig(path: Path, server: str, user: dict[str, Any] | None = None, *,
                     namespace: str | None = NS) -> Path:
    ctx: dict[str, Any] = {"cluster": "c1", "user": "sso-admin"}
    if namespace:
        ctx["namespace"] = namespace
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c1", "cluster": {"server": server}}],
        "users": [{"name": "sso-admin", "user": user if user is not None else {"token": TOKEN}}],
        "contexts": [{"name": "prod-eu", "context": ctx}],
        "current-context": "prod-eu"}))
    return path


def plan(call_timeout: float = 5.0) -> ReleasePlan:
    return ReleasePlan(service="web", version="2", environment="prod", strategy="canary",
                       steps=(), call_timeout=call_timeout)


def context(actor: str = ACTOR) -> BuildContext:
    return BuildContext(plan=plan(), clock=FastClock(), actor=actor)


def make(kubeconfig: Path, rollout: str = "web", **extra: Any) -> ArgoRolloutsTraffic:
    """The provider as build_traffic makes it, with a fixed clock for Events and a short
    grace for a refused watch."""
    raw = {"type": "argo-rollouts", "rollout": rollout, "kubeconfig": str(kubeconfig), **extra}
    settings = parse_settings(raw)
    conn = connect(KubeSettings(kubeconfig=settings.kubeconfig, context=settings.context,
                                namespace=settings.namespace, timeout=settings.timeout))
    return ArgoRolloutsTraffic(settings, conn, actor=ACTOR, now=lambda: NOW, watch_grace=0.2,
                               analysis_refresh=0.2)


@contextlib.asynccontextmanager
async def opened(provider: ArgoRolloutsTraffic) -> AsyncIterator[ArgoRolloutsTraffic]:
    try:
        yield provider
    finally:
        await provider.close()


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    server = FakeKube(token=TOKEN, user="alice", workloads=True)
    try:
        yield server
    finally:
        server.close()
        assert server.internal_errors == []


@pytest.fixture
def config(kube: FakeKube, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", kube.url)


# --- Rollouts on the fake ---------------------------------------------------------------------


def rollout(name: str = "web", *, steps: list[dict[str, Any]] | None = None, routed: bool = True,
            replicas: int = 5, image: str = "web:1") -> dict[str, Any]:
    canary: dict[str, Any] = {"canaryService": f"{name}-canary", "stableService": f"{name}-stable",
                              "steps": ROUTED_STEPS if steps is None else steps}
    if routed:
        canary["trafficRouting"] = {"nginx": {"stableIngress": name}}
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}},
                 "strategy": {"canary": canary}},
    }


def blue_green(name: str = "web", *, auto: bool = False, replicas: int = 3) -> dict[str, Any]:
    ro = rollout(name, replicas=replicas)
    ro["spec"]["strategy"] = {"blueGreen": {"activeService": f"{name}-active",
                                            "previewService": f"{name}-preview",
                                            "autoPromotionEnabled": auto}}
    return ro


def set_image(kube: FakeKube, image: str, name: str = "web") -> None:
    def change(ro: dict[str, Any]) -> None:
        ro["spec"]["template"]["spec"]["containers"][0]["image"] = image
        ro["metadata"]["generation"] = ro["metadata"].get("generation", 1) + 1
    kube.mutate(ROLLOUTS, NS, name, change)


def deploy(kube: FakeKube, body: dict[str, Any], *, passes: int) -> dict[str, Any]:
    """Seed `body`, let the controller make it stable, push web:2 and run `passes` passes."""
    kube.seed(ROLLOUTS, NS, body)
    kube.step_controller()
    set_image(kube, "web:2", body["metadata"]["name"])
    for _ in range(passes):
        kube.step_controller()
    ro = kube.get_object(ROLLOUTS, NS, body["metadata"]["name"])
    assert ro is not None
    return ro


def status(kube: FakeKube, name: str = "web") -> dict[str, Any]:
    ro = kube.get_object(ROLLOUTS, NS, name)
    assert ro is not None
    return dict(ro["status"])


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool],
                     *, timeout: float = 5.0) -> T:
    """Poll `probe` until `check` holds: the watch delivers asynchronously."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            value = await probe()
            if check(value):
                return value
        except ProviderError:
            if loop.time() > deadline:
                raise
        if loop.time() > deadline:
            raise AssertionError(f"never true; last value: {value!r}")
        await asyncio.sleep(0.02)


async def read_error(provider: ArgoRolloutsTraffic, *, timeout: float = 5.0) -> str:
    """The ProviderError a read gives, once the watch has noticed the fault."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            await provider.read()
        except ProviderError as err:
            text = str(err)
            assert "\n" not in text and "Traceback" not in text
            assert TOKEN not in text
            return text
        await asyncio.sleep(0.02)
    raise AssertionError("read() never failed")


def mutations(kube: FakeKube, since: int = 0) -> list[LoggedRequest]:
    """The requests that change something, and the promote family's GET, in order."""
    return [r for r in kube.requests[since:]
            if r.method in ("PATCH", "POST", "PUT", "DELETE")
            or (r.method == "GET" and r.path == WEB)]


def sent(r: LoggedRequest) -> tuple[str, str, str | None, Any]:
    return r.method, r.path, r.content_type, r.body


def events_for(kube: FakeKube, reason: str) -> list[dict[str, Any]]:
    return [e for e in kube.objects(CORE_EVENTS, NS) if e["reason"] == reason]


def last_action(kube: FakeKube) -> dict[str, Any]:
    ro = kube.get_object(ROLLOUTS, NS, "web")
    assert ro is not None
    record = json.loads(ro["metadata"]["annotations"][ANNOTATION])
    assert isinstance(record, dict)
    return record


def assert_audit(kube: FakeKube, index: int, action: str, reason: str, *, etype: str,
                 verified: bool = True) -> dict[str, Any]:
    """The Event POST and the annotation PATCH of one action, as sent and as stored."""
    reqs = mutations(kube, index)
    posts = [r for r in reqs if r.method == "POST"]
    assert len(posts) == 1 and posts[0].path == EVENTS
    assert posts[0].content_type == "application/json"
    event = posts[0].body
    ro = kube.get_object(ROLLOUTS, NS, "web")
    assert ro is not None
    verb = {"RelconsoleAdvance": "advance", "RelconsolePromote": "promote",
            "RelconsoleAbort": "abort", "RelconsolePause": "pause",
            "RelconsoleResume": "resume"}[action]
    assert event["reason"] == action and event["type"] == etype
    assert event["message"].startswith(f"{verb} by alice on bastion-1: {reason}")
    assert ("NOT VERIFIED" in event["message"]) is (not verified)
    assert event["involvedObject"] == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web",
        "namespace": NS, "uid": ro["metadata"]["uid"],
        "resourceVersion": event["involvedObject"]["resourceVersion"]}
    assert event["source"] == {"component": "relconsole", "host": "bastion-1"}
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-08-20T10:00:00Z"
    assert event["eventTime"] == "2026-08-20T10:00:00.123456Z"
    assert event["reportingComponent"] == "relconsole"
    assert event["reportingInstance"] == "bastion-1"
    assert event["action"] == verb.capitalize() and event["count"] == 1
    assert event["metadata"]["name"].startswith("web.")
    stored = [e for e in kube.objects(CORE_EVENTS, NS) if e["reason"] == action]
    assert stored and stored[-1]["message"] == event["message"]

    patches = [r for r in reqs if r.method == "PATCH" and r.body
               and "metadata" in r.body]
    assert len(patches) == 1
    p = patches[0]
    assert (p.path, p.content_type) == (WEB, MP)
    assert list(p.body) == ["metadata"] and list(p.body["metadata"]) == ["annotations"]
    record = json.loads(p.body["metadata"]["annotations"][ANNOTATION])
    assert record == {"action": verb, "actor": ACTOR, "reason": reason,
                      "at": "2026-08-20T10:00:00Z", "verified": verified}
    assert last_action(kube) == record
    return event


# --- settings --------------------------------------------------------------------------------


def test_unknown_setting_names_it_and_the_known_ones(config: Path) -> None:
    with pytest.raises(ProviderError) as info:
        build_traffic({"type": "argo-rollouts", "rollout": "web", "kubeconfig": str(config),
                       "weights": [1, 2]}, context())
    assert str(info.value) == (
        "argo-rollouts: unknown setting 'weights'; known settings: rollout, namespace, "
        "kubeconfig, context, timeout, verify_timeout")


def test_settings_rules(config: Path) -> None:
    with pytest.raises(ProviderError, match="argo-rollouts: 'rollout' is required"):
        parse_settings({"type": "argo-rollouts"})
    with pytest.raises(ProviderError, match="is not a Kubernetes object name"):
        parse_settings({"type": "argo-rollouts", "rollout": "Web_1"})
    with pytest.raises(ProviderError, match="is not a Kubernetes namespace name"):
        parse_settings({"type": "argo-rollouts", "rollout": "web", "namespace": "a.b"})
    with pytest.raises(ProviderError, match="'verify_timeout'"):
        parse_settings({"type": "argo-rollouts", "rollout": "web", "verify_timeout": "soon"})
    s = parse_settings({"type": "argo-rollouts", "rollout": "web", "verify_timeout": "2m",
                        "timeout": "1500ms", "context": "prod-eu"})
    assert (s.verify_timeout, s.timeout, s.context) == (120.0, 1.5, "prod-eu")
    assert parse_settings({"type": "argo-rollouts", "rollout": "web",
                           "verify_timeout": "90s"}).verify_timeout == 90.0
    default = parse_settings({"type": "argo-rollouts", "rollout": "web"})
    assert default.verify_timeout == 60.0 and default.timeout == 4.0  # 0.8 × call_timeout


def test_namespace_comes_from_the_context_else_default(kube: FakeKube, tmp_path: Path) -> None:
    with_ns = build_traffic({"type": "argo-rollouts", "rollout": "web",
                             "kubeconfig": str(write_kubeconfig(tmp_path / "a", kube.url))},
                            context())
    without = build_traffic({"type": "argo-rollouts", "rollout": "web", "kubeconfig": str(
        write_kubeconfig(tmp_path / "b", kube.url, namespace=None))}, context())
    given = build_traffic({"type": "argo-rollouts", "rollout": "web", "namespace": "pay",
                           "kubeconfig": str(tmp_path / "a")}, context())
    assert (with_ns.resource, without.resource, given.resource) == (
        "rollout shop/web", "rollout default/web", "rollout pay/web")
    assert kube.requests == []  # building sends nothing
    assert isinstance(with_ns, StepController) and owns_steps(with_ns)


def test_a_bad_kubeconfig_is_one_message(tmp_path: Path) -> None:
    with pytest.raises(ProviderError) as info:
        build_traffic({"type": "argo-rollouts", "rollout": "web",
                       "kubeconfig": str(tmp_path / "missing")}, context())
    assert str(info.value) == f"argo-rollouts: kubeconfig {tmp_path / 'missing'} does not exist"


async def test_set_weight_is_refused(config: Path) -> None:
    async with opened(make(config)) as p:
        with pytest.raises(ProviderError) as info:
            await p.set_weight(50, reason="x")
    assert "rollout shop/web owns its weights" in str(info.value)


async def test_a_missing_rollout_says_where_it_looked(kube: FakeKube, config: Path) -> None:
    async with opened(make(config, rollout="checkout")) as p:
        with pytest.raises(ProviderError) as info:
            await p.read()
    assert str(info.value).startswith(
        "argo-rollouts: rollout shop/checkout does not exist (check `rollout:` and "
        "`namespace:`; kubectl get rollouts.argoproj.io -n shop lists them; context prod-eu)")


# --- read() ----------------------------------------------------------------------------------


async def test_read_canary_with_a_traffic_router(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)  # new revision, setWeight 20, then the pause
    async with opened(make(config)) as p:
        state = await p.read()
        c = state.controller
        assert c is not None
        assert (c.system, c.resource, c.strategy) == ("Argo Rollouts", "rollout shop/web",
                                                      "Canary")
        assert (c.phase, c.message) == ("Paused", "CanaryPauseStep")
        assert (c.step, c.steps, c.set_weight, c.actual_weight) == (1, 5, 20, 20)
        assert c.as_json() == {"phase": "Paused", "message": "CanaryPauseStep", "step": 1,
                               "steps": 5, "set_weight": 20, "actual_weight": 20}
        assert state.canary_weight == 20
        assert [(s.text, s.weight, s.pause, s.waits) for s in c.plan] == [
            ("set weight 20%", 20, None, False), ("pause (until promoted)", 20, None, True),
            ("set weight 50%", 50, None, False), ("pause 30s", 50, 30.0, False),
            ("set weight 80%", 80, None, False)]
        assert c.waiting and not c.manually_paused and not c.aborted and not c.fully_promoted
        # Traffic router: 1 canary pod at 20 %, stable kept at full size.
        assert state.health_line() == "canary 1/1 up · stable 5/5 up"
        assert c.last_action == ""

        # The router reports what it applies, which may lag what the step asks for.
        def lag(ro: dict[str, Any]) -> None:
            ro["status"]["canary"]["weights"]["canary"]["weight"] = 15
        kube.mutate(ROLLOUTS, NS, "web", lag)
        state = await eventually(p.read, lambda s: s.canary_weight == 15)
        assert state.controller is not None
        assert (state.controller.set_weight, state.controller.actual_weight) == (20, 15)


async def test_read_basic_canary_takes_the_weight_from_replica_sets(kube: FakeKube,
                                                                    config: Path) -> None:
    ro = deploy(kube, rollout(routed=False, replicas=4,
                              steps=[{"setWeight": 50}, {"pause": {}}]), passes=3)
    async with opened(make(config)) as p:
        state = await p.read()
        assert state.controller is not None
        assert "weights" not in ro["status"].get("canary", {})  # no router, no weights
        assert (state.canary_weight, state.controller.set_weight) == (50, 50)
        assert state.health_line() == "canary 2/2 up · stable 2/2 up"

        # One canary pod stops being ready: 1 of the 3 available pods is the canary's.
        kube.unready[f"web-{ro['status']['currentPodHash']}"] = 1
        kube.step_controller()
        state = await eventually(p.read, lambda s: s.canary_weight != 50)
        assert state.canary_weight == 33  # 1 * 100 / 3, Go's integer division
        assert state.controller is not None
        assert (state.controller.set_weight, state.controller.actual_weight) == (50, 33)
        assert state.health_line() == "canary 1/2 up · stable 2/2 up"
        assert (state.controller.phase, state.controller.message) == ("Paused",
                                                                      "CanaryPauseStep")


async def test_read_blue_green_has_two_steps(kube: FakeKube, config: Path) -> None:
    deploy(kube, blue_green(), passes=2)  # the preview is up, waiting for promote
    async with opened(make(config)) as p:
        state = await p.read()
        c = state.controller
        assert c is not None
        assert (c.strategy, c.phase, c.message) == ("BlueGreen", "Paused", "BlueGreenPause")
        assert (c.step, c.steps, state.canary_weight) == (0, 2, 0)
        assert [(s.text, s.weight, s.waits) for s in c.plan] == [
            ("preview: new version on web-preview, then wait for promote", 0, True),
            ("promote: web-active switches to the new version", 100, False)]
        assert c.waiting and not c.fully_promoted
        assert c.as_json()["steps"] == 2
        assert state.health_line() == "canary 3/3 up · stable 3/3 up"  # preview and active

        kube.start_controller(interval=0.01)
        index = len(kube.requests)
        await p.promote(full=False, reason="preview looks good", actor=ACTOR)
        assert [sent(r) for r in mutations(kube, index)][:2] == [
            ("GET", WEB, None, None),
            ("PATCH", f"{WEB}/status", MP, {"status": {"pauseConditions": None}})]
        state = await p.read()
        c = state.controller
        assert c is not None
        assert (c.phase, c.step, state.canary_weight, c.fully_promoted) == ("Healthy", 2, 100,
                                                                            True)
        assert state.health_line() == "stable 3/3 up"  # the new version is stable now
        assert_audit(kube, index, "RelconsoleAdvance", "preview looks good", etype="Normal")


async def test_read_is_served_by_the_watch_not_by_polling(kube: FakeKube,
                                                          config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    async with opened(make(config)) as p:
        await p.read()
        assert await asyncio.to_thread(kube.wait_for_watches, 2)
        plain = [r for r in kube.requests if "watch" not in r.query]
        watches = {r.path: r.query for r in kube.requests if r.query.get("watch") in ("1", "true")}
        assert [(r.path, r.query) for r in plain] == [
            (RO, {"fieldSelector": "metadata.name=web"}), (RS, {"labelSelector": "app=web"})]
        # Each watch starts where its list stood, so nothing between them is missed.
        assert watches[RO]["fieldSelector"] == "metadata.name=web"
        assert watches[RS]["labelSelector"] == "app=web"
        assert watches[RO]["resourceVersion"] == watches[RS]["resourceVersion"] == \
            kube.resource_version  # nothing was written since the lists

        before = len(kube.requests)
        for _ in range(25):
            state = await p.read()
        assert kube.requests[before:] == []  # 25 reads, no request at all
        assert state.controller is not None and state.controller.step == 1

        # A change made on the cluster arrives through the watch.
        def promote(ro: dict[str, Any]) -> None:
            ro["status"].pop("pauseConditions")
        kube.mutate(ROLLOUTS, NS, "web", promote)
        kube.step_controller()
        state = await eventually(p.read, lambda s: s.controller is not None
                                 and s.controller.step == 2)
        assert state.controller is not None
        assert (state.controller.phase, state.controller.message) == (
            "Progressing", "more replicas need to be updated")
        assert [r for r in kube.requests[before:] if r.query.get("watch") is None] == []


# --- actions: the plugin's requests, then the audit ------------------------------------------


async def test_advance_at_an_indefinite_pause(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    generation = kube.get_object(ROLLOUTS, NS, "web")["metadata"]["generation"]  # type: ignore[index]
    async with opened(make(config)) as p:
        await p.read()
        kube.start_controller(interval=0.01)
        index = len(kube.requests)
        await p.promote(full=False, reason="gates green", actor=ACTOR)
        reqs = mutations(kube, index)
        assert [sent(r) for r in reqs[:2]] == [
            ("GET", WEB, None, None),
            ("PATCH", f"{WEB}/status", MP, {"status": {"pauseConditions": None}})]
        assert_audit(kube, index, "RelconsoleAdvance", "gates green", etype="Normal")
        assert len(reqs) == 4  # GET, status patch, Event, annotation: nothing else
        # The plugin sends no query string; relconsole's writes name it as field manager
        # (managedFields and the audit log then say who wrote), nothing else.
        assert reqs[0].query == {} and reqs[1].query == {"fieldManager": "relconsole"}
        state = await p.read()
        assert state.controller is not None and state.controller.step >= 2  # type: ignore[operator]
        assert state.controller.last_action == "advance by alice@bastion-1: gates green"
    # The annotation is metadata: it never bumps generation (no new rollout revision).
    assert kube.get_object(ROLLOUTS, NS, "web")["metadata"]["generation"] == generation  # type: ignore[index]


async def test_advance_of_a_manually_paused_rollout_sends_status_then_spec(
        kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    kube.mutate(ROLLOUTS, NS, "web", lambda ro: ro["spec"].update(paused=True))
    async with opened(make(config)) as p:
        state = await eventually(p.read, lambda s: s.controller is not None
                                 and s.controller.manually_paused)
        kube.start_controller(interval=0.01)
        index = len(kube.requests)
        await p.promote(full=False, reason="go on", actor=ACTOR)
        assert [sent(r) for r in mutations(kube, index)[:3]] == [
            ("GET", WEB, None, None),
            ("PATCH", f"{WEB}/status", MP, {"status": {"pauseConditions": None}}),
            ("PATCH", WEB, MP, {"spec": {"paused": False}})]
        assert_audit(kube, index, "RelconsoleAdvance", "go on", etype="Normal")
        assert state.controller is not None


async def test_advance_without_the_status_subresource_falls_back(kube: FakeKube,
                                                                 config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    kube.status_subresource = False  # a Rollouts v0.9 CRD
    async with opened(make(config)) as p:
        await p.read()
        kube.start_controller(interval=0.01)
        index = len(kube.requests)
        await p.promote(full=False, reason="old cluster", actor=ACTOR)
        reqs = mutations(kube, index)
        assert [sent(r) for r in reqs[:3]] == [
            ("GET", WEB, None, None),
            ("PATCH", f"{WEB}/status", MP, {"status": {"pauseConditions": None}}),
            ("PATCH", WEB, MP, {"spec": {"paused": False}, "status": {"pauseConditions": None}})]
        assert reqs[1].status == 404
        assert_audit(kube, index, "RelconsoleAdvance", "old cluster", etype="Normal")


async def test_promote_full(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    async with opened(make(config)) as p:
        await p.read()
        kube.start_controller(interval=0.01)
        index = len(kube.requests)
        await p.promote(full=True, reason="ship it", actor=ACTOR)
        assert [sent(r) for r in mutations(kube, index)[:2]] == [
            ("GET", WEB, None, None),
            ("PATCH", f"{WEB}/status", MP, {"status": {"promoteFull": True}})]
        assert_audit(kube, index, "RelconsolePromote", "ship it", etype="Normal")
        state = await p.read()
        c = state.controller
        assert c is not None
        assert (c.phase, c.step, c.fully_promoted, state.canary_weight) == ("Healthy", 5,
                                                                            True, 100)


async def test_abort_is_verified_at_zero_and_warns(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    async with opened(make(config)) as p:
        await p.read()
        kube.start_controller(interval=0.01)
        index = len(kube.requests)
        await p.abort(reason="p99 doubled", actor=ACTOR)
        # abort sends no GET first, exactly as the plugin.
        assert [sent(r) for r in mutations(kube, index)[:1]] == [
            ("PATCH", f"{WEB}/status", MP, {"status": {"abort": True}})]
        event = assert_audit(kube, index, "RelconsoleAbort", "p99 doubled", etype="Warning")
        assert event["message"] == "abort by alice on bastion-1: p99 doubled"
        state = await p.read()
        c = state.controller
        assert c is not None
        assert (c.phase, c.message) == ("Degraded",
                                        "RolloutAborted: Rollout aborted update to revision 2")
        assert (c.set_weight, c.actual_weight, state.canary_weight, c.aborted) == (0, 0, 0, True)
        assert c.last_action == "abort by alice@bastion-1: p99 doubled"


async def test_abort_of_a_basic_canary_waits_for_the_canary_pods(kube: FakeKube,
                                                                  config: Path) -> None:
    deploy(kube, rollout(routed=False, replicas=4, steps=[{"setWeight": 50}, {"pause": {}}]),
           passes=3)
    async with opened(make(config)) as p:
        assert (await p.read()).canary_weight == 50
        kube.start_controller(interval=0.01)
        await p.abort(reason="errors", actor=ACTOR)
        state = await p.read()
        assert state.canary_weight == 0
        assert state.health_line() == "stable 4/4 up"  # the canary's pods are gone


async def test_abort_without_the_status_subresource_falls_back(kube: FakeKube,
                                                               config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    kube.status_subresource = False
    async with opened(make(config)) as p:
        await p.read()
        kube.start_controller(interval=0.01)
        index = len(kube.requests)
        await p.abort(reason="bad", actor=ACTOR)
        reqs = mutations(kube, index)
        assert [sent(r) for r in reqs[:2]] == [
            ("PATCH", f"{WEB}/status", MP, {"status": {"abort": True}}),
            ("PATCH", WEB, MP, {"status": {"abort": True}})]
        assert reqs[0].status == 404
        assert_audit(kube, index, "RelconsoleAbort", "bad", etype="Warning")


async def test_pause_then_resume(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    async with opened(make(config)) as p:
        await p.read()
        kube.start_controller(interval=0.01)
        index = len(kube.requests)
        await p.pause(reason="looking", actor=ACTOR)
        assert [sent(r) for r in mutations(kube, index)[:1]] == [
            ("PATCH", WEB, MP, {"spec": {"paused": True}})]
        assert_audit(kube, index, "RelconsolePause", "looking", etype="Normal")
        state = await p.read()
        assert state.controller is not None and state.controller.manually_paused
        assert state.controller.message == "manually paused"

        index = len(kube.requests)
        await p.resume(reason="fine", actor=ACTOR)
        # resume undoes the pause only: the pause step's own condition stays for `a`.
        assert [sent(r) for r in mutations(kube, index)[:2]] == [
            ("GET", WEB, None, None),
            ("PATCH", WEB, MP, {"spec": {"paused": False}})]
        assert_audit(kube, index, "RelconsoleResume", "fine", etype="Normal")
        state = await p.read()
        assert state.controller is not None and not state.controller.manually_paused


async def test_an_unverified_action_says_what_the_controller_shows(kube: FakeKube,
                                                                    config: Path) -> None:
    deploy(kube, rollout(), passes=3)  # and no controller running from now on
    async with opened(make(config, verify_timeout="300ms")) as p:
        await p.read()
        index = len(kube.requests)
        with pytest.raises(ProviderError) as info:
            await p.abort(reason="p99 doubled", actor=ACTOR)
        assert str(info.value) == (
            "argo-rollouts: abort sent, but after 0.3s the controller still shows: rollout "
            "web: abort recorded, but the canary still gets 20% of traffic (set weight 0%); "
            "Argo has not shifted it back to stable yet")
        event = assert_audit(kube, index, "RelconsoleAbort", "p99 doubled", etype="Warning",
                             verified=False)
        assert "NOT VERIFIED after 0.3s: rollout web: abort recorded" in event["message"]
        state = await p.read()
        assert state.controller is not None
        assert state.controller.last_action == "abort by alice@bastion-1: p99 doubled " \
                                               "(not verified)"


async def test_an_interrupted_action_is_still_recorded(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)  # no controller: the abort cannot be verified
    async with opened(make(config)) as p:
        await p.read()
        task = asyncio.create_task(p.abort(reason="p99 doubled", actor=ACTOR))
        await eventually(lambda: asyncio.sleep(0, kube.requests_to("PATCH", f"{WEB}/status")),
                         bool)
        task.cancel()  # the engine's own timeout, or Ctrl-C
        with pytest.raises(asyncio.CancelledError):
            await task
    (event,) = events_for(kube, "RelconsoleAbort")
    assert event["message"].startswith(
        "abort by alice on bastion-1: p99 doubled — NOT VERIFIED after 0s (interrupted): "
        "relconsole stopped waiting before Argo acted")
    assert last_action(kube)["verified"] is False


async def test_a_half_sent_action_is_recorded_and_refused(kube: FakeKube,
                                                          config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    kube.mutate(ROLLOUTS, NS, "web", lambda ro: ro["spec"].update(paused=True))
    kube.forbid("patch", "rollouts")  # the spec patch is refused, /status is not
    async with opened(make(config)) as p:
        await eventually(p.read, lambda s: s.controller is not None
                         and s.controller.manually_paused)
        index = len(kube.requests)
        with pytest.raises(ProviderError) as info:
            await p.promote(full=False, reason="fine", actor=ACTOR)
        assert "cannot patch resource \"rollouts\"" in str(info.value)
        assert [(r.method, r.path, r.status) for r in mutations(kube, index)][:3] == [
            ("GET", WEB, 200), ("PATCH", f"{WEB}/status", 200), ("PATCH", WEB, 403)]
    (event,) = events_for(kube, "RelconsoleAdvance")
    assert event["type"] == "Warning"
    assert event["message"].startswith("advance by alice on bastion-1: fine — NOT VERIFIED "
                                       "when sending: 403 forbidden:")


async def test_a_refused_audit_does_not_undo_a_verified_action(kube: FakeKube,
                                                               config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    kube.forbid("create", "events")
    async with opened(make(config)) as p:
        await p.read()
        kube.start_controller(interval=0.01)
        await p.promote(full=False, reason="gates green", actor=ACTOR)  # does not raise
        assert p.audit_problem == "audit Event not written: 403: cannot create events in " \
                                  "namespace shop"
        state = await p.read()
        assert state.controller is not None
        assert state.controller.last_action == (
            "advance by alice@bastion-1: gates green (audit Event not written: 403: cannot "
            "create events in namespace shop)")
        assert last_action(kube)["reason"] == "gates green"  # the annotation was written


async def test_an_engine_action_names_whom_it_acts_for(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    async with opened(make(config)) as p:
        await p.read()
        kube.start_controller(interval=0.01)
        await p.abort(reason="gate error_rate failed", actor="engine (for alice@bastion-1)")
        event = events_for(kube, "RelconsoleAbort")[-1]
        assert event["message"] == ("abort by engine (for alice@bastion-1): gate error_rate "
                                    "failed")
        assert event["source"]["host"] == "bastion-1"
        assert last_action(kube)["actor"] == "engine (for alice@bastion-1)"


# --- analysis ----------------------------------------------------------------------------


async def test_analysis_runs_beside_the_steps(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    kube.seed(ANALYSISRUNS, NS, {
        "metadata": {"name": "web-2-1"},
        "spec": {"metrics": [{"name": "success-rate"}, {"name": "latency"}]},
        "status": {"phase": "Running", "message": "",
                   "metricResults": [{"name": "success-rate", "phase": "Successful"},
                                     {"name": "latency", "phase": "Running"}]}})

    def analysing(ro: dict[str, Any]) -> None:
        ro["status"]["canary"]["currentStepAnalysisRunStatus"] = {
            "name": "web-2-1", "status": "Running"}
        ro["status"]["canary"]["currentBackgroundAnalysisRunStatus"] = {
            "name": "web-2-bg", "status": "Running"}
    kube.mutate(ROLLOUTS, NS, "web", analysing)
    async with opened(make(config)) as p:
        state = await p.read()
        assert state.controller is not None
        step, background = state.controller.analysis
        assert (step.name, step.phase, step.metrics) == (
            "web-2-1", "Running", (("success-rate", "Successful"), ("latency", "Running")))
        # A run that cannot be read is a verdict that says so, not a failed read.
        assert (background.name, background.phase) == ("web-2-bg", "Unknown")
        assert background.message == ("cannot read the AnalysisRun (the Rollout says "
                                      "Running): AnalysisRun shop/web-2-bg does not exist")

        def inconclusive(run: dict[str, Any]) -> None:
            run["status"].update(phase="Inconclusive", message="Metric \"latency\" assessed "
                                 "Inconclusive due to inconclusive (1) > inconclusiveLimit (0)")
            run["status"]["metricResults"][1]["phase"] = "Inconclusive"
        kube.mutate(ANALYSISRUNS, NS, "web-2-1", inconclusive)
        state = await eventually(p.read, lambda s: s.controller is not None
                                 and s.controller.analysis[0].phase == "Inconclusive")
        assert state.controller is not None
        assert state.controller.analysis[0].metrics[1] == ("latency", "Inconclusive")


async def test_analysis_runs_forbidden_is_said_in_the_verdict(kube: FakeKube,
                                                              config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    kube.forbid("get", "analysisruns")

    def analysing(ro: dict[str, Any]) -> None:
        ro["status"]["canary"]["currentStepAnalysisRunStatus"] = {"name": "web-2-1",
                                                                  "status": "Running"}
    kube.mutate(ROLLOUTS, NS, "web", analysing)
    async with opened(make(config)) as p:
        state = await p.read()
        assert state.controller is not None
        (verdict,) = state.controller.analysis
        assert verdict.phase == "Unknown"
        assert "grant the console's account 'get' on analysisruns.argoproj.io in namespace " \
               "shop" in verdict.message


async def test_analysis_templates_for_gates_from(kube: FakeKube, config: Path) -> None:
    kube.seed(ANALYSISTEMPLATES, NS, {"metadata": {"name": "success-rate"},
                                      "spec": {"metrics": [{"name": "success-rate"}]}})
    kube.seed(CLUSTERANALYSISTEMPLATES, "", {"metadata": {"name": "latency"},
                                             "spec": {"metrics": [{"name": "p99"}]}})
    async with opened(make(config)) as p:
        got = await p.analysis_template("success-rate")
        assert got["kind"] == "AnalysisTemplate" and got["spec"]["metrics"][0]["name"] == \
            "success-rate"
        cluster = await p.analysis_template("latency", cluster=True)
        assert cluster["kind"] == "ClusterAnalysisTemplate"
        assert kube.requests_to("GET", "/apis/argoproj.io/v1alpha1/clusteranalysistemplates/"
                                "latency")
        with pytest.raises(ProviderError) as info:
            await p.analysis_template("nope")
        assert str(info.value) == ("argo-rollouts: AnalysisTemplate shop/nope does not exist "
                                   "(kubectl get analysistemplates.argoproj.io nope -n shop)")
        kube.forbid("get", "analysistemplates")
        with pytest.raises(ProviderError) as info:
            await p.analysis_template("success-rate")
        assert "grant the console's account 'get' on analysistemplates.argoproj.io" in \
            str(info.value)


# --- a whole release ------------------------------------------------------------------------


async def test_a_whole_release_then_an_aborted_one(config: Path, tmp_path: Path) -> None:
    moment = [datetime(2026, 8, 20, 10, 0, tzinfo=UTC)]
    lock = threading.Lock()

    def clock() -> datetime:
        with lock:
            return moment[0]

    with FakeKube(token=TOKEN, user="alice", workloads=True, clock=clock) as kube:
        path = write_kubeconfig(tmp_path / "k2", kube.url)
        kube.seed(ROLLOUTS, NS, rollout())
        kube.step_controller()
        async with opened(make(path)) as p:
            first = await p.read()
            assert first.controller is not None
            assert (first.controller.phase, first.controller.step, first.canary_weight) == (
                "Healthy", 5, 100)
            set_image(kube, "web:2")
            kube.start_controller(interval=0.005)
            seen: list[tuple[Any, ...]] = []
            promotes = 0
            for _ in range(500):
                state = await p.read()
                c = state.controller
                assert c is not None
                row = (c.phase, c.message, c.step, c.set_weight, c.actual_weight)
                if not seen or seen[-1] != row:
                    seen.append(row)
                if c.phase == "Healthy" and c.step == 5 and seen[0] != row:
                    break
                if c.waiting:
                    await p.promote(full=False, reason=f"step {c.step} fine", actor=ACTOR)
                    promotes += 1
                elif c.step == 3 and c.phase == "Paused":
                    with lock:  # the 30 s pause: time passes on the controller's clock
                        moment[0] += timedelta(seconds=30)
                await asyncio.sleep(0.005)
            # What `kubectl argo rollouts get` would have shown at each stop.
            assert ("Paused", "CanaryPauseStep", 1, 20, 20) in seen
            assert ("Paused", "CanaryPauseStep", 3, 50, 50) in seen
            assert seen[-1] == ("Healthy", "", 5, 100, 100)
            assert promotes == 1  # only the indefinite pause waited for a promote
            assert len(events_for(kube, "RelconsoleAdvance")) == 1

            # The next release is aborted at its first pause.
            set_image(kube, "web:3")
            state = await eventually(p.read, lambda s: s.controller is not None
                                     and s.controller.waiting)
            assert state.canary_weight == 20
            await p.abort(reason="p99 doubled", actor=ACTOR)
            state = await p.read()
            c = state.controller
            assert c is not None
            assert (c.phase, c.message, c.set_weight, c.actual_weight, c.aborted) == (
                "Degraded", "RolloutAborted: Rollout aborted update to revision 3", 0, 0,
                True)
            assert c.last_action == "abort by alice@bastion-1: p99 doubled"
            assert state.canary_weight == 0

