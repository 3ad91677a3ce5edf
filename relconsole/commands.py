"""Running one argv list as the team's own tools are run: never through a shell.

Shared by the command traffic provider (`providers/command.py`) and the database
migrations' runner (built in `assembly.py`, handed to the engine). The program gets its
own process group, so a timeout or a cancellation kills whatever it started too; its
output is kept (the tail of each stream) for the journal and the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

KEEP_OUTPUT = 16 * 1024  # per stream, the tail is kept
# A helper the program left in the background may hold its pipes open: its output is
# not waited for beyond this long once the program itself has exited.
PIPE_GRACE = 1.0


@dataclass(frozen=True)
class Finished:
    """How one run ended: its exit code (None when killed on timeout) and its output."""

    exit_code: int | None
    stdout: str
    stderr: str
    duration: float  # real seconds
    timed_out: bool = False


async def run_argv(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run `argv` (no shell), wait at most `timeout` real seconds, and say how it ended.

    Raises OSError when the program cannot be started at all. Cancelled (by a caller's
    own timeout or shutdown), it kills the program's group before letting go: a tool is
    never left running behind the console's back.
    """
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        start_new_session=True,  # its own process group: a timeout kills helpers too
    )
    out, err = StreamTail(), StreamTail()
    out_task = asyncio.ensure_future(out.read(proc.stdout))
    err_task = asyncio.ensure_future(err.read(proc.stderr))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout)
        except TimeoutError:
            timed_out = True
            kill_group(proc)
            await proc.wait()
        await asyncio.wait({out_task, err_task}, timeout=PIPE_GRACE)
        stdout, stderr = out.text(), err.text()
    finally:
        if proc.returncode is None:
            kill_group(proc)
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
        for task in (out_task, err_task):
            task.cancel()
    return Finished(None if timed_out else proc.returncode, stdout, stderr,
                    time.monotonic() - started, timed_out)


class StreamTail:
    """The last KEEP_OUTPUT bytes of a stream, readable even if reading is cut short."""

    def __init__(self) -> None:
        self.kept = b""

    async def read(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return
            self.kept = (self.kept + chunk)[-KEEP_OUTPUT:]

    def text(self) -> str:
        return self.kept.decode("utf-8", "replace")


def kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
