"""The release journal: who did what, why, and what came of it — one JSON line per record.

Safety rule 2 makes the journal the first and last step of every mutating action, so a
record must be on disk (fsync'd) before `append` returns, and a failed write must never
leave half a record behind. Each record carries the SHA-256 of the previous line, and a
small head file names the last one, so `verify` notices an edited, removed or truncated
history. The chain has no key: it catches accidents and casual edits, not a determined
forger with write access to the state directory.

Writers serialise on an flock of the journal file itself; readers (watch-only consoles)
take no lock and simply ignore a last line that has no newline yet.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from relconsole.clock import Clock
from relconsole.engine.paths import ensure_private_dir, file_mode, fix_file_mode, safe_name
from relconsole.model import Actor

GENESIS = "0" * 64  # `prev` of the first record
LOCK_WAIT = 5.0  # real seconds; a writer holds the lock for one short write, never longer

_OS_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a parent of the path is not a directory",
    errno.ENOENT: "directory does not exist",
    errno.EIO: "I/O error",
}


class JournalError(Exception):
    """A record could not be written (or read); the message says why in plain words."""


def journal_path(state_dir: Path, release_id: str) -> Path:
    return Path(state_dir) / "journal" / f"{safe_name(release_id)}.jsonl"


def head_path(path: Path) -> Path:
    """`<release>.head` beside `<release>.jsonl`."""
    name = path.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    return path.with_name(f"{stem}.head")


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def explain_os_error(exc: OSError) -> str:
    detail = exc.strerror or str(exc)
    reason = _OS_REASONS.get(exc.errno or 0)
    return f"{reason} ({detail})" if reason and reason.lower() != detail.lower() else detail


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a payload.

    NaN and infinity are exactly what a broken metric produces (safety rule 1), and bare
    `NaN` is not JSON that jq or a SIEM will read, so they become strings. Objects this
    module does not understand are left to `default=str`, which is how a config Secret
    stays "***" instead of leaking its value.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _dumps(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _actor_dict(actor: Actor) -> dict[str, str | None]:
    out = {"user": actor.user, "host": actor.host, "ssh_client": actor.ssh_client}
    if actor.on_behalf_of:
        out["on_behalf_of"] = actor.on_behalf_of
    return out


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without newline) and whatever follows the last newline."""
    *lines, tail = data.split(b"\n")
    return lines, tail


def parse_line(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both derive from it
        return None
    return rec if isinstance(rec, dict) else None


def seq_of(rec: dict[str, Any] | None) -> int | None:
    seq = rec.get("seq") if rec is not None else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    # Makes a new file name durable; best effort because some filesystems refuse it.
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Journal:
    """One release's journal file. Writers append; watch-only consoles tail it."""

    def __init__(
        self,
        path: Path,
        clock: Clock,
        actor: Actor,
        *,
        release: str,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.actor = actor
        self.release = release
        self.read_only = read_only
        self.warnings: list[str] = []
        self._head = head_path(self.path)
        # One in-process writer at a time; the flock covers other processes and instances.
        self._mutex = threading.Lock()
        # Where the chain stands for the next append (kept in step with the file under lock).
        self._known_end = 0
        self._last_seq = 0
        self._last_hash = GENESIS
        # What poll_new has already handed out.
        self._poll_end = 0
        self._poll_seq = 0
        self._poll_ino: int | None = None

        if read_only:
            self._open_read_only()
        else:
            self._open_for_writing()

    # -- opening -----------------------------------------------------------------------

    def _open_read_only(self) -> None:
        # A watcher must never "repair" the driver's file: the incomplete line it sees may
        # be a write in progress. It just does not show it.
        try:
            st = os.stat(self.path)
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise JournalError(f"cannot read journal {self.path}: {explain_os_error(exc)}") from exc
        lines, tail = split_lines(data)
        self._poll_ino = st.st_ino
        self._poll_end = len(data) - len(tail)
        for raw in lines:
            self._poll_seq = seq_of(parse_line(raw)) or self._poll_seq
        if tail:
            self.warnings.append(
                f"{self.path.name}: the last line is incomplete (being written, or left by "
                "a crash); it is not shown"
            )

    def _open_for_writing(self) -> None:
        try:
            ensure_private_dir(self.path.parent)
            with self._locked() as fd:
                st = os.fstat(fd)
                # 0600, or 0660 in the host's shared folder (the group's drivers append).
                fix_file_mode(fd, self.path)
                self._sync(fd)
                self._poll_ino = st.st_ino
        except OSError as exc:
            raise JournalError(f"cannot open journal {self.path}: {explain_os_error(exc)}") from exc
        self._poll_end = self._known_end
        self._poll_seq = self._last_seq

    @contextmanager
    def _locked(self) -> Iterator[int]:
        existed = self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                     | os.O_NOFOLLOW, file_mode(self.path))
        try:
            if not existed:
                _fsync_dir(self.path.parent)
            # Real time, not the injected clock: this waits on the OS, not on the release.
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise JournalError(
                            f"cannot write journal {self.path}: another process has held its "
                            f"lock for more than {LOCK_WAIT:g}s"
                        ) from None
                    time.sleep(0.01)
            yield fd
        finally:
            os.close(fd)  # also drops the flock

    def _sync(self, fd: int) -> None:
        """Catch up with lines other writers added and cut off a crashed, half-written tail.

        Must be called with the lock held: then an incomplete last line cannot be a write
        in progress, only the remains of a writer that died mid-write.
        """
        size = os.fstat(fd).st_size
        if size < self._known_end:  # someone truncated the file: start over
            self._known_end, self._last_seq, self._last_hash = 0, 0, GENESIS
        if size == self._known_end:
            return
        data = os.pread(fd, size - self._known_end, self._known_end)
        lines, tail = split_lines(data)
        broken = tail
        if not tail and lines and parse_line(lines[-1]) is None:
            # Newline present but the JSON is not: e.g. zeroed blocks after a power loss.
            broken = lines.pop() + b"\n"
        for raw in lines:
            self._last_hash = sha256_hex(raw)
            seq = seq_of(parse_line(raw))
            # A damaged line still occupied a slot in the chain; verify reports it.
            self._last_seq = seq if seq is not None else self._last_seq + 1
        self._known_end += sum(len(raw) + 1 for raw in lines)
        if broken:
            self._repair(fd, broken)

    def _repair(self, fd: int, broken: bytes) -> None:
        saved = self._save_aside(broken)
        os.ftruncate(fd, self._known_end)
        os.fsync(fd)
        self.warnings.append(
            f"{self.path.name}: the last record was incomplete (a crash mid-write?); moved "
            f"its {len(broken)} bytes to {saved.name} and continued after seq {self._last_seq}"
        )

    def _save_aside(self, broken: bytes) -> Path:
        stamp = datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y%m%dT%H%M%SZ")
        base = self.path.with_name(f"{self.path.name}.broken-{stamp}")
        candidate, n = base, 1
        while True:
            try:
                out = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                              file_mode(candidate))
                break
            except FileExistsError:
                n += 1
                candidate = base.with_name(f"{base.name}-{n}")
        try:
            _write_all(out, broken)
            os.fsync(out)
        finally:
            os.close(out)
        _fsync_dir(self.path.parent)
        return candidate

    # -- writing -----------------------------------------------------------------------

    def append(
        self,
        intent: str,
        *,
        reason: str = "",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        outcome: str | None = None,
        data: dict[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> dict[str, Any]:
        """Write one record durably and return it as it now reads back from the file.

        On JournalError nothing was written: the file is as it was before the call.
        """
        if self.read_only:
            raise JournalError(
                f"watch-only: this console does not drive {self.release}; only the lease "
                "holder writes its journal"
            )
        with self._mutex:
            try:
                with self._locked() as fd:
                    self._sync(fd)
                    line = self._build_line(intent, reason, before, after, outcome, data, actor)
                    start = self._known_end
                    try:
                        _write_all(fd, line + b"\n")
                        os.fsync(fd)
                    except OSError:
                        # A half line would glue onto the next record and break both.
                        with suppress(OSError):
                            os.ftruncate(fd, start)
                            os.fsync(fd)
                        raise
                    self._known_end = start + len(line) + 1
                    self._last_seq += 1
                    self._last_hash = sha256_hex(line)
                    self._update_head()
            except OSError as exc:
                raise JournalError(
                    f"cannot write journal {self.path}: {explain_os_error(exc)}"
                ) from exc
        record: dict[str, Any] = json.loads(line)
        return record

    def _build_line(
        self,
        intent: str,
        reason: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        outcome: str | None,
        data: dict[str, Any] | None,
        actor: Actor | None,
    ) -> bytes:
        ts = float(self.clock.now())
        record = {
            "seq": self._last_seq + 1,
            "ts": ts,
            "time": _iso_utc(ts),
            "release": self.release,
            "actor": _actor_dict(actor or self.actor),
            "intent": str(intent),
            "reason": str(reason),
            "before": _plain(before),
            "after": _plain(after),
            "outcome": None if outcome is None else str(outcome),
            "data": _plain(data),
            "prev": self._last_hash,
        }
        try:
            return _dumps(record)
        except (TypeError, ValueError, RecursionError) as exc:
            raise JournalError(
                f"cannot write journal {self.path}: record not serialisable ({type(exc).__name__})"
            ) from None

    def _update_head(self) -> None:
        # The record itself is already durable, so a head that cannot be written is a
        # warning (verify will say the head is behind), not a failed append.
        tmp = self._head.with_name(f"{self._head.name}.tmp-{os.getpid()}")
        body = json.dumps({"seq": self._last_seq, "sha256": self._last_hash}).encode() + b"\n"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
                         | os.O_NOFOLLOW, file_mode(self._head))
            try:
                fix_file_mode(fd, self._head)
                _write_all(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self._head)
            _fsync_dir(self._head.parent)
        except OSError as exc:
            with suppress(OSError):
                tmp.unlink()
            self.warnings.append(
                f"{self._head.name} not updated after seq {self._last_seq}: {explain_os_error(exc)}"
            )

    # -- reading -----------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every complete, readable record in the file, oldest first."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise JournalError(f"cannot read journal {self.path}: {explain_os_error(exc)}") from exc
        lines, _tail = split_lines(data)
        return [rec for rec in map(parse_line, lines) if rec is not None]

    def last(self) -> dict[str, Any] | None:
        recs = self.records()
        return recs[-1] if recs else None

    def poll_new(self) -> list[dict[str, Any]]:
        """Records that appeared since the previous call (or construction), from any writer."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise JournalError(f"cannot read journal {self.path}: {explain_os_error(exc)}") from exc
        if st.st_ino != self._poll_ino:  # first appearance, or replaced by a new file
            if self._poll_ino is not None:
                self._poll_seq = 0
            self._poll_ino, self._poll_end = st.st_ino, 0
        if st.st_size < self._poll_end:  # a repair cut the file; the seq filter skips repeats
            self._poll_end = 0
        if st.st_size == self._poll_end:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self._poll_end)
                data = f.read()
        except OSError as exc:
            raise JournalError(f"cannot read journal {self.path}: {explain_os_error(exc)}") from exc
        lines, tail = split_lines(data)
        self._poll_end += len(data) - len(tail)
        new: list[dict[str, Any]] = []
        for rec in map(parse_line, lines):
            seq = seq_of(rec)
            if rec is None or (seq is not None and seq <= self._poll_seq):
                continue
            new.append(rec)
            self._poll_seq = seq if seq is not None else self._poll_seq
        return new
