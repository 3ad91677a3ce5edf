"""Shadow traffic on an Argo Rollout: its setMirrorRoute steps, read as the controller runs them.

What an operator would notice: the Rollout's plan shows each mirror step as a share
("mirror 20% (route mirror-route)"), and every read says how much live traffic the router
copies to the canary now, the same share the (fake) router holds, step by step; an abort
or a finished release leaves nothing mirrored. The lead's `check` asks
`view.mirror_steps` (or the provider's `plan_mirror_steps`) whether a Rollout can shadow.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relconsole.model import Route
from relconsole.providers.argo.view import mirror_steps, view
from tests.fake_kube import ROLLOUTS, FakeKube
from tests.test_argo_provider import (
    ACTOR,
    NS,
    TOKEN,
    eventually,
    make,
    opened,
    set_image,
    write_kubeconfig,
)

ROUTE = "mirror-route"
ALL = [{"path": {"prefix": "/"}}]
SHADOW_STEPS: list[dict[str, Any]] = [
    {"setMirrorRoute": {"name": ROUTE, "percentage": 20, "match": ALL}},
    {"pause": {"duration": "1m"}},
    {"setMirrorRoute": {"name": ROUTE, "percentage": 50, "match": ALL}},
    {"pause": {}},
    {"setWeight": 10},
    {"pause": {}},
    {"setMirrorRoute": {"name": ROUTE}},  # Argo's docs: only the name removes the route
    {"setWeight": 50},
]


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)


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


def shadow_rollout(steps: list[dict[str, Any]] | None = None, *,
                   routed: bool = True) -> dict[str, Any]:
    canary: dict[str, Any] = {"canaryService": "web-canary", "stableService": "web-stable",
                              "steps": copy.deepcopy(SHADOW_STEPS if steps is None else steps)}
    if routed:
        canary["trafficRouting"] = {"managedRoutes": [{"name": ROUTE}],
                                    "istio": {"virtualService": {"name": "web-vsvc"}}}
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": NS, "uid": "u-1"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "web:1"}]}},
                 "strategy": {"canary": canary}},
    }


def at_step(ro: dict[str, Any], index: int, **status: Any) -> dict[str, Any]:
    """`ro` part-way through a new revision: `index` steps completed."""
    ro = copy.deepcopy(ro)
    ro["status"] = {"currentStepIndex": index, "stableRS": "old", "currentPodHash": "new",
                    **status}
    return ro


def router(kube: FakeKube) -> int:
    """The share the fake's traffic router mirrors for web now (its largest route)."""
    return max(kube.mirror_routes.get((NS, "web"), {}).values(), default=0)


# --- the view: which steps mirror, and what is mirrored now ----------------------------------


def test_mirror_steps_name_the_steps_that_turn_a_mirror_on() -> None:
    assert mirror_steps(shadow_rollout()) == [0, 2]  # the removal at 6 mirrors nothing
    plain = shadow_rollout([{"setWeight": 20}, {"pause": {}}])
    assert mirror_steps(plain) == []
    off_only = shadow_rollout([{"setMirrorRoute": {"name": ROUTE}}, {"setWeight": 50}])
    assert mirror_steps(off_only) == []
    zero = shadow_rollout([{"setMirrorRoute": {"name": ROUTE, "percentage": 0,
                                               "match": ALL}}])
    assert mirror_steps(zero) == []
    # Without a percentage Istio's router mirrors all matching requests.
    default = shadow_rollout([{"setMirrorRoute": {"name": ROUTE, "match": ALL}}])
    assert mirror_steps(default) == [0]
    blue_green = shadow_rollout()
    blue_green["spec"]["strategy"] = {"blueGreen": {"activeService": "web-active"}}
    assert mirror_steps(blue_green) == []


@pytest.mark.parametrize(("done", "mirror"), [
    (0, 0),  # the first mirror step is not applied yet
    (1, 20), (2, 20), (3, 50), (4, 50), (5, 50), (6, 50),
    (7, 0),  # removed by the name-only step
    (8, 0),
])
def test_the_live_mirror_follows_the_steps_completed(done: int, mirror: int) -> None:
    v = view(at_step(shadow_rollout(), done))
    assert v.mirror == mirror
    assert v.mirror_routes == (((ROUTE, mirror),) if mirror else ())


def test_nothing_is_mirrored_once_aborted_promoted_or_without_a_router() -> None:
    ro = shadow_rollout()
    assert view(at_step(ro, 3)).mirror == 50
    assert view(at_step(ro, 3, abort=True)).mirror == 0
    assert view(at_step(ro, 8, stableRS="new")).mirror == 0  # fully promoted
    # All steps done, not yet marked stable: a route no step removed is still there.
    kept = shadow_rollout(SHADOW_STEPS[:6])
    assert view(at_step(kept, 6)).mirror == 50
    assert view(at_step(shadow_rollout(routed=False), 3)).mirror == 0


def test_two_routes_report_the_larger_share() -> None:
    ro = shadow_rollout([
        {"setMirrorRoute": {"name": "gets", "percentage": 30,
                            "match": [{"method": {"exact": "GET"}}]}},
        {"setMirrorRoute": {"name": "posts", "percentage": 10,
                            "match": [{"method": {"exact": "POST"}}]}},
        {"setMirrorRoute": {"name": "gets"}},
    ])
    assert view(at_step(ro, 2)).mirror_routes == (("gets", 30), ("posts", 10))
    assert view(at_step(ro, 2)).mirror == 30
    assert view(at_step(ro, 3)).mirror == 10


# --- through the fake API server: the provider's reads as the controller walks ---------------


async def test_each_read_reports_the_mirror_the_router_holds(kube: FakeKube,
                                                             config: Path) -> None:
    kube.seed(ROLLOUTS, NS, shadow_rollout())
    kube.step_controller()
    set_image(kube, "web:2")
    kube.step_controller()  # the new revision: step 0 next
    async with opened(make(config)) as p:
        state = await p.read()
        c = state.controller
        assert c is not None
        assert [(s.text, s.weight, s.pause, s.waits) for s in c.plan] == [
            ("mirror 20% (route mirror-route)", 0, None, False),
            ("pause 1m", 0, 60.0, False),
            ("mirror 50% (route mirror-route)", 0, None, False),
            ("pause (until promoted)", 0, None, True),
            ("set weight 10%", 10, None, False),
            ("pause (until promoted)", 10, None, True),
            ("mirror off (route mirror-route)", 10, None, False),
            ("set weight 50%", 50, None, False)]
        assert await p.plan_mirror_steps() == [0, 2]
        assert (c.step, state.route, router(kube)) == (0, Route(), 0)

        seen: list[tuple[int | None, int, int]] = []
        for _ in range(40):
            ro = kube.get_object(ROLLOUTS, NS, "web")
            assert ro is not None
            st = ro["status"]
            index = st["currentStepIndex"]
            state = await eventually(p.read, lambda s, at=index: s.controller is not None
                                     and s.controller.step == at)
            assert state.controller is not None
            # What the read says is what the router was told, at every step.
            assert state.route == Route(mirror=router(kube))
            seen.append((state.controller.step, state.route.mirror, state.canary_weight))
            if st.get("stableRS") == st["currentPodHash"]:
                break
            if st.get("pauseConditions"):
                # The operator promotes past the pause, as the plugin's promote patches it.
                kube.mutate(ROLLOUTS, NS, "web",
                            lambda o: o["status"].update(pauseConditions=None))
            kube.step_controller()
        done = await eventually(p.read, lambda s: s.controller is not None
                                and s.controller.fully_promoted)
        assert (done.route, router(kube), done.canary_weight) == (Route(), 0, 100)

    steps = [(step, mirror) for step, mirror, _ in seen]
    assert (1, 20) in steps and (3, 50) in steps and (5, 50) in steps
    assert (7, 0) in steps and (8, 0) in steps
    # Mirrored before any user traffic reached the canary.
    assert all(weight == 0 for step, _, weight in seen if step is not None and step <= 4)
    assert any(weight == 10 and mirror == 50 for _, mirror, weight in seen)


async def test_an_abort_leaves_nothing_mirrored(kube: FakeKube, config: Path) -> None:
    kube.seed(ROLLOUTS, NS, shadow_rollout())
    kube.step_controller()
    set_image(kube, "web:2")
    for _ in range(4):  # new revision, mirror 20, the pause starts, ...
        kube.step_controller()
    kube.start_controller(interval=0.01)
    async with opened(make(config)) as p:
        state = await eventually(p.read, lambda s: s.route.mirror == 20)
        assert router(kube) == 20
        await p.abort(reason="shadow 5xx doubled", actor=ACTOR)
        state = await eventually(p.read, lambda s: s.route == Route())
        assert state.controller is not None and state.controller.aborted
        assert router(kube) == 0 and state.canary_weight == 0


async def test_a_rollout_without_a_router_mirrors_nothing(kube: FakeKube,
                                                          config: Path) -> None:
    # Argo refuses such a Rollout (InvalidSpec); the fake walks it, and nothing mirrors.
    kube.seed(ROLLOUTS, NS, shadow_rollout(SHADOW_STEPS[:2], routed=False))
    kube.step_controller()
    set_image(kube, "web:2")
    for _ in range(3):
        kube.step_controller()
    async with opened(make(config)) as p:
        state = await p.read()
        assert state.controller is not None and state.controller.step == 1
        assert (state.route, router(kube)) == (Route(), 0)
        assert await p.plan_mirror_steps() == [0]  # the plan has it; nothing applies it
