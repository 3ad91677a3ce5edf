"""One driver per release: a second console cannot drive, sees who does, and takes over
as soon as the driver is gone — including when the driver was killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from relconsole.clock import FastClock
from relconsole.engine.lease import Lease, current_holder
from relconsole.model import Actor

ALICE = Actor("alice", "bastion-1", "10.0.0.5")
BOB = Actor("bob", "bastion-2")
RELEASE = "checkout-api-2.3.0-production"


@pytest.fixture
def clock() -> FastClock:
    return FastClock()


def test_first_acquire_wins_and_a_second_console_is_refused(
    tmp_path: Path, clock: FastClock
) -> None:
    first = Lease.acquire(tmp_path, RELEASE, ALICE, wall=clock)
    assert first is not None
    try:
        # Same process, separate open file description: flock still says no.
        assert Lease.acquire(tmp_path, RELEASE, BOB, wall=clock) is None
        holder = current_holder(tmp_path, RELEASE, wall=clock)
        assert holder is not None
        assert holder.holder == "alice@bastion-1"
        assert holder.pid == os.getpid()
        assert holder.ssh_client == "10.0.0.5"
        assert holder == first.info
    finally:
        first.release()


def test_after_release_another_console_can_drive(tmp_path: Path, clock: FastClock) -> None:
    first = Lease.acquire(tmp_path, RELEASE, ALICE, wall=clock)
    assert first is not None
    first.release()
    first.release()  # idempotent
    assert current_holder(tmp_path, RELEASE, wall=clock) is None

    second = Lease.acquire(tmp_path, RELEASE, BOB, wall=clock)
    assert second is not None
    with second:
        holder = current_holder(tmp_path, RELEASE, wall=clock)
        assert holder is not None and holder.holder == "bob@bastion-2"
    assert current_holder(tmp_path, RELEASE, wall=clock) is None


def test_leases_of_different_releases_are_independent(tmp_path: Path, clock: FastClock) -> None:
    a = Lease.acquire(tmp_path, "a", ALICE, wall=clock)
    b = Lease.acquire(tmp_path, "b", BOB, wall=clock)
    assert a is not None and b is not None
    a.release()
    b.release()


def test_renew_moves_the_expiry_and_an_expired_but_held_lease_still_counts(
    tmp_path: Path, clock: FastClock
) -> None:
    lease = Lease.acquire(tmp_path, RELEASE, ALICE, ttl=30, wall=clock)
    assert lease is not None
    try:
        clock.advance(20)
        lease.renew()
        assert lease.info.expires == clock.now() + 30
        assert current_holder(tmp_path, RELEASE, wall=clock).expires == clock.now() + 30  # type: ignore[union-attr]

        clock.advance(300)  # the holder is alive but has stopped renewing (hung?)
        holder = current_holder(tmp_path, RELEASE, wall=clock)
        assert holder is not None  # the flock decides, not the expiry
        assert "not renewed" in holder.describe(clock.now())
        assert Lease.acquire(tmp_path, RELEASE, BOB, wall=clock) is None
    finally:
        lease.release()


def test_describe_names_holder_pid_and_local_start_time(tmp_path: Path, clock: FastClock) -> None:
    lease = Lease.acquire(tmp_path, RELEASE, Actor("alice", "bastion-1"), wall=clock)
    assert lease is not None
    with lease:
        text = lease.info.describe(clock.now() + 5)
    hhmmss = datetime.fromtimestamp(clock.now()).strftime("%H:%M:%S")
    assert text == f"alice@bastion-1 (pid {os.getpid()}) since {hhmmss}"


def test_a_deleted_lock_file_means_the_lease_is_lost(tmp_path: Path, clock: FastClock) -> None:
    lease = Lease.acquire(tmp_path, RELEASE, ALICE, wall=clock)
    assert lease is not None
    assert lease.held
    (tmp_path / "lease" / f"{RELEASE}.lock").unlink()
    assert not lease.held  # the engine must stop driving: someone else can lock a new file
    other = Lease.acquire(tmp_path, RELEASE, BOB, wall=clock)
    assert other is not None
    lease.renew()  # must not overwrite the new holder's name
    lease.release()  # must not delete the new holder's info
    assert current_holder(tmp_path, RELEASE, wall=clock).holder == "bob@bastion-2"  # type: ignore[union-attr]
    other.release()


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from relconsole.engine.lease import Lease
    from relconsole.model import Actor

    lease = Lease.acquire(Path(sys.argv[1]), sys.argv[2], Actor("carol", "bastion-9"))
    print("held" if lease else "refused", flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def child_driver(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), RELEASE],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_driver_killed_with_sigkill_frees_the_lease(
    tmp_path: Path, clock: FastClock, child_driver: subprocess.Popen[str]
) -> None:
    assert child_driver.stdout is not None
    assert child_driver.stdout.readline().strip() == "held"

    assert Lease.acquire(tmp_path, RELEASE, ALICE, wall=clock) is None
    holder = current_holder(tmp_path, RELEASE, wall=clock)
    assert holder is not None
    assert holder.pid == child_driver.pid
    assert holder.holder == "carol@bastion-9"

    os.kill(child_driver.pid, signal.SIGKILL)  # no cleanup code runs
    child_driver.wait(timeout=10)

    # Its info file is still on disk, but nobody holds the lock any more.
    assert current_holder(tmp_path, RELEASE, wall=clock) is None
    mine = Lease.acquire(tmp_path, RELEASE, ALICE, wall=clock)
    assert mine is not None
    try:
        assert current_holder(tmp_path, RELEASE, wall=clock).pid == os.getpid()  # type: ignore[union-attr]
    finally:
        mine.release()
