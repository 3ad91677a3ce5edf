"""The headless front end: follow the step plan in a pipeline, one line per event.

It drives the same engine as the TUI with `auto_advance` and `auto_rollback` on, and
turns the outcome into the exit codes of docs/design.md (`ExitCode`): 0 promoted,
3 rolled back, 4 left paused for a human, 130 interrupted (the release is paused where
it stands).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import stat
import sys
from collections.abc import Callable
from typing import TextIO

from relconsole import units
from relconsole.clock import clock_text
from relconsole.engine.release import ReleaseEngine
from relconsole.engine.state import Event, EventKind, Snapshot
from relconsole.exit_codes import ExitCode
from relconsole.model import Mode, Phase

# Events that move the release or judge it: their line carries the metrics it moved on.
WITH_METRICS = frozenset({
    EventKind.STEP, EventKind.PROMOTED, EventKind.ROLLBACK, EventKind.ROLLED_BACK,
    EventKind.PAUSE, EventKind.VERDICT,
})


def format_value(name: str, value: float | None, unit: str) -> str:
    """A metric value as the screen and the journal write it (`relconsole.units`)."""
    return units.value(value, unit or units.guess(name))


def _metrics_text(snap: Snapshot) -> str:
    units = {m.name: m.unit for m in snap.plan.metrics}
    parts = []
    for name, (canary, baseline) in snap.latest.items():
        unit = units.get(name, "")
        parts.append(
            f"{name}={format_value(name, canary, unit)}"
            f"(base {format_value(name, baseline, unit)})"
        )
    return " ".join(parts)


def silence(stream: TextIO) -> None:
    """Point a stream whose reader went away at /dev/null, so what is still buffered in it
    (and Python's own flush at exit) cannot fail again: no "Exception ignored" at exit."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class Output:
    """The event stream. Its reader going away (`| head -2`) is an interruption, like
    SIGINT: `on_closed` is called once, and nothing more is written to it.

    A write is where a closed pipe shows; a pipe is also watched, so one whose reader
    left during a long bake is noticed at once rather than at the next event.
    """

    def __init__(self, out: TextIO, on_closed: Callable[[], None]) -> None:
        self.out = out
        self.on_closed = on_closed
        self.closed = False
        self._watched: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def line(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.out.write(text + "\n")
            self.out.flush()
        except BrokenPipeError:
            self.gone()

    def gone(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.unwatch()
        silence(self.out)
        self.on_closed()

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Be told when the reader of a pipe goes away, without writing to it."""
        try:
            fd = self.out.fileno()
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                return  # a file or a terminal has no reader to lose
            # A pipe's write end never turns readable; it reports an error once the read
            # end is closed, and the event loop hands that to a reader callback.
            loop.add_reader(fd, self._check, fd)
        except (OSError, ValueError, NotImplementedError, RuntimeError):
            return
        self._loop = loop
        self._watched = fd

    def _check(self, fd: int) -> None:
        probe = select.poll()
        probe.register(fd, select.POLLOUT)
        if any(ev & (select.POLLERR | select.POLLHUP) for _, ev in probe.poll(0)):
            self.gone()

    def unwatch(self) -> None:
        fd, self._watched = self._watched, None
        if fd is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(fd)


def _say(stream: TextIO, text: str) -> None:
    """A line for the human (stderr); a closed stderr as well must not end in a traceback."""
    try:
        stream.write(text + "\n")
        stream.flush()
    except (BrokenPipeError, ValueError):
        silence(stream)


class EventPrinter:
    """Writes each engine event as a line of text or a JSON object."""

    def __init__(self, engine: ReleaseEngine, out: Output, as_json: bool) -> None:
        self.engine = engine
        self.out = out
        self.as_json = as_json

    def __call__(self, event: Event) -> None:
        if event.past:
            return  # history replayed for a screen; a pipeline's log has it already
        snap = self.engine.snapshot()
        if self.as_json:
            record = {
                "time": event.at,
                "event": event.kind.value,
                "message": event.message,
                "phase": snap.phase.value,
                "step": snap.step_index + 1,
                "weight": snap.weight,
                "metrics": {
                    name: {"canary": c, "baseline": b} for name, (c, b) in snap.latest.items()
                },
                **({"actor": event.actor} if event.actor else {}),
                **event.data,
            }
            self.out.line(json.dumps(record, default=str))
        else:
            line = f"{clock_text(event.at)} {event.kind.value:<11} {event.message}"
            if event.kind in WITH_METRICS:
                metrics = _metrics_text(snap)
                if metrics:
                    line += f"  [{metrics}]"
            self.out.line(line)


class JournalWarnings:
    """Prints each journal warning once, on stderr (a repaired torn line, a stale head).

    Stdout stays the event stream a pipeline parses; the warnings are for the human who
    reads the job log, and for `journal --verify` questions later.
    """

    def __init__(self, engine: ReleaseEngine, err: TextIO | None = None) -> None:
        self.engine = engine
        self.err = err or sys.stderr
        self.shown = 0

    def flush(self) -> None:
        warnings = self.engine.snapshot().journal_warnings
        for text in warnings[self.shown:]:
            _say(self.err, f"relconsole: journal warning: {text}")
        self.shown = len(warnings)


def exit_code_for(phase: Phase) -> ExitCode | None:
    """The exit code a headless run ends with in this phase, or None to keep going."""
    if phase is Phase.PROMOTED:
        return ExitCode.OK
    if phase is Phase.ROLLED_BACK:
        return ExitCode.ROLLED_BACK
    if phase is Phase.PAUSED:
        return ExitCode.PAUSED
    return None


async def run_headless(
    engine: ReleaseEngine,
    *,
    out: TextIO | None = None,
    as_json: bool = False,
    handle_signals: bool = True,
    take_with: str = "relconsole run -c FILE",
) -> ExitCode:
    interrupted = asyncio.Event()
    why: list[str] = []

    def reader_gone() -> None:
        why.append("stdout")
        interrupted.set()

    output = Output(out or sys.stdout, reader_gone)
    printer = EventPrinter(engine, output, as_json)
    engine.subscribe(on_event=printer)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    warnings = JournalWarnings(engine)
    warnings.flush()  # a repair done while opening the journal
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, interrupted.set)
                installed.append(sig)
    output.watch(loop)
    guard: asyncio.Future[None] | None = None
    try:
        await engine.attach()
        warnings.flush()
        rollback_started: float | None = None
        driving = engine.mode is Mode.DRIVE
        if driving:
            guard = asyncio.ensure_future(engine.guard_lease())
        was_free = False
        waiting_contract = False
        while True:
            free = not driving and engine.snapshot().driver == "nobody"
            if free and not was_free:
                # A pipeline that only watches says once that the release is unguarded.
                printer(Event(engine.clock.now(), EventKind.LEASE,
                              f"nobody drives this release now; `{take_with}` takes it"))
            was_free = free
            if driving and engine.mode is not Mode.DRIVE:
                # Another console took the lease over: a pipeline must not keep going
                # as if it still drove; the new driver owns the release now.
                output.line("lease lost: another console drives this release now")
                return ExitCode.PAUSED
            code = exit_code_for(engine.phase)
            if code is ExitCode.OK and driving and engine.contract_pending():
                # Promoted, but a contract migration waits for contract_after: a pipeline
                # that ended here would leave it to nobody.
                if not waiting_contract:
                    output.line(f"promoted; contract migrations run after "
                                f"{engine.plan.contract_after:g}s at 100% — waiting")
                    waiting_contract = True
                code = None
            if code is ExitCode.OK and engine.contract_failed():
                output.line("contract migration failed: "
                            + ", ".join(engine.contract_failed())
                            + " — the release is at 100%; fix it and run it again")
                return ExitCode.ERROR
            if code is not None:
                return code
            if engine.phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED):
                rollback_started = rollback_started or engine.clock.now()
                if engine.clock.now() - rollback_started > engine.plan.rollback_give_up:
                    output.line(
                        "rollback not verified after "
                        f"{engine.plan.rollback_give_up:g}s — a human must take over"
                    )
                    return ExitCode.PAUSED
            if interrupted.is_set():
                return await _interrupt(engine, output, stdout_closed=bool(why))
            snap = engine.snapshot()
            delay = engine.plan.poll_interval
            if snap.rollback_next_at is not None:
                delay = max(0.05, min(delay, snap.rollback_next_at - engine.clock.now()))
            sleeper = asyncio.ensure_future(engine.clock.sleep(delay))
            waiter = asyncio.ensure_future(interrupted.wait())
            # A driver whose lease is taken stops at once, not at its next poll.
            lost = asyncio.ensure_future(engine.lease_lost.wait())
            await asyncio.wait({sleeper, waiter, lost}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, waiter, lost):
                task.cancel()
            if driving and engine.mode is not Mode.DRIVE:
                continue  # said at the top of the loop, before any tick
            if interrupted.is_set():
                return await _interrupt(engine, output, stdout_closed=bool(why))
            await engine.tick()
            warnings.flush()
    finally:
        if guard is not None:
            guard.cancel()
        output.unwatch()
        warnings.flush()
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _interrupt(engine: ReleaseEngine, output: Output, *, stdout_closed: bool) -> ExitCode:
    """Leave the release paused where it stands: never half-changed.

    A closed stdout is an interruption too: a pipeline that stopped reading
    (`| head -2`) has stopped watching, and nobody else drives the release.
    """
    cause = ("stdout was closed (the reader of the event stream went away)" if stdout_closed
             else "headless run stopped by a signal")
    if engine.phase in (Phase.PROGRESSING, Phase.PENDING):
        await engine.pause(f"interrupted: {cause}")
    left = ("left paused where it stands" if engine.phase is Phase.PAUSED
            else f"left {engine.phase.label} at {engine.snapshot().weight}%")
    if output.closed:
        _say(sys.stderr, f"relconsole: interrupted, {cause}: the release is {left}")
    else:
        output.line(f"interrupted: the release is {left}")
    return ExitCode.INTERRUPTED
