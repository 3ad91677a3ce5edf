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
import signal
import sys
from typing import TextIO

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
    if value is None:
        return "n/a"
    if unit == "ratio" or name == "error_rate":
        return f"{value * 100:.2f}%"
    if unit == "seconds" or name.startswith("latency"):
        return f"{value * 1000:.0f}ms"
    return f"{value:.4g}"


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


class EventPrinter:
    """Writes each engine event as a line of text or a JSON object."""

    def __init__(self, engine: ReleaseEngine, out: TextIO, as_json: bool) -> None:
        self.engine = engine
        self.out = out
        self.as_json = as_json

    def __call__(self, event: Event) -> None:
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
            self.out.write(json.dumps(record, default=str) + "\n")
        else:
            line = f"{clock_text(event.at)} {event.kind.value:<11} {event.message}"
            if event.kind in WITH_METRICS:
                metrics = _metrics_text(snap)
                if metrics:
                    line += f"  [{metrics}]"
            self.out.write(line + "\n")
        self.out.flush()


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
            self.err.write(f"relconsole: journal warning: {text}\n")
        if len(warnings) > self.shown:
            self.err.flush()
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
) -> ExitCode:
    out = out or sys.stdout
    engine.subscribe(on_event=EventPrinter(engine, out, as_json))
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    warnings = JournalWarnings(engine)
    warnings.flush()  # a repair done while opening the journal
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, interrupted.set)
                installed.append(sig)
    try:
        await engine.attach()
        warnings.flush()
        rollback_started: float | None = None
        driving = engine.mode is Mode.DRIVE
        while True:
            if driving and engine.mode is not Mode.DRIVE:
                # Another console took the lease over: a pipeline must not keep going
                # as if it still drove; the new driver owns the release now.
                out.write("lease lost: another console drives this release now\n")
                out.flush()
                return ExitCode.PAUSED
            code = exit_code_for(engine.phase)
            if code is not None:
                return code
            if engine.phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED):
                rollback_started = rollback_started or engine.clock.now()
                if engine.clock.now() - rollback_started > engine.plan.rollback_give_up:
                    out.write(
                        "rollback not verified after "
                        f"{engine.plan.rollback_give_up:g}s — a human must take over\n"
                    )
                    return ExitCode.PAUSED
            if interrupted.is_set():
                return await _interrupt(engine, out)
            snap = engine.snapshot()
            delay = engine.plan.poll_interval
            if snap.rollback_next_at is not None:
                delay = max(0.05, min(delay, snap.rollback_next_at - engine.clock.now()))
            sleeper = asyncio.ensure_future(engine.clock.sleep(delay))
            waiter = asyncio.ensure_future(interrupted.wait())
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, waiter):
                task.cancel()
            if interrupted.is_set():
                return await _interrupt(engine, out)
            await engine.tick()
            warnings.flush()
    finally:
        warnings.flush()
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _interrupt(engine: ReleaseEngine, out: TextIO) -> ExitCode:
    """Leave the release paused where it stands: never half-changed."""
    if engine.phase in (Phase.PROGRESSING, Phase.PENDING):
        await engine.pause("interrupted: headless run stopped by a signal")
    out.write("interrupted: the release is left paused where it stands\n")
    out.flush()
    return ExitCode.INTERRUPTED
