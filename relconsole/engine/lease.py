"""One driver per release (safety rule 4): an flock on a lock file decides who drives.

The flock is the truth. The kernel drops it when its holder's process dies, however it
dies (kill -9, lost SSH session, OOM), so a crashed console never blocks the next one.
Beside the lock sits a JSON info file naming the holder; it is only for display (and a
future take-over rule), which is why an expired info file on a lock that is still held
means "held" and why the info file does not need fsync.

The lock file is never deleted: deleting it while another process has it open would let
two processes hold locks on two different files, i.e. two drivers. The one exception is
an operator's explicit take-over (`Lease.take_over`), which replaces it on purpose; the
previous holder sees `held` turn False and stops driving.

Caveat: an os.fork() child shares its parent's lock; relconsole's own subprocesses do not
inherit it because the descriptor is opened close-on-exec.

Times in the info file are wall-clock seconds (`WALL_CLOCK`), never the engine's clock:
they are compared across processes, and a demo's simulated clock runs `--speed` times
faster than the next console's, which made a live driver look long expired (and a hung
fast one look alive for hours).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import json
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from relconsole.clock import Clock
from relconsole.engine.paths import ensure_private_dir, file_mode, fix_file_mode, safe_name
from relconsole.model import Actor

# A watcher's current_holder() probe holds a shared lock for microseconds; an acquire that
# collides with it should not conclude "someone drives". Real time: this waits on the OS.
ACQUIRE_ATTEMPTS = 5
ACQUIRE_RETRY_DELAY = 0.02


class WallClock:
    """time.time(): the one clock every process on the host reads alike."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


WALL_CLOCK = WallClock()


class LeaseError(Exception):
    """The lease files could not be created or written (not "someone else drives")."""


@dataclass(frozen=True)
class LeaseInfo:
    holder: str  # "alice@bastion-1"
    pid: int
    host: str
    since: float
    expires: float
    ssh_client: str | None = None
    taken_over: str = ""
    """Why this holder took the lease from another (its --take-over reason), if it did."""

    def expired(self, now: float | None = None) -> bool:
        """Held but not renewed in time: the holder is alive but hung (or stopped).

        `now` is wall-clock time (the default); an engine's clock is not comparable.
        """
        return (WALL_CLOCK.now() if now is None else now) > self.expires

    def describe(self, now: float | None = None) -> str:
        """'alice@bastion-1 (pid 4242) since 13:02:11', in local time, for the header."""
        now = WALL_CLOCK.now() if now is None else now
        start = datetime.fromtimestamp(self.since).astimezone()
        today = datetime.fromtimestamp(now).astimezone().date()
        when = f"{start:%H:%M:%S}" if start.date() == today else f"{start:%Y-%m-%d %H:%M:%S}"
        who = f"pid {self.pid}"
        if self.ssh_client:
            who += f", ssh from {self.ssh_client}"
        text = f"{self.holder} ({who}) since {when}"
        if now > self.expires:
            # Still running (it holds the lock) but not renewing: probably hung.
            text += f", not renewed for {now - self.expires:.0f}s past expiry"
        return text

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> LeaseInfo | None:
        if not isinstance(raw, dict):
            return None
        try:
            ssh = raw.get("ssh_client")
            return cls(
                holder=str(raw["holder"]),
                pid=int(raw["pid"]),
                host=str(raw["host"]),
                since=float(raw["since"]),
                expires=float(raw["expires"]),
                ssh_client=None if ssh is None else str(ssh),
                taken_over=str(raw.get("taken_over") or ""),
            )
        except (KeyError, TypeError, ValueError):
            return None


def _paths(state_dir: Path, release_id: str) -> tuple[Path, Path]:
    base = Path(state_dir) / "lease"
    name = safe_name(release_id)
    return base / f"{name}.lock", base / f"{name}.json"


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file our descriptor has locked."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _try_lock(lock_path: Path) -> int | None:
    for attempt in range(ACQUIRE_ATTEMPTS):
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                     file_mode(lock_path))
        try:
            fix_file_mode(fd, lock_path)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if attempt + 1 < ACQUIRE_ATTEMPTS:
                time.sleep(ACQUIRE_RETRY_DELAY)
            continue
        except BaseException:
            os.close(fd)
            raise
        # Someone may have deleted and recreated the file between our open and flock;
        # a lock on the orphaned file would exclude nobody.
        if _same_file(fd, lock_path):
            return fd
        os.close(fd)
    return None


def _write_info(info_path: Path, info: LeaseInfo) -> None:
    tmp = info_path.with_name(f".{info_path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                 file_mode(info_path))
    try:
        fix_file_mode(fd, info_path)
        os.write(fd, json.dumps(info.to_json()).encode() + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, info_path)  # readers see the old or the new file, never half of one


def _read_info(info_path: Path) -> LeaseInfo | None:
    try:
        return LeaseInfo.from_json(json.loads(info_path.read_bytes()))
    except (OSError, ValueError):
        return None


class Lease:
    """A held lease. Keep the object alive for as long as this console drives."""

    def __init__(
        self, fd: int, lock_path: Path, info_path: Path, info: LeaseInfo, wall: Clock, ttl: float
    ) -> None:
        self._fd: int | None = fd
        self._lock_path = lock_path
        self._info_path = info_path
        self._wall = wall
        self.ttl = ttl
        self.info = info
        self.renew_error: str | None = None  # last failure to refresh the info file

    @classmethod
    def acquire(
        cls, state_dir: Path, release_id: str, actor: Actor, *, ttl: float = 30.0,
        wall: Clock = WALL_CLOCK,
    ) -> Lease | None:
        """Take the lease, or None when a live process holds it (see current_holder).

        `ttl` is in wall-clock seconds; `wall` is replaceable for tests only.
        """
        lock_path, info_path = _paths(state_dir, release_id)
        try:
            ensure_private_dir(lock_path.parent)
            fd = _try_lock(lock_path)
        except OSError as exc:
            raise LeaseError(f"cannot take the lease in {lock_path.parent}: {exc}") from exc
        if fd is None:
            return None
        now = wall.now()
        info = LeaseInfo(
            holder=f"{actor.user}@{actor.host}",
            pid=os.getpid(),
            host=actor.host,
            since=now,
            expires=now + ttl,
            ssh_client=actor.ssh_client,
        )
        lease = cls(fd, lock_path, info_path, info, wall, ttl)
        try:
            _write_info(info_path, info)
        except OSError as exc:
            # Others would be shown a previous holder's name; better not to drive at all.
            lease.release()
            raise LeaseError(f"cannot record the lease holder in {info_path}: {exc}") from exc
        return lease

    @classmethod
    def take_over(
        cls, state_dir: Path, release_id: str, actor: Actor, *, ttl: float = 30.0,
        wall: Clock = WALL_CLOCK, reason: str = "",
    ) -> Lease:
        """Take the lease from a live holder (an operator's explicit decision).

        `reason` is kept in the lease's info file, so the console that lost the lease
        can say why at once, before the journal record of the take-over is written.

        A fresh lock file, locked first, is renamed over the old one: the previous
        holder's lock now guards an orphaned file, its `held` turns False, and it must
        stop driving. This is the one place the lock file is replaced.
        """
        lock_path, info_path = _paths(state_dir, release_id)
        fresh = lock_path.with_name(f".{lock_path.name}.takeover-{os.getpid()}")
        try:
            ensure_private_dir(lock_path.parent)
            fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
                         | os.O_NOFOLLOW, file_mode(lock_path))
            fix_file_mode(fd, lock_path)
        except OSError as exc:
            raise LeaseError(f"cannot take the lease in {lock_path.parent}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(fresh, lock_path)
        except OSError as exc:
            os.close(fd)
            with suppress(FileNotFoundError):
                fresh.unlink()
            raise LeaseError(f"cannot take the lease over: {exc}") from exc
        now = wall.now()
        info = LeaseInfo(
            holder=f"{actor.user}@{actor.host}", pid=os.getpid(), host=actor.host,
            since=now, expires=now + ttl, ssh_client=actor.ssh_client, taken_over=reason,
        )
        lease = cls(fd, lock_path, info_path, info, wall, ttl)
        try:
            _write_info(info_path, info)
        except OSError as exc:
            lease.release()
            raise LeaseError(f"cannot record the lease holder in {info_path}: {exc}") from exc
        return lease

    @property
    def held(self) -> bool:
        """False once released, or if someone deleted the lock file under us (then a
        second console could lock a fresh file: treat that as having lost the lease)."""
        return self._fd is not None and _same_file(self._fd, self._lock_path)

    def renew(self) -> None:
        """Push the displayed expiry to now + ttl. A no-op once released or lost."""
        if not self.held:
            return  # writing now could overwrite a new holder's info
        info = dataclasses.replace(self.info, expires=self._wall.now() + self.ttl)
        try:
            _write_info(self._info_path, info)
        except OSError as exc:
            # The lock, not the file, is what keeps others out; report, don't crash.
            self.renew_error = str(exc)
            return
        self.info = info
        self.renew_error = None

    def release(self) -> None:
        """Give up the lease; safe to call more than once."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _same_file(fd, self._lock_path):
                with suppress(FileNotFoundError):
                    self._info_path.unlink()  # while still locked: it cannot be someone else's
        finally:
            os.close(fd)  # drops the flock

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        with suppress(Exception):
            self.release()


def _driven(lock_path: Path) -> bool:
    """Whether a live process holds this lock file exclusively."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        # A shared probe: it fails only against an exclusive holder, and two watchers
        # probing at once do not disturb each other.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def current_holder(
    state_dir: Path, release_id: str, *, wall: Clock = WALL_CLOCK
) -> LeaseInfo | None:
    """Who drives the release now; None when nobody holds the lock (or its holder died)."""
    lock_path, info_path = _paths(state_dir, release_id)
    if not _driven(lock_path):
        return None
    for _ in range(ACQUIRE_ATTEMPTS):
        info = _read_info(info_path)
        if info is not None:
            return info
        time.sleep(ACQUIRE_RETRY_DELAY)  # the holder is between its flock and its info write
    now = wall.now()
    return LeaseInfo(holder="unknown", pid=0, host="", since=now, expires=now)


def any_driven(state_dir: Path) -> bool:
    """Whether a live process drives any release whose lease is kept in `state_dir`."""
    return any(_driven(lock) for lock in (Path(state_dir) / "lease").glob("*.lock"))
