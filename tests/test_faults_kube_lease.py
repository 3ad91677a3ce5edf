"""Fault matrix, the driver Lease on Kubernetes (docs/faults.md, "Argo Rollouts: the
driver Lease"): what a console sees, what it does, what its journal records when the
Lease is lost or cannot be had. Against the FAKE API server of tests/fake_kube.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from relconsole.model import Mode
from relconsole.providers.argo import lease as kl
from tests.fake_kube import LEASES, FakeKube
from tests.faults.proxy import Fault, FaultProxy
from tests.test_kube_lease import (
    ALICE,
    BOB,
    NAME,
    NS,
    PATH,
    TOKEN,
    console,
    lease_requests,
    seed_lease,
    stale_reads,
    stored,
    write_kubeconfig,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def no_kube_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "HTTPS_PROXY", "HTTP_PROXY",
                "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    server = FakeKube(token=TOKEN, user="alice")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def kubeconfig(tmp_path: Path, fake: FakeKube) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", fake.url)


def journal_intents(state: Path) -> list[str]:
    import json

    folder = state / "journal"
    if not folder.exists():
        return []
    return [json.loads(line)["intent"] for path in folder.glob("*.jsonl")
            for line in path.read_text().splitlines()]


def lease_messages(session: object) -> list[str]:
    engine = session.engine  # type: ignore[attr-defined]
    return [e.message for e in engine.recent_events() if "lease lost" in e.message]


async def test_kube_lease_fault_409_on_renew_demotes_the_driver(
        fake: FakeKube, kubeconfig: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Every check is a renewal (ttl 6 s: renewed every 2 s), so the 409 comes on the PUT.
    monkeypatch.setattr(kl, "CHECK_INTERVAL", 2.0)
    state = tmp_path / "bastion-1"
    driver = console(kubeconfig, state, ALICE, lease_ttl=6)
    guard = asyncio.ensure_future(driver.engine.guard_lease())
    try:
        assert driver.engine.mode is Mode.DRIVE
        before = journal_intents(state)
        # Someone else writes the Lease (a console that does not play by the rules).
        url = f"{fake.url}{PATH}/{NAME}"
        theirs = requests.get(url, headers=AUTH, timeout=5).json()
        theirs["spec"]["holderIdentity"] = "mallory@bastion-9/1-deadbeef"
        assert requests.put(url, json=theirs, headers=AUTH, timeout=5).status_code == 200
        await asyncio.wait_for(driver.engine.lease_lost.wait(), timeout=10)
        assert driver.engine.mode is Mode.WATCH
        lost = lease_messages(driver)
        assert lost and "mallory@bastion-9/1-deadbeef (no pid) since " in lost[-1]
        assert f"holds the Lease {NS}/{NAME} now" in lost[-1]
        assert lost[-1].endswith("this console is now watch-only")
        statuses = [(r.method, r.status) for r in lease_requests(fake)]
        conflict = statuses.index(("PUT", 409))
        assert statuses[conflict + 1] == ("GET", 200)  # who has it? — not a blind retry
        assert ("PUT", 200) not in statuses[conflict:]
        await driver.close()
        assert ("PUT", 200) not in [(r.method, r.status) for r in lease_requests(fake)][conflict:]
        assert stored(fake)["spec"]["holderIdentity"] == "mallory@bastion-9/1-deadbeef"
        assert journal_intents(state) == before  # the demoted console writes nothing more
    finally:
        guard.cancel()
        await driver.close()


@pytest.mark.parametrize("fault", ["refuse", "hang"])
async def test_kube_lease_fault_api_unreachable_during_renew_stops_before_expiry(
        fake: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    monkeypatch.setattr(kl, "CHECK_INTERVAL", 0.1)
    proxy = FaultProxy(upstream=("127.0.0.1", int(fake.url.rsplit(":", 1)[1])))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", proxy.url)
    state = tmp_path / "bastion-1"
    driver = console(kubeconfig, state, ALICE, lease_ttl=6)
    guard = asyncio.ensure_future(driver.engine.guard_lease())
    try:
        assert driver.engine.mode is Mode.DRIVE
        before = journal_intents(state)
        # The API server goes away: the port closes, or answers stop coming.
        proxy.set(Fault.refuse() if fault == "refuse" else Fault.hang())
        lease = driver.lease
        assert lease is not None
        expires = lease.info.expires  # when others may take it: last renewTime + ttl
        await asyncio.wait_for(driver.engine.lease_lost.wait(), timeout=15)
        # Stopped while the Lease was still certainly its own — never past its expiry.
        assert time.time() < expires
        assert driver.engine.mode is Mode.WATCH
        lost = lease_messages(driver)
        assert lost and f"the Lease {NS}/{NAME} could not be renewed since " in lost[-1]
        assert "stopped driving before the Lease could expire" in lost[-1]
        if fault == "refuse":
            assert f"(kubernetes: cannot reach {proxy.url}: connection refused)" in lost[-1]
        assert journal_intents(state) == before
    finally:
        guard.cancel()
        await driver.close()  # the server cannot be reached: gives up after a moment
        proxy.set(Fault.passthrough())  # ends the held connections before the proxy goes
        proxy.close()


@pytest.mark.parametrize("verb", ["get", "create", "update"])
async def test_kube_lease_fault_403_names_the_missing_verb_and_watches(
        fake: FakeKube, kubeconfig: Path, tmp_path: Path, verb: str) -> None:
    if verb == "update":  # an expired Lease is there: taking it is an update
        seed_lease(fake, "carol@bastion-3/77-0badf00d", datetime.now(UTC) - timedelta(hours=1))
    fake.forbid(verb, "leases")
    state = tmp_path / "bastion-1"
    session = console(kubeconfig, state, ALICE)
    try:
        assert session.engine.mode is Mode.WATCH and session.lease is None
        reason = session.watch_reason
        assert reason.startswith(f"cannot take the driver Lease {NS}/{NAME}: kubernetes: ")
        assert f'User "alice" cannot {verb} resource "leases" in API group ' \
               '"coordination.k8s.io"' in reason
        assert reason.endswith("(HTTP 403)")
        hint = session.take_over_hint()
        assert hint.startswith(reason) and "nothing was changed" in hint
        assert "--take-over" not in hint  # there is nobody to take it from
        assert journal_intents(state) == []
    finally:
        await session.close()


async def test_kube_lease_fault_api_unreachable_at_start_watches_with_one_line(
        tmp_path: Path) -> None:
    gone = FakeKube(token=TOKEN)
    url = gone.url
    gone.close()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
    state = tmp_path / "bastion-1"
    session = console(kubeconfig, state, ALICE)
    try:
        assert session.engine.mode is Mode.WATCH and session.lease is None
        assert session.watch_reason == (
            f"cannot take the driver Lease {NS}/{NAME}: kubernetes: cannot reach {url}: "
            "connection refused")
        assert "\n" not in session.take_over_hint()
        assert journal_intents(state) == []
    finally:
        await session.close()


async def test_kube_lease_fault_lease_deleted_mid_drive_demotes(
        fake: FakeKube, kubeconfig: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kl, "CHECK_INTERVAL", 0.05)
    state = tmp_path / "bastion-1"
    driver = console(kubeconfig, state, ALICE)
    guard = asyncio.ensure_future(driver.engine.guard_lease())
    try:
        before = journal_intents(state)
        gone = requests.delete(f"{fake.url}{PATH}/{NAME}", headers=AUTH, timeout=5)
        assert gone.status_code == 200
        await asyncio.wait_for(driver.engine.lease_lost.wait(), timeout=10)
        lost = lease_messages(driver)
        assert lost and f"the Lease {NS}/{NAME} was deleted — nobody drives" in lost[-1]
        await driver.close()
        assert fake.get_object(LEASES, NS, NAME) is None  # not re-created behind anyone
        assert journal_intents(state) == before
    finally:
        guard.cancel()
        await driver.close()


async def test_kube_lease_fault_take_over_race_is_not_retried(
        fake: FakeKube, kubeconfig: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the take-over's GET and its PUT, a third console takes the Lease: the 409
    is the answer, and the operator decides again on what is there now."""
    seen = seed_lease(fake, "carol@bastion-3/77-0badf00d", datetime.now(UTC))
    url = f"{fake.url}{PATH}/{NAME}"
    dave = dict(seen, spec={**seen["spec"], "holderIdentity": "dave@bastion-4/5-feedf00d"})
    assert requests.put(url, json=dave, headers=AUTH, timeout=5).status_code == 200
    # The taker read the Lease (twice: acquire, then take-over) before dave's write.
    monkeypatch.setattr(kl, "connect", lambda settings: stale_reads(kubeconfig, seen, seen,
                                                                    seen)())
    state = tmp_path / "bastion-2"
    session = console(kubeconfig, state, BOB, take_over="carol is unreachable")
    try:
        assert session.engine.mode is Mode.WATCH and session.lease is None
        assert session.watch_reason.startswith(
            f"cannot take over the driver Lease {NS}/{NAME}: it changed while it was being "
            "taken over")
        puts = [r.status for r in lease_requests(fake, "PUT")]
        assert puts == [200, 409]  # dave's write, then the take-over's one PUT: no retry
        assert stored(fake)["spec"]["holderIdentity"] == "dave@bastion-4/5-feedf00d"
        assert "lease.take_over" not in journal_intents(state)
    finally:
        await session.close()
