"""Leaving when the terminal goes away (the SSH link drops, the tmux pane is killed).

Measured here with Textual 8.2.8: after a hang-up, a normal `App.exit()` deadlocks — its
shutdown writes "disable mouse" sequences into the output queue of a writer thread that
can no longer write to the dead terminal. And with SIGHUP ignored (as under `nohup`) no
signal arrives at all, while the input thread spins on a dead descriptor. So:

- a hang-up is detected both by SIGHUP and by a 1 Hz probe of the terminal (`tcgetattr`
  fails with EIO once the terminal is gone, whatever SIGHUP's disposition);
- the console then leaves at once with `os._exit`: the release is not touched, every
  journal record is already fsynced, and the kernel drops the lease's lock with the
  process. Nothing that matters is left to a shutdown path that cannot run.
"""

from __future__ import annotations

import os
import sys
import termios
from collections.abc import Callable

from relconsole.exit_codes import ExitCode


def terminal_fd() -> int | None:
    """The descriptor of the controlling terminal we draw on, or None (tests, pipes)."""
    for stream in (sys.__stdin__, sys.__stdout__):
        try:
            fd = stream.fileno() if stream is not None else -1
        except (OSError, ValueError):
            continue
        if fd >= 0 and os.isatty(fd):
            return fd
    return None


def terminal_gone(fd: int) -> bool:
    try:
        termios.tcgetattr(fd)
    except (termios.error, OSError):
        return True
    return False


def leave_now(stop_engine: Callable[[], None]) -> None:
    """Stop polling and exit without touching the (dead) terminal."""
    try:
        stop_engine()
    finally:
        os._exit(ExitCode.HANGUP)
