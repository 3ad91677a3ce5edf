"""Handing a driven release to a headless driver when its console quits.

A console that drives a release is what rolls it back when a gate fails. When the
operator quits it mid-release, `hand_off` starts `relconsole run|demo --headless` as a
process of its own (its own session, so the SSH hang-up that ends the console does not
end it), lets it take the lease, and returns only once it is known to have taken it and
attached — or says why it did not.

The new driver takes the lease with `--take-over` while the console still holds it, rather
than after the console let go: the release is never without a driver in between (a second
console could not slip in, and a demo's state folder, which is wiped when nobody drives it,
is never wiped under the release), the take-over is journalled with its reason, and if the
new driver fails before taking the lease the console still drives and can simply go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from relconsole.clock import SystemClock
from relconsole.engine.journal import Journal, JournalError, journal_path
from relconsole.engine.lease import current_holder
from relconsole.engine.paths import ensure_private_dir, file_mode, safe_name
from relconsole.model import Actor

# How long the new driver may take to start, take the lease and attach (Python's start-up
# and a first read of every provider; a provider's call_timeout is added).
HANDOFF_TIMEOUT = 20.0
LOG_TAIL = 300  # characters of the new driver's log quoted when it fails


@dataclass(frozen=True)
class Handoff:
    """How this console's release is handed to a headless driver and re-attached."""

    argv: tuple[str, ...]
    """The headless driver's command line, without the take-over arguments."""
    state_dir: Path
    release_id: str
    reattach: str
    """The command an operator types to attach a console again."""
    cwd: Path
    unavailable: str = ""
    """Why no hand-off is possible from this console ("" when it is)."""

    @property
    def journal(self) -> Path:
        return journal_path(self.state_dir, self.release_id)

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "headless"


@dataclass(frozen=True)
class Handed:
    ok: bool
    message: str
    pid: int | None = None
    log: Path | None = None


def _tail(log: Path) -> str:
    try:
        text = log.read_text(errors="replace").strip()
    except OSError:
        return ""
    return " ".join(text[-LOG_TAIL:].split())


def _attached_since_take_over(handoff: Handoff, actor: Actor, reason: str) -> bool:
    """Whether the journal shows an attach after the new driver's take-over (the record
    with this hand-off's reason): it has read the real state and drives from it."""
    path = handoff.journal
    if not path.exists():
        return False
    try:
        records = Journal(path, SystemClock(), actor, release=handoff.release_id,
                          read_only=True).records()
    except JournalError:
        return False
    seen_take_over = False
    for record in records:
        intent = record.get("intent")
        if intent == "lease.take_over" and record.get("reason") == reason:
            seen_take_over = True
        elif intent == "attach" and seen_take_over:
            return True
    return False


async def hand_off(
    handoff: Handoff, *, reason: str, actor: Actor, timeout: float = HANDOFF_TIMEOUT
) -> Handed:
    """Start the headless driver and wait until it holds the lease and has attached.

    The caller has stopped its own engine loop and still holds the lease. On failure the
    new driver is stopped if it has not taken the lease, so it cannot take it later.
    """
    if handoff.unavailable:
        return Handed(False, handoff.unavailable)
    log_dir = ensure_private_dir(handoff.log_dir)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    log = log_dir / f"{safe_name(handoff.release_id)}-{stamp}-{os.getpid()}.log"
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW,
                     file_mode(log))
    except OSError as exc:
        return Handed(False, f"cannot write the headless driver's log {log}: {exc}")
    try:
        proc = subprocess.Popen(
            [*handoff.argv, "--take-over", "--take-over-reason", reason],
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, cwd=handoff.cwd,
            start_new_session=True, close_fds=True,
        )
    except OSError as exc:
        return Handed(False, f"cannot start the headless driver: {exc}", log=log)
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    took = False
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            words = "after it took the lease" if took else "before it took the lease"
            return Handed(False, f"the headless driver exited with {code} {words}: "
                                 f"{_tail(log) or 'no output'} (log: {log})", proc.pid, log)
        holder = await asyncio.to_thread(current_holder, handoff.state_dir, handoff.release_id)
        took = took or (holder is not None and holder.pid == proc.pid)
        if took and await asyncio.to_thread(_attached_since_take_over, handoff, actor, reason):
            return Handed(True, f"handed to a headless driver (pid {proc.pid}, log {log})",
                          proc.pid, log)
        await asyncio.sleep(0.1)
    if took:
        # It drives (the lease is its own); its first read of the providers is slow.
        return Handed(True, f"handed to a headless driver (pid {proc.pid}, log {log}); it "
                            "has not attached yet — check its log", proc.pid, log)
    # Late, it would take the lease from under whoever drives by then.
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    return Handed(False, f"the headless driver did not take the lease within {timeout:g}s: "
                         f"{_tail(log) or 'no output'} (log: {log})", proc.pid, log)
