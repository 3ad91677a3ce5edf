"""relconsole.fleet.argo: every Rollout of several contexts, live, against FAKE API servers.

One FakeKube (tests/fake_kube.py) per kubeconfig context, real HTTP: the list, the watch
from its resourceVersion, 410 Gone and the re-list, a stream cut mid-way, 401 and 403
answers, and a context whose server cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from relconsole.fleet.argo import ArgoFleet, rollout_row
from relconsole.fleet.rows import LAST_ACTION_ANNOTATION, FleetFeed, RolloutTarget
from tests.fake_kube import ROLLOUTS, FakeKube

RO = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts/{name}"


@pytest.fixture(autouse=True)
def no_developer_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "HTTPS_PROXY", "HTTP_PROXY",
                "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def prod() -> Iterator[FakeKube]:
    with FakeKube(user="alice") as fake:
        yield fake
        assert fake.internal_errors == []


@pytest.fixture
def staging() -> Iterator[FakeKube]:
    with FakeKube(user="alice") as fake:
        yield fake
        assert fake.internal_errors == []


def kubeconfig(path: Path, contexts: dict[str, str], current: str | None = None) -> Path:
    """One context per (name → server URL), each with namespace `shop`."""
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in contexts.items()],
        "users": [{"name": "oncall", "user": {"token": "t0k3n-for-the-fake-0123456789"}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "oncall",
                                             "namespace": "shop"}} for n in contexts],
        "current-context": current or next(iter(contexts)),
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def rollout(name: str, steps: list[Any] | None = None,
            annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app": name}}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": meta,
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": f"{name}:1"}]}},
            "strategy": {"canary": {
                "canaryService": f"{name}-canary", "stableService": f"{name}-stable",
                "trafficRouting": {"nginx": {"stableIngress": name}},
                "steps": steps if steps is not None else [
                    {"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]}},
        },
    }


def release(fake: FakeKube, ns: str, name: str, passes: int = 3) -> None:
    """Seed a Rollout, let the fake controller deploy it, then start a new version."""
    fake.seed(ROLLOUTS, ns, rollout(name))
    fake.step_controller()  # first revision: stable, Healthy
    patch(fake, ns, name, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": f"{name}:2"}]}}}})
    for _ in range(passes):
        fake.step_controller()


def run_to(fake: FakeKube, ns: str, name: str, phase: str) -> None:
    """Controller passes until the Rollout is in `phase` (as the fake stores it)."""
    for _ in range(10):
        obj = fake.get_object(ROLLOUTS, ns, name)
        if obj is not None and (obj.get("status") or {}).get("phase") == phase:
            return
        fake.step_controller()
    raise AssertionError(f"{ns}/{name} never got to {phase}")


def patch(fake: FakeKube, ns: str, name: str, body: dict[str, Any]) -> None:
    r = requests.patch(fake.url + RO.format(ns=ns, name=name), json=body, timeout=5,
                       headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text


def delete(fake: FakeKube, ns: str, name: str) -> None:
    r = requests.delete(fake.url + RO.format(ns=ns, name=name), timeout=5)
    assert r.status_code == 200, r.text


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait (bounded) for something the source must get to; fail naming it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


def phases(feed: FleetFeed) -> dict[str, str]:
    return {key: row.phase for key, row in feed.rows.items()}


@pytest.fixture
async def follow() -> AsyncIterator[Callable[[ArgoFleet], FleetFeed]]:
    """Start sources in the background; every one is cancelled when the test ends."""
    tasks: list[asyncio.Task[None]] = []

    def start(source: ArgoFleet) -> FleetFeed:
        feed = FleetFeed()
        tasks.append(asyncio.ensure_future(source.run(feed)))
        return feed

    yield start
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def source(path: Path, *contexts: str | None, namespaces: tuple[str, ...] = ()) -> ArgoFleet:
    return ArgoFleet(contexts or (None,), namespaces, kubeconfig=path, timeout=2.0,
                     first_retry=0.02, max_retry=0.1)


# --- rows ------------------------------------------------------------------------------------


def test_a_row_reads_phase_step_weights_and_the_last_action_as_the_plugin_does() -> None:
    note = json.dumps({"action": "abort", "actor": "alice@bastion", "reason": "5xx",
                       "at": "2027-01-15T08:00:00Z"})
    obj = rollout("checkout", annotations={LAST_ACTION_ANNOTATION: note})
    obj["metadata"].update(namespace="shop", creationTimestamp="2027-01-14T08:00:00Z")
    obj["status"] = {"currentStepIndex": 1, "phase": "Paused", "message": "CanaryPauseStep",
                     "stableRS": "a", "availableReplicas": 5,
                     "currentPodHash": "b", "observedGeneration": "1",
                     "pauseConditions": [{"reason": "CanaryPauseStep",
                                          "startTime": "2027-01-15T07:59:00Z"}],
                     "controllerPause": True,
                     "canary": {"weights": {"canary": {"weight": 20}, "stable": {"weight": 80}}}}
    obj["metadata"]["generation"] = 1
    row = rollout_row(obj, context="prod", target_context="prod", kubeconfig="/k")
    assert (row.key, row.phase, row.message, row.step) == (
        "prod/shop/checkout", "Paused", "CanaryPauseStep", "1/4")
    assert (row.set_weight, row.actual_weight, row.progress) == (20, 20, 0.25)
    assert row.last is not None and (row.last.action, row.last.reason) == ("abort", "5xx")
    assert row.target == RolloutTarget("checkout", "shop", "prod", "/k")


def test_a_rollout_the_plugin_could_not_read_is_listed_with_why() -> None:
    obj = rollout("broken")
    obj["metadata"]["namespace"] = "shop"
    obj["spec"]["strategy"]["canary"]["steps"] = "not a list"
    row = rollout_row(obj, context="prod", target_context=None, kubeconfig=None)
    assert row.phase == "unreadable"
    assert "steps" in row.message and row.name == "broken"


# --- watching --------------------------------------------------------------------------------


async def test_two_contexts_in_one_table_each_live(
    tmp_path: Path, prod: FakeKube, staging: FakeKube, follow: Any
) -> None:
    release(prod, "shop", "checkout", passes=1)  # step 1 done: at 20%
    release(staging, "shop", "checkout", passes=0)
    path = kubeconfig(tmp_path / "config", {"prod": prod.url, "staging": staging.url})
    fleet = source(path, "prod", "staging")
    assert fleet.columns[0] == "context"  # more than one context: the column is shown
    feed = follow(fleet)
    await until(lambda: {"prod/shop/checkout", "staging/shop/checkout"} <= set(feed.rows),
                "both contexts listed")
    await asyncio.to_thread(prod.wait_for_watches, 1)
    await asyncio.to_thread(staging.wait_for_watches, 1)
    assert feed.rows["prod/shop/checkout"].set_weight == 20
    run_to(prod, "shop", "checkout", "Paused")
    await until(lambda: phases(feed)["prod/shop/checkout"] == "Paused", "prod paused")
    staging.seed(ROLLOUTS, "shop", rollout("search"))
    await until(lambda: "staging/shop/search" in feed.rows, "a new Rollout in staging")
    delete(prod, "shop", "checkout")
    await until(lambda: "prod/shop/checkout" not in feed.rows, "the deleted Rollout gone")
    assert feed.statuses == {}
    # One list per context, then only the watch.
    assert len(prod.requests_to("GET", "/apis/argoproj.io/v1alpha1/rollouts")) == 2


async def test_410_gone_lists_again_and_drops_what_went_away_meanwhile(
    tmp_path: Path, prod: FakeKube, follow: Any
) -> None:
    release(prod, "shop", "checkout")
    release(prod, "shop", "cart")
    feed = follow(source(kubeconfig(tmp_path / "config", {"prod": prod.url}),
                         namespaces=("shop",)))
    await until(lambda: len(feed.rows) == 2, "listed")
    await asyncio.to_thread(prod.wait_for_watches, 1)
    # The watch breaks, and the server refuses to watch for a while (RBAC being changed):
    # meanwhile a Rollout is deleted, another created, and the history is compacted.
    prod.forbid("watch", "rollouts", "shop")
    prod.drop_watches()
    await until(lambda: "prod" in feed.problems(), "the status line says so")
    problem = feed.problems()["prod"]
    assert "(HTTP 403)" in problem
    assert "may not watch rollouts.argoproj.io in namespace shop" in problem
    assert "retrying in" in problem
    delete(prod, "shop", "cart")
    prod.seed(ROLLOUTS, "shop", rollout("search"))
    prod.compact()
    prod.allow_all()
    await until(lambda: set(feed.rows) == {"prod/shop/checkout", "prod/shop/search"},
                "the re-list shows the namespace as it is now")
    await until(lambda: not feed.problems(), "the status line clears")
    path = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts"
    lists = [r for r in prod.requests_to("GET", path) if not r.query.get("watch")]
    gone = [r for r in prod.requests_to("GET", path) if r.query.get("watch")
            and r.status == 200 and int(r.query["resourceVersion"]) < int(
                prod.resource_version)]
    assert len(lists) == 2  # the first list, and the one after 410 Gone
    assert gone  # the watch from the compacted version, answered with 410 in the stream


async def test_a_dropped_watch_reconnects_from_where_it_was(
    tmp_path: Path, prod: FakeKube, follow: Any
) -> None:
    release(prod, "shop", "checkout", passes=1)
    feed = follow(source(kubeconfig(tmp_path / "config", {"prod": prod.url})))
    await until(lambda: len(feed.rows) == 1, "listed")
    await asyncio.to_thread(prod.wait_for_watches, 1)
    prod.drop_watches()
    await asyncio.to_thread(prod.wait_for_watches, 0)
    await asyncio.to_thread(prod.wait_for_watches, 1)
    run_to(prod, "shop", "checkout", "Paused")
    await until(lambda: phases(feed)["prod/shop/checkout"] == "Paused", "update after reconnect")
    calls = prod.requests_to("GET", "/apis/argoproj.io/v1alpha1/rollouts")
    watches = [r.query.get("resourceVersion") for r in calls if r.query.get("watch")]
    # No re-list: the second watch started from the last version the first one saw.
    assert len(calls) - len(watches) == 1
    assert len(watches) == 2 and watches[0] == watches[1]  # nothing changed in between
    assert feed.statuses == {}  # one drop, reopened at once: nothing to report


async def test_403_on_the_cluster_wide_list_falls_back_to_the_contexts_namespace(
    tmp_path: Path, prod: FakeKube, follow: Any
) -> None:
    release(prod, "shop", "checkout")
    release(prod, "other", "billing")
    prod.forbid("list", "rollouts", "")  # at the cluster scope only
    prod.forbid("watch", "rollouts", "")
    feed = follow(source(kubeconfig(tmp_path / "config", {"prod": prod.url})))
    await until(lambda: "prod/shop/checkout" in feed.rows, "the context's namespace listed")
    assert "prod/other/billing" not in feed.rows
    status = feed.statuses["prod"]
    assert not status.problem
    assert status.text == ("cannot list Rollouts cluster-wide (HTTP 403); showing namespace "
                           "shop only")
    run_to(prod, "shop", "checkout", "Paused")
    await until(lambda: phases(feed)["prod/shop/checkout"] == "Paused", "watched in shop")


async def test_namespaces_given_are_watched_each_and_nothing_else(
    tmp_path: Path, prod: FakeKube, follow: Any
) -> None:
    for ns, name in (("shop", "checkout"), ("money", "payments"), ("other", "billing")):
        release(prod, ns, name)
    feed = follow(source(kubeconfig(tmp_path / "config", {"prod": prod.url}),
                         namespaces=("shop", "money")))
    await until(lambda: len(feed.rows) == 2, "both namespaces listed")
    assert set(feed.rows) == {"prod/shop/checkout", "prod/money/payments"}
    await asyncio.to_thread(prod.wait_for_watches, 2)
    assert not prod.requests_to("GET", "/apis/argoproj.io/v1alpha1/rollouts")


async def test_a_context_that_cannot_be_reached_says_so_and_the_others_keep_updating(
    tmp_path: Path, prod: FakeKube, follow: Any
) -> None:
    release(prod, "shop", "checkout", passes=1)
    path = kubeconfig(tmp_path / "config", {"prod": prod.url, "dead": "http://127.0.0.1:9"})
    feed = follow(source(path, "prod", "dead", "missing"))
    await until(lambda: {"dead", "missing"} <= set(feed.statuses), "both problems reported")
    assert feed.statuses["dead"].problem
    assert "cannot reach http://127.0.0.1:9" in feed.statuses["dead"].text
    assert "retrying in" in feed.statuses["dead"].text
    assert "context 'missing' is not in" in feed.statuses["missing"].text
    await until(lambda: "prod/shop/checkout" in feed.rows, "prod listed")
    await asyncio.to_thread(prod.wait_for_watches, 1)
    run_to(prod, "shop", "checkout", "Paused")
    await until(lambda: phases(feed)["prod/shop/checkout"] == "Paused", "prod still live")
    assert "prod" not in feed.statuses


async def test_the_last_action_annotation_is_followed_live(
    tmp_path: Path, prod: FakeKube, follow: Any
) -> None:
    release(prod, "shop", "checkout", passes=1)
    feed = follow(source(kubeconfig(tmp_path / "config", {"prod": prod.url})))
    await until(lambda: len(feed.rows) == 1, "listed")
    await asyncio.to_thread(prod.wait_for_watches, 1)
    assert feed.rows["prod/shop/checkout"].last is None
    note = json.dumps({"action": "abort", "actor": "alice@bastion", "reason": "5xx on /pay",
                       "at": "2027-01-15T08:00:00Z"})
    patch(prod, "shop", "checkout", {"metadata": {"annotations": {LAST_ACTION_ANNOTATION: note}}})

    def who() -> str:
        last = feed.rows["prod/shop/checkout"].last
        return f"{last.action} by {last.actor}" if last else ""

    await until(lambda: who() == "abort by alice@bastion", "the annotation on the row")
