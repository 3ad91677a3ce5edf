"""One driver per Rollout, cluster-wide: the coordination.k8s.io/v1 Lease (issue 12).

Against the FAKE Kubernetes API server (tests/fake_kube.py): real HTTP, resourceVersions
and 409s. Two "bastions" are two KubeLeases (or two sessions with two state folders), so
what keeps them apart is the Lease, not a lock file they happen to share.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from relconsole.assembly import Session, build_providers, demo_config, open_session
from relconsole.clock import FastClock
from relconsole.model import Actor, Mode
from relconsole.providers.argo import lease as kl
from relconsole.providers.argo.kube import KubeConnection, KubeSettings, NotFound, connect
from tests.fake_kube import LEASES, FakeKube, LoggedRequest

TOKEN = "lease-token-0123456789abcdef"
NS = "shop"
NAME = "relconsole-checkout"
PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
ALICE = Actor(user="alice", host="bastion-1", ssh_client="192.0.2.7")
BOB = Actor(user="bob", host="bastion-2")
MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_kube_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
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


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "u",
                                                  "namespace": NS}}],
    }))
    return path


@pytest.fixture
def kubeconfig(tmp_path: Path, fake: FakeKube) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", fake.url)


@pytest.fixture
def make(kubeconfig: Path) -> Iterator[Callable[..., kl.KubeLeases]]:
    made: list[kl.KubeLeases] = []

    def build(check_interval: float = 0.05, connector: Callable[[], KubeConnection] | None = None,
              ) -> kl.KubeLeases:
        leases = kl.KubeLeases(KubeSettings(kubeconfig=kubeconfig), "checkout",
                               check_interval=check_interval, connector=connector)
        made.append(leases)
        return leases

    yield build
    for leases in made:
        leases.close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until `condition()` holds (the lease thread works at its own pace)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def lease_requests(fake: FakeKube, method: str | None = None) -> list[LoggedRequest]:
    return [r for r in fake.requests_to(method) if r.path.startswith(PATH)]


def stored(fake: FakeKube) -> dict[str, Any]:
    obj = fake.get_object(LEASES, NS, NAME)
    assert obj is not None
    return obj


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed_lease(fake: FakeKube, holder: str, renewed: datetime, *, duration: int = 15,
               transitions: int = 3) -> dict[str, Any]:
    return fake.seed(LEASES, NS, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                 "acquireTime": stamp(renewed - timedelta(minutes=5)),
                 "renewTime": stamp(renewed), "leaseTransitions": transitions}})


def stale_reads(kubeconfig: Path, *views: dict[str, Any] | None) -> Callable[[], KubeConnection]:
    """A connection whose first GETs of the Lease answer `views` (None: 404), as a console
    that read it a moment before another console wrote it would have seen it."""
    def build() -> KubeConnection:
        conn = connect(KubeSettings(kubeconfig=kubeconfig))
        real = conn.get_lease
        queue = list(views)

        async def get_lease(name: str, *, namespace: str | None = None) -> dict[str, Any]:
            if queue:
                view = queue.pop(0)
                if view is None:
                    raise NotFound(f'kubernetes: leases "{name}" not found (HTTP 404)', code=404)
                return view
            return await real(name, namespace=namespace)

        conn.get_lease = get_lease  # type: ignore[method-assign]
        return conn
    return build


# --- the requests -----------------------------------------------------------------------------


def test_acquire_creates_the_lease_naming_the_console(fake: FakeKube, make) -> None:
    lease = make().acquire(ALICE, ttl=30)
    assert lease is not None and lease.held
    get, post = lease_requests(fake)[:2]
    assert (get.method, get.path, get.status) == ("GET", f"{PATH}/{NAME}", 404)
    assert (post.method, post.path, post.status) == ("POST", PATH, 201)
    assert post.content_type == "application/json"
    body = post.body
    assert body["kind"] == "Lease" and body["apiVersion"] == "coordination.k8s.io/v1"
    assert body["metadata"]["name"] == NAME and body["metadata"]["namespace"] == NS
    spec = body["spec"]
    # Who: the actor, then the pid and a random part (two consoles of one user differ).
    assert re.fullmatch(rf"alice@bastion-1/{os.getpid()}-[0-9a-f]{{8}}", spec["holderIdentity"])
    assert spec["leaseDurationSeconds"] == 30 and spec["leaseTransitions"] == 0
    assert MICRO.match(spec["acquireTime"]) and spec["renewTime"] == spec["acquireTime"]
    about = json.loads(body["metadata"]["annotations"][kl.DRIVER_ANNOTATION])
    assert about["holder"] == "alice@bastion-1" and about["pid"] == os.getpid()
    assert about["ssh_client"] == "192.0.2.7"
    assert lease.info.describe().startswith(f"alice@bastion-1 (pid {os.getpid()}, ssh from ")
    lease.release()


def test_renewal_puts_back_the_version_it_read_with_a_later_renew_time(fake: FakeKube,
                                                                       make) -> None:
    lease = make().acquire(ALICE, ttl=3)  # renewed every second
    assert lease is not None
    created = stored(fake)
    wait_for(lambda: bool(lease_requests(fake, "PUT")))
    put = lease_requests(fake, "PUT")[0]
    assert put.path == f"{PATH}/{NAME}" and put.content_type == "application/json"
    assert put.status == 200
    assert put.body["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    spec, before = put.body["spec"], created["spec"]
    assert spec["holderIdentity"] == before["holderIdentity"]
    assert spec["acquireTime"] == before["acquireTime"]  # the same holder: not re-acquired
    assert spec["renewTime"] > before["renewTime"] and MICRO.match(spec["renewTime"])
    assert spec["leaseTransitions"] == 0 and spec["leaseDurationSeconds"] == 3
    # The next renewal carries the version the last one produced.
    wait_for(lambda: len(lease_requests(fake, "PUT")) >= 2)
    first, second = lease_requests(fake, "PUT")[:2]
    assert second.body["metadata"]["resourceVersion"] != first.body["metadata"]["resourceVersion"]
    assert lease.held and lease.renew_error is None
    lease.release()


def test_release_empties_the_holder_so_the_next_console_need_not_wait(fake: FakeKube,
                                                                      make) -> None:
    lease = make().acquire(ALICE, ttl=30)
    assert lease is not None
    rv = stored(fake)["metadata"]["resourceVersion"]
    lease.release()
    put = lease_requests(fake, "PUT")[-1]
    assert put.body["metadata"]["resourceVersion"] == rv  # conditional: never a blind write
    after = stored(fake)
    assert after["spec"]["holderIdentity"] == "" and after["spec"]["leaseDurationSeconds"] == 1
    assert kl.DRIVER_ANNOTATION not in (after["metadata"].get("annotations") or {})
    assert not lease.held
    lease.release()  # a second release writes nothing
    assert lease_requests(fake, "PUT")[-1] is put
    # Free at once, not only after the ttl; a new holder is a transition.
    again = make().acquire(BOB, ttl=30)
    assert again is not None and stored(fake)["spec"]["leaseTransitions"] == 1
    again.release()


def test_holding_and_the_heartbeat_read_what_the_thread_found(fake: FakeKube, make) -> None:
    """The engine asks every 0.5 s on the screen's event loop: no request may be made."""
    lease = make(check_interval=60).acquire(ALICE, ttl=300)
    assert lease is not None
    sent = len(fake.requests)
    for _ in range(200):
        assert lease.held and lease.beat() is None
    assert len(fake.requests) == sent
    lease.release()


# --- who drives ------------------------------------------------------------------------------


def test_a_second_console_watches_and_names_the_driver_without_writing(fake: FakeKube,
                                                                       make) -> None:
    first = make(check_interval=60).acquire(ALICE, ttl=300)  # quiet while we look
    assert first is not None
    fake.clear_log()
    other = make()
    assert other.acquire(BOB, ttl=30) is None
    assert [r.method for r in lease_requests(fake)] == ["GET"]  # looked, wrote nothing
    holder = other.current_holder()
    assert holder is not None and holder.holder == "alice@bastion-1"
    assert holder.describe().startswith(f"alice@bastion-1 (pid {os.getpid()}")
    first.release()
    assert other.current_holder() is None


def test_two_consoles_creating_the_lease_at_once_one_wins(fake: FakeKube, make,
                                                          kubeconfig: Path) -> None:
    winner = make().acquire(ALICE, ttl=30)
    # The loser's GET was answered 404 just before the winner's POST.
    loser = make(connector=stale_reads(kubeconfig, None)).acquire(BOB, ttl=30)
    assert winner is not None and loser is None
    posts = lease_requests(fake, "POST")
    assert [p.status for p in posts] == [201, 409]  # AlreadyExists: someone else won
    assert not lease_requests(fake, "PUT")  # and it did not try to overwrite
    assert stored(fake)["spec"]["holderIdentity"] == winner.identity
    winner.release()


def test_two_consoles_taking_an_expired_lease_at_once_one_wins(fake: FakeKube, make,
                                                               kubeconfig: Path) -> None:
    old = seed_lease(fake, "carol@bastion-3/77-0badf00d",
                     datetime.now(UTC) - timedelta(minutes=2))
    winner = make().acquire(ALICE, ttl=30)
    loser = make(connector=stale_reads(kubeconfig, old)).acquire(BOB, ttl=30)
    assert winner is not None and loser is None
    puts = lease_requests(fake, "PUT")
    assert [p.status for p in puts] == [200, 409]  # the second PUT carried a stale version
    assert stored(fake)["spec"]["holderIdentity"] == winner.identity
    winner.release()


def test_an_expired_lease_is_acquired_and_counts_a_transition(fake: FakeKube, make) -> None:
    seed_lease(fake, "carol@bastion-3/77-0badf00d", datetime.now(UTC) - timedelta(minutes=2),
               transitions=3)
    lease = make().acquire(ALICE, ttl=30)
    assert lease is not None
    spec = stored(fake)["spec"]
    assert spec["holderIdentity"] == lease.identity and spec["leaseTransitions"] == 4
    assert spec["acquireTime"] == spec["renewTime"]  # a new holder: acquired now
    lease.release()


def test_a_live_holder_is_taken_only_by_a_take_over_with_its_reason(fake: FakeKube,
                                                                    make) -> None:
    seed_lease(fake, "carol@bastion-3/77-0badf00d", datetime.now(UTC), transitions=3)
    leases = make()
    assert leases.acquire(ALICE, ttl=30) is None
    assert stored(fake)["spec"]["holderIdentity"] == "carol@bastion-3/77-0badf00d"
    lease = leases.take_over(ALICE, ttl=30, reason="carol's laptop is asleep")
    spec = stored(fake)["spec"]
    assert spec["holderIdentity"] == lease.identity and spec["leaseTransitions"] == 4
    holder = leases.current_holder()
    assert holder is not None and holder.taken_over == "carol's laptop is asleep"
    lease.release()


def test_the_driver_taken_over_notices_and_names_who_and_why(fake: FakeKube, make) -> None:
    driver = make().acquire(ALICE, ttl=30)
    assert driver is not None
    taker = make().take_over(BOB, ttl=30, reason="alice is off shift")
    wait_for(lambda: not driver.held)
    why = driver.beat()
    assert why is not None and why.startswith("bob@bastion-2 (pid ")
    assert why.endswith("took over: alice is off shift")
    writes = len(lease_requests(fake, "PUT"))
    driver.release()  # someone else's now: the loser does not even try to write
    assert len(lease_requests(fake, "PUT")) == writes
    assert stored(fake)["spec"]["holderIdentity"] == taker.identity
    taker.release()


def test_lease_names_are_kubernetes_names(tmp_path: Path) -> None:
    assert kl.lease_name("checkout") == "relconsole-checkout"
    long = "a" * 250
    name = kl.lease_name(long)
    assert len(name) <= 253 and name != kl.lease_name("a" * 249 + "b")
    with pytest.raises(kl.KubeLeaseConfigError, match="not a Kubernetes object name"):
        kl.lease_name("Checkout_API")
    block = {"type": "argo-rollouts", "rollout": "web", "namespace": "shop",
             "kubeconfig": "kube/config", "context": "prod"}
    leases = kl.KubeLeases.from_block(block, base=tmp_path)
    assert leases.settings.kubeconfig == tmp_path / "kube" / "config"
    assert (leases.settings.context, leases.namespace, leases.name) == ("prod", "shop",
                                                                        "relconsole-web")
    with pytest.raises(kl.KubeLeaseConfigError, match="'rollout' is required"):
        kl.KubeLeases.from_block({"type": "argo-rollouts"})


# --- sessions: what assembly chooses ------------------------------------------------------------


def argo_config(kubeconfig: Path) -> Any:
    cfg = demo_config("healthy", auto_advance=False)
    traffic = {"type": "argo-rollouts", "rollout": "checkout", "namespace": NS,
               "kubeconfig": str(kubeconfig)}
    return dataclasses.replace(cfg, providers={**cfg.providers, "traffic": traffic})


def console(kubeconfig: Path, state: Path, actor: Actor, **kw: Any) -> Session:
    """A console on its own bastion: its own state folder, the simulator behind it (the
    traffic provider is not what is tested here), and the Rollout's traffic block."""
    sim = demo_config("healthy", auto_advance=False)
    providers = build_providers(sim, FastClock(), state=state)
    return open_session(argo_config(kubeconfig), clock=FastClock(), state=state, actor=actor,
                        providers=providers, **kw)


@pytest.fixture
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kl, "CHECK_INTERVAL", 0.05)


async def test_two_consoles_on_one_rollout_one_drives_the_other_names_it(
        fake: FakeKube, kubeconfig: Path, tmp_path: Path, quick_checks: None) -> None:
    first = console(kubeconfig, tmp_path / "bastion-1", ALICE)
    second = console(kubeconfig, tmp_path / "bastion-2", BOB)
    try:
        assert first.engine.mode is Mode.DRIVE
        assert second.engine.mode is Mode.WATCH and second.lease is None
        assert second.watch_reason.startswith(f"alice@bastion-1 (pid {os.getpid()}")
        assert second.watch_reason.endswith("drives this release")
        assert second.engine.snapshot().driver == "alice@bastion-1"
        assert "--take-over" in second.take_over_hint()
        # Not the file lease: neither state folder holds a lock.
        assert not (tmp_path / "bastion-1" / "lease").exists()
        assert stored(fake)["spec"]["holderIdentity"].startswith("alice@bastion-1/")
        # A watcher cannot take a live Lease without a take-over.
        refused = await second.take("my turn")
        assert refused is not None and refused.startswith("alice@bastion-1 (pid ")
    finally:
        await second.close()
        await first.close()
    assert stored(fake)["spec"]["holderIdentity"] == ""  # released on exit


async def test_a_watcher_takes_the_lease_once_the_driver_left(
        fake: FakeKube, kubeconfig: Path, tmp_path: Path, quick_checks: None) -> None:
    first = console(kubeconfig, tmp_path / "bastion-1", ALICE)
    second = console(kubeconfig, tmp_path / "bastion-2", BOB)
    try:
        await first.close()
        assert await second.take("alice went home") is None
        assert second.engine.mode is Mode.DRIVE and second.lease is not None
        assert stored(fake)["spec"]["holderIdentity"].startswith("bob@bastion-2/")
        took = [r for r in second.engine.journal.records() if r["intent"] == "lease.take"]
        assert took and took[-1]["after"]["driver"] == "bob@bastion-2"
    finally:
        await second.close()


async def test_take_over_on_another_bastion_demotes_the_driver_within_a_second(
        fake: FakeKube, kubeconfig: Path, tmp_path: Path, quick_checks: None) -> None:
    driver = console(kubeconfig, tmp_path / "bastion-1", ALICE)
    guard = asyncio.ensure_future(driver.engine.guard_lease())
    try:
        assert driver.engine.mode is Mode.DRIVE
        taker = console(kubeconfig, tmp_path / "bastion-2", BOB,
                        take_over="alice's session hung")
        assert taker.engine.mode is Mode.DRIVE
        record = next(r for r in taker.engine.journal.records()
                      if r["intent"] == "lease.take_over")
        assert record["reason"] == "alice's session hung"
        assert record["before"]["driver"] == "alice@bastion-1"
        await asyncio.wait_for(driver.engine.lease_lost.wait(), timeout=5)
        assert driver.engine.mode is Mode.WATCH
        lost = [e.message for e in driver.engine.recent_events() if "lease lost" in e.message]
        assert lost and "bob@bastion-2 (pid " in lost[-1]
        assert "took over: alice's session hung" in lost[-1]
        await taker.close()
    finally:
        guard.cancel()
        await driver.close()


async def test_the_file_lease_stays_for_every_other_traffic_provider(tmp_path: Path) -> None:
    session = open_session(demo_config("healthy"), clock=FastClock(), state=tmp_path)
    try:
        assert session.engine.mode is Mode.DRIVE
        assert (tmp_path / "lease").is_dir()
        assert kl.SHARED_KEY not in session.providers.shared
    finally:
        await session.close()


def test_a_traffic_block_without_a_rollout_is_one_config_message(tmp_path: Path) -> None:
    cfg = demo_config("healthy")
    cfg = dataclasses.replace(cfg, providers={**cfg.providers,
                                              "traffic": {"type": "argo-rollouts"}})
    from relconsole.config import ConfigError

    with pytest.raises(ConfigError, match="'rollout' is required"):
        open_session(cfg, clock=FastClock(), state=tmp_path)


# --- one driver host-wide: the shared state folder (engine/paths.py) ----------------------------

from relconsole.engine import paths  # noqa: E402  (this section's subject)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A host with nothing configured: no RELCONSOLE_STATE_DIR, the "system" folder
    where RELCONSOLE_SHARED_DIR says, the user's own state folder under a temporary home."""
    monkeypatch.delenv(paths.STATE_DIR_ENV, raising=False)
    system = tmp_path / "var-lib" / "relconsole"
    system.parent.mkdir()
    monkeypatch.setenv(paths.SHARED_DIR_ENV, str(system))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "home-state"))
    return {"system": system, "private": tmp_path / "home-state" / "relconsole"}


def set_up_by_admin(folder: Path, gid: int | None = None) -> Path:
    """What `install -d -o root -g relconsole -m 2770` makes."""
    folder.mkdir(exist_ok=True)
    if gid is not None:
        os.chown(folder, -1, gid)
    folder.chmod(0o2770)
    return folder


def test_the_default_state_folder_is_the_hosts_shared_one_once_set_up(host) -> None:
    set_up_by_admin(host["system"])
    choice = paths.choose_state_dir()
    assert choice == paths.StateChoice(host["system"], True, None)
    assert paths.state_dir() == host["system"]
    assert paths.state_warning() is None
    # Used as it is: not tightened to 0700, which would lock the group out.
    assert stat.S_IMODE(host["system"].stat().st_mode) == 0o2770


@pytest.mark.parametrize("problem", ["missing", "mode", "symlink", "owner", "parent"])
def test_without_a_safe_shared_folder_the_private_one_is_used_with_a_warning(
        host, tmp_path: Path, problem: str) -> None:
    system = host["system"]
    expected = {"missing": "does not exist", "mode": "has mode 0755; it needs 2770",
                "symlink": "is a symbolic link", "owner": "is owned by uid 54321, not by root",
                "parent": f"is inside {system.parent}, which anyone can write to"}[problem]
    if problem == "mode":
        system.mkdir()
        system.chmod(0o755)
    elif problem == "symlink":
        set_up_by_admin(tmp_path / "elsewhere")
        system.symlink_to(tmp_path / "elsewhere")
    elif problem == "owner":
        set_up_by_admin(system)
        os.chown(system, 54321, -1)
    elif problem == "parent":
        set_up_by_admin(system)
        system.parent.chmod(0o777)  # not sticky: anyone could rename the folder away
    choice = paths.choose_state_dir()
    assert choice.path == host["private"] and not choice.shared
    warning = paths.state_warning()
    assert warning is not None and warning == choice.warning
    assert f"{system}, {expected}" in warning
    assert f"kept in your own {host['private']} instead" in warning
    assert "others on this host will not see that you drive this release" in warning
    assert f"install -d -o root -g relconsole -m 2770 {system}" in warning
    made = paths.state_dir()
    assert made == host["private"] and stat.S_IMODE(made.stat().st_mode) == 0o700


def test_a_folder_chosen_explicitly_wins_and_never_warns(host, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    set_up_by_admin(host["system"])
    assert paths.choose_state_dir(tmp_path / "mine").path == tmp_path / "mine"
    assert paths.state_warning(tmp_path / "mine") is None
    monkeypatch.setenv(paths.STATE_DIR_ENV, str(tmp_path / "from-env"))
    assert paths.state_dir() == tmp_path / "from-env"
    monkeypatch.setenv(paths.SHARED_DIR_ENV, str(tmp_path / "nowhere"))
    assert paths.state_warning() is None  # chosen: whoever chose it knows who shares it


def test_inside_the_shared_folder_what_is_made_is_for_the_group(host) -> None:
    system = set_up_by_admin(host["system"])
    old = os.umask(0o077)  # a strict umask must not lock the group out
    try:
        lease_dir = paths.ensure_private_dir(system / "lease")
        deep = paths.ensure_private_dir(system / "demo" / "journal")
        lock = lease_dir / "r.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, paths.file_mode(lock))
        paths.fix_file_mode(fd, lock)
        os.close(fd)
    finally:
        os.umask(old)
    for folder in (lease_dir, deep, deep.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o2770, folder
    assert stat.S_IMODE(lock.stat().st_mode) == 0o660
    private = paths.ensure_private_dir(host["private"] / "lease")
    assert paths.file_mode(private / "r.lock") == 0o600
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    # A symlink planted where a folder should be is refused, not followed.
    (system / "journal").symlink_to(host["private"])
    with pytest.raises(NotADirectoryError, match="symlink"):
        paths.ensure_private_dir(system / "journal" / "x")


def as_user(uid: int, groups: list[int], job: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `job` in a child process under another uid (no passwd entry needed: we are
    root here, and a uid is just a number to the kernel). Returns what it returned."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os calls and code already imported
        code = 1
        try:
            os.close(read)
            os.setgroups(groups)
            os.setgid(groups[0] if groups else uid)
            os.setuid(uid)
            out = job()
            os.write(write, json.dumps(out).encode())
            code = 0
        except BaseException as exc:  # reported to the parent, whatever it is
            os.write(write, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(code)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(data or b"{}")


def attempt(fn: Callable[[], object]) -> str:
    try:
        fn()
    except PermissionError:
        return "denied"
    return "ok"


def test_two_accounts_in_the_group_share_lock_lease_and_journal_others_get_nothing(
        tmp_path: Path) -> None:
    import fcntl
    import tempfile

    if os.geteuid() != 0:  # pragma: no cover - CI runs these tests as root
        raise AssertionError("this test switches uids and needs root")
    # pytest's tmp_path is 0700; the accounts need to reach the folder, as /var/lib is.
    top = Path(tempfile.mkdtemp(prefix="relconsole-host-"))
    try:
        top.chmod(0o755)
        system = set_up_by_admin(top / "relconsole", gid=50000)
        alice, bob, mallory = 50001, 50002, 50003
        lock = system / "lease" / "r.lock"
        info = system / "lease" / "r.json"
        journal = system / "journal" / "r.jsonl"

        def create(path: Path, data: bytes, flags: int) -> None:
            fd = os.open(path, flags | os.O_CREAT, paths.file_mode(path))
            try:
                paths.fix_file_mode(fd, path)
                os.write(fd, data)
            finally:
                os.close(fd)

        def alice_drives() -> dict[str, Any]:
            paths.ensure_private_dir(lock.parent)
            paths.ensure_private_dir(journal.parent)
            create(lock, b"", os.O_RDWR)
            create(info, b'{"holder": "alice"}', os.O_WRONLY)
            create(journal, b'{"seq": 1}\n', os.O_WRONLY | os.O_APPEND)
            return {}

        def bob_takes_over() -> dict[str, Any]:
            fd = os.open(lock, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen = info.read_text()
            fresh = info.with_name(".r.json.tmp")
            create(fresh, b'{"holder": "bob"}', os.O_WRONLY)
            os.replace(fresh, info)  # what every renewal and take-over does
            with open(journal, "a") as f:
                f.write('{"seq": 2}\n')
            os.close(fd)
            return {"seen": seen}

        def mallory_tries() -> dict[str, Any]:
            return {
                "list": attempt(lambda: os.listdir(system)),
                "read": attempt(lambda: journal.read_text()),
                "plant": attempt(lambda: (system / "lease" / "evil").symlink_to("/etc")),
            }

        umask = os.umask(0o022)  # the usual umask: group write must survive it
        try:
            assert as_user(alice, [50000], alice_drives) == {}
            assert as_user(bob, [50000], bob_takes_over) == {"seen": '{"holder": "alice"}'}
            assert as_user(mallory, [], mallory_tries) == {"list": "denied", "read": "denied",
                                                           "plant": "denied"}
            # Who may use it as the default: members; an outsider is told why not.
            assert as_user(bob, [50000], lambda: {"problem": paths.shared_dir_problem(system)}
                           ) == {"problem": None}
            assert as_user(mallory, [], lambda: {"problem": paths.shared_dir_problem(system)}
                           ) == {"problem": "belongs to group 50000, which you are not in"}
        finally:
            os.umask(umask)
        assert journal.read_text() == '{"seq": 1}\n{"seq": 2}\n'
        assert info.read_text() == '{"holder": "bob"}'
        for path in (lock, journal):
            st = path.stat()
            assert st.st_gid == 50000 and stat.S_IMODE(st.st_mode) == 0o660, path
    finally:
        import shutil

        shutil.rmtree(top)


def test_two_processes_of_this_user_meet_one_driver_through_the_shared_folder(
        host, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.test_crash_and_signals import ROOT, fast_config, read_until

    system = set_up_by_admin(host["system"])
    cfg = fast_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != paths.STATE_DIR_ENV}
    env.update({paths.SHARED_DIR_ENV: str(system), "XDG_STATE_HOME": str(tmp_path / "xdg")})
    driver = subprocess.Popen(
        [sys.executable, "-m", "relconsole", "run", "-c", str(cfg), "--headless", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        read_until(driver, lambda e: e["event"] == "step" and e["weight"] == 1)
        other = subprocess.run(
            [sys.executable, "-m", "relconsole", "pause", "-c", str(cfg), "--reason", "mine"],
            capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)
        assert other.returncode == 1
        assert f"pid {driver.pid}" in other.stderr and "--take-over" in other.stderr
        assert list((system / "lease").glob("*.lock"))  # met in the shared folder
        assert not (tmp_path / "xdg" / "relconsole").exists()  # not in a private one
    finally:
        driver.kill()
        driver.communicate(timeout=10)
