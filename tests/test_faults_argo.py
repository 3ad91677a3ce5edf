"""The argo-rollouts fault matrix (docs/faults.md): each row injected for real on the FAKE
Kubernetes API server, or on the wire in front of it, and the message an operator sees.

The engine treats a traffic `ProviderError` as for every traffic provider (no step; a pause
after `inconclusive_limit` polls without a traffic read); these tests pin what the provider
says and that it recovers by itself once the fault is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relconsole.providers.argo.provider import ArgoRolloutsTraffic
from relconsole.providers.base import ProviderError
from tests.fake_kube import CORE_EVENTS, ROLLOUTS, FakeKube
from tests.test_argo_provider import (
    ACTOR,
    MP,
    NS,
    RO,
    TOKEN,
    WEB,
    deploy,
    eventually,
    make,
    mutations,
    opened,
    read_error,
    rollout,
    sent,
    write_kubeconfig,
)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer kubeconfig, no cluster: each test writes the kubeconfig it needs."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
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


def step_of(state: Any) -> int | None:
    return state.controller.step if state.controller is not None else None


def lists_of_rollouts(kube: FakeKube) -> int:
    return len([r for r in kube.requests_to("GET", RO) if "watch" not in r.query])


# --- a gate on the wire: the API server's port closed, then open again ------------------


class Gate:
    """A TCP relay on a fixed port in front of the fake. `cut()` closes the port and every
    connection through it (the API server unreachable); `mend()` listens again."""

    def __init__(self, target: int) -> None:
        self._target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open = False
        self.mend()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mend(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener = listener
        self._open = True
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        self._open = False
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self._open and listener is self._listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def gate(kube: FakeKube) -> Iterator[Gate]:
    g = Gate(int(kube.url.rsplit(":", 1)[1]))
    try:
        yield g
    finally:
        g.cut()


# --- unreachable -------------------------------------------------------------------------


async def test_argo_fault_api_server_unreachable(kube: FakeKube, gate: Gate,
                                                 tmp_path: Path) -> None:
    deploy(kube, rollout(), passes=3)
    path = write_kubeconfig(tmp_path / "via-gate", gate.url)
    async with opened(make(path)) as p:
        assert step_of(await p.read()) == 1
        gate.cut()
        text = await read_error(p)
        assert text == f"argo-rollouts: cannot reach {gate.url}: connection refused"
        with pytest.raises(ProviderError) as info:
            await p.promote(full=False, reason="x", actor=ACTOR)
        assert str(info.value) == text  # nothing is sent blind

        # Argo moves on while relconsole cannot see it; once the port is back, it does.
        kube.mutate(ROLLOUTS, NS, "web", lambda ro: ro["status"].pop("pauseConditions"))
        kube.step_controller()
        gate.mend()
        state = await eventually(p.read, lambda s: step_of(s) == 2)
        assert state.controller is not None and state.controller.phase == "Progressing"
        for _ in range(5):
            await p.read()  # recovered: no error any more


async def test_argo_fault_api_server_unreachable_at_start(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens
    async with opened(make(write_kubeconfig(tmp_path / "k", url))) as p:
        with pytest.raises(ProviderError) as info:
            await p.read()
    assert str(info.value) == f"argo-rollouts: cannot reach {url}: connection refused"


# --- credentials and RBAC ----------------------------------------------------------------------


async def test_argo_fault_401_unauthorized(kube: FakeKube, config: Path,
                                           tmp_path: Path) -> None:
    deploy(kube, rollout(), passes=3)
    wrong = write_kubeconfig(tmp_path / "wrong", kube.url, {"token": "expired-token-000000"})
    async with opened(make(wrong)) as p:
        with pytest.raises(ProviderError) as info:
            await p.read()
    expected = ("argo-rollouts: 401 unauthorized: the credentials of user 'sso-admin' in "
                "context 'prod-eu' were refused (HTTP 401): log in again")
    assert str(info.value) == expected

    async with opened(make(config)) as p:
        await p.read()
        kube.unauthorized = True  # the token expires mid-release
        kube.drop_watches()
        assert await read_error(p) == expected
        kube.unauthorized = False
        await eventually(p.read, lambda s: step_of(s) == 1)


async def test_argo_fault_403_names_the_missing_verb_and_resource(
        kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    needs = ("it needs get, list and watch on rollouts.argoproj.io; list and watch on "
             "replicasets.apps; get on analysisruns.argoproj.io; patch on rollouts.argoproj.io "
             "and rollouts/status to act; create on events")
    kube.forbid("list", "rollouts")
    async with opened(make(config)) as p:
        with pytest.raises(ProviderError) as info:
            await p.read()
    assert str(info.value) == (
        'argo-rollouts: 403 forbidden: rollouts.argoproj.io is forbidden: User "alice" '
        'cannot list resource "rollouts" in API group "argoproj.io" in the namespace "shop" '
        "(HTTP 403) — grant the console's account 'list' on rollouts.argoproj.io in "
        f"namespace shop; {needs}")

    kube.allow_all()
    kube.forbid("watch", "rollouts")  # a Role with get and list only
    async with opened(make(config)) as p:
        await p.read()  # the list works
        assert await read_error(p) == (
            "argo-rollouts: 403 forbidden: the API server refused to let the console watch "
            "rollouts.argoproj.io in namespace shop (HTTP 403) — grant the console's account "
            f"'watch' on rollouts.argoproj.io in namespace shop; {needs}")
        kube.allow_all()  # the Role is fixed: the console follows again by itself
        await eventually(p.read, lambda s: step_of(s) == 1)

        kube.forbid("patch", "rollouts/status")
        kube.start_controller(interval=0.01)
        index = len(kube.requests)
        with pytest.raises(ProviderError) as info:
            await p.abort(reason="p99", actor=ACTOR)
        assert str(info.value).startswith(
            'argo-rollouts: 403 forbidden: rollouts.argoproj.io "web" is forbidden: User '
            '"alice" cannot patch resource "rollouts/status" in API group "argoproj.io" in '
            "the namespace \"shop\" (HTTP 403) — grant the console's account 'patch' on "
            "rollouts.argoproj.io (rollouts/status) in namespace shop")
        # Refused, so not sent again elsewhere and nothing claimed on the cluster.
        assert [sent(r)[:2] for r in mutations(kube, index)] == [("PATCH", f"{WEB}/status")]


# --- the watch --------------------------------------------------------------------------------


async def test_argo_fault_watch_dropped_mid_stream(kube: FakeKube,
                                                   config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    async with opened(make(config)) as p:
        await p.read()
        assert await asyncio.to_thread(kube.wait_for_watches, 2)
        assert lists_of_rollouts(kube) == 1
        kube.drop_watches()  # both streams cut without their closing chunk
        kube.mutate(ROLLOUTS, NS, "web", lambda ro: ro["status"].pop("pauseConditions"))
        kube.step_controller()
        deadline = time.monotonic() + 5
        while True:  # every read in between answers: a drop is never shown
            state = await p.read()
            if step_of(state) == 2:
                break
            assert time.monotonic() < deadline, "the change never arrived"
            await asyncio.sleep(0.02)
        assert lists_of_rollouts(kube) == 2  # re-listed, then watched again
        assert await asyncio.to_thread(kube.wait_for_watches, 2)


async def test_argo_fault_410_gone_relists(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    async with opened(make(config)) as p:
        await p.read()
        assert await asyncio.to_thread(kube.wait_for_watches, 2)
        # Something else is written, the server compacts its history, and ends the watches
        # (as at its own timeout); reopened from the last version they saw, they get 410.
        kube.seed(CORE_EVENTS, NS, {"metadata": {"name": "other"}, "reason": "Unrelated",
                                    "involvedObject": {"kind": "Pod", "name": "x"}})
        kube.compact()
        compacted = int(kube.resource_version)
        kube.end_watches()
        deadline = time.monotonic() + 5
        while lists_of_rollouts(kube) < 2:
            await p.read()  # never an error: 410 is handled by listing again
            assert time.monotonic() < deadline, "never listed again"
            await asyncio.sleep(0.02)
        expired = [r for r in kube.requests_to("GET", RO) if r.query.get("watch") == "true"]
        # Reopened from before the compaction: the fake answers an ERROR event, 410 Expired.
        assert int(expired[1].query["resourceVersion"]) < compacted
        kube.mutate(ROLLOUTS, NS, "web", lambda ro: ro["status"].pop("pauseConditions"))
        kube.step_controller()
        state = await eventually(p.read, lambda s: step_of(s) == 2)
        assert state.controller is not None
        assert lists_of_rollouts(kube) == 2
        watches = [r for r in kube.requests_to("GET", RO) if r.query.get("watch") == "true"]
        # The first watch, the one answered 410, and one from the new list's version.
        assert len(watches) == 3
        assert int(watches[2].query["resourceVersion"]) > int(watches[1].query["resourceVersion"])


# --- the Rollout itself ---------------------------------------------------------------------


async def test_argo_fault_rollout_deleted_mid_release(kube: FakeKube,
                                                      config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    async with opened(make(config)) as p:
        await p.read()
        kube.remove(ROLLOUTS, NS, "web")
        text = await read_error(p)
        assert text == ("argo-rollouts: rollout shop/web was deleted; relconsole stops "
                        "following it (restart the console once it exists again)")
        index = len(kube.requests)
        for act in (p.abort(reason="x", actor=ACTOR),
                    p.promote(full=False, reason="x", actor=ACTOR)):
            with pytest.raises(ProviderError) as info:
                await act
            assert str(info.value) == text
        assert mutations(kube, index) == []  # nothing sent to a Rollout that is gone


async def test_argo_fault_rollout_replaced_mid_release(kube: FakeKube, gate: Gate,
                                                       tmp_path: Path) -> None:
    deploy(kube, rollout(), passes=3)
    old_uid = kube.get_object(ROLLOUTS, NS, "web")["metadata"]["uid"]  # type: ignore[index]
    path = write_kubeconfig(tmp_path / "via-gate", gate.url)
    async with opened(make(path)) as p:
        await p.read()
        # Replaced while the console could not see it: no DELETED event ever arrives.
        gate.cut()
        await read_error(p)
        kube.remove(ROLLOUTS, NS, "web")
        new_uid = kube.seed(ROLLOUTS, NS, rollout())["metadata"]["uid"]
        kube.step_controller()
        gate.mend()
        text = await eventually(read_error_of(p), lambda t: "replaced" in t)
        assert text == (f"argo-rollouts: rollout shop/web was replaced (deleted and created "
                        f"again: uid {old_uid} is now {new_uid}); relconsole never follows a "
                        "different object: restart the console to follow the new one")
        index = len(kube.requests)
        with pytest.raises(ProviderError) as info:
            await p.abort(reason="x", actor=ACTOR)
        assert str(info.value) == text
        assert mutations(kube, index) == []


async def test_argo_fault_rollout_replaced_while_watched(kube: FakeKube,
                                                         config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    async with opened(make(config)) as p:
        await p.read()
        kube.remove(ROLLOUTS, NS, "web")
        kube.seed(ROLLOUTS, NS, rollout())
        kube.step_controller()  # the new one is Healthy at 100 %: never shown as ours
        text = await eventually(read_error_of(p), lambda t: "replaced" in t)
        assert "restart the console to follow the new one" in text


def read_error_of(p: ArgoRolloutsTraffic) -> Any:
    async def probe() -> str:
        return await read_error(p)
    return probe


# --- exec credential plugins --------------------------------------------------------------


def exec_plugin(tmp_path: Path, body: str) -> dict[str, Any]:
    path = tmp_path / "aws"
    path.write_text(f"#!{sys.executable}\nimport os, sys, time\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(path),
                     "interactiveMode": "Never"}}


async def test_argo_fault_exec_plugin_hangs(kube: FakeKube, tmp_path: Path) -> None:
    deploy(kube, rollout(), passes=3)
    user = exec_plugin(tmp_path, "time.sleep(60)")
    path = write_kubeconfig(tmp_path / "k", kube.url, user)
    started = time.monotonic()
    async with opened(make(path, timeout="700ms")) as p:
        with pytest.raises(ProviderError) as info:
            await p.read()
    assert time.monotonic() - started < 3  # bounded by the timeout, not by the plugin
    assert str(info.value) == ("argo-rollouts: the exec plugin aws of user 'sso-admin' in "
                               "context 'prod-eu' did not answer within 0.7s and was killed")


async def test_argo_fault_exec_plugin_fails(kube: FakeKube, tmp_path: Path) -> None:
    deploy(kube, rollout(), passes=3)
    user = exec_plugin(tmp_path, 'print("botocore noise", file=sys.stderr)\n'
                       'print("Error loading SSO Token: Token for sso-admin has expired", '
                       "file=sys.stderr)\nsys.exit(255)")
    path = write_kubeconfig(tmp_path / "k", kube.url, user)
    async with opened(make(path)) as p:
        with pytest.raises(ProviderError) as info:
            await p.read()
    assert str(info.value) == (
        "argo-rollouts: the exec plugin aws of user 'sso-admin' in context 'prod-eu' exited "
        "with code 255: Error loading SSO Token: Token for sso-admin has expired")
    assert TOKEN not in str(info.value)


# --- the controller and the audit ------------------------------------------------------------


async def test_argo_fault_controller_does_not_act(kube: FakeKube,
                                                  config: Path) -> None:
    deploy(kube, rollout(), passes=3)  # the Argo controller is down from here on
    async with opened(make(config, verify_timeout="300ms")) as p:
        await p.read()
        with pytest.raises(ProviderError) as info:
            await p.abort(reason="p99 doubled", actor=ACTOR)
        assert str(info.value).startswith(
            "argo-rollouts: abort sent, but after 0.3s the controller still shows: rollout "
            "web: abort recorded, but the canary still gets 20% of traffic")
        state = await p.read()
        assert state.canary_weight == 20  # the truth: traffic is still on the canary
        assert state.controller is not None
        assert state.controller.last_action.endswith("(not verified)")

        kube.start_controller(interval=0.01)  # the controller is back; the engine retries
        index = len(kube.requests)
        await p.abort(reason="p99 doubled", actor=ACTOR)
        assert [sent(r) for r in mutations(kube, index)][:1] == [
            ("PATCH", f"{WEB}/status", MP, {"status": {"abort": True}})]
        assert (await p.read()).canary_weight == 0
    kinds = [(e["type"], "NOT VERIFIED" in e["message"])
             for e in kube.objects(CORE_EVENTS, NS) if e["reason"] == "RelconsoleAbort"]
    assert sorted(kinds) == [("Warning", False), ("Warning", True)]


async def test_argo_fault_audit_refused(kube: FakeKube, config: Path) -> None:
    deploy(kube, rollout(), passes=3)
    kube.forbid("create", "events")
    kube.forbid("patch", "rollouts")  # the main resource: the annotation; /status still works
    async with opened(make(config)) as p:
        await p.read()
        kube.start_controller(interval=0.01)
        await p.promote(full=False, reason="gates green", actor=ACTOR)  # verified: no raise
        state = await p.read()
        assert state.controller is not None
        assert state.controller.last_action == (
            "advance by alice@bastion-1: gates green (audit Event not written: 403: cannot "
            "create events in namespace shop; annotation relconsole.dev/last-action not "
            "written: 403: cannot patch rollouts.argoproj.io in namespace shop)")
        assert p.audit_problem.startswith("audit Event not written: 403")
        assert (state.controller.step or 0) >= 2
