"""The two header lines: what is being released, who drives, the phase and the clock."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from relconsole.engine.state import Snapshot
from relconsole.model import Mode, Phase
from relconsole.tui import format as fmt
from relconsole.tui.widgets.field import Field

PHASE_CLASSES = {
    Phase.PENDING: "-pending",
    Phase.PROGRESSING: "-progressing",
    Phase.PAUSED: "-paused",
    Phase.PROMOTED: "-promoted",
    Phase.ROLLING_BACK: "-rolling-back",
    Phase.ROLLED_BACK: "-rolled-back",
    Phase.ROLLBACK_FAILED: "-rollback-failed",
}


ROLLBACK_PHASES = (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED)


class ReleaseHeader(Vertical):
    """Service, version, environment, strategy, DRIVE/WATCH and driver; phase and time."""

    DEFAULT_CSS = """
    ReleaseHeader {
        height: 2;
        background: $panel;
        color: $foreground;
        & > Horizontal { height: 1; }
        Label { height: 1; }
        #title { width: 1fr; text-style: bold; padding: 0 1; text-overflow: ellipsis; }
        #driver { width: auto; max-width: 60%; padding: 0 1; color: $text-muted;
                  text-overflow: ellipsis; }
        #mode { width: auto; padding: 0 1; text-style: bold; background: $primary;
                color: $background; }
        #phase { width: auto; padding: 0 1; text-style: bold; background: $secondary;
                 color: $background; }
        #status { width: 1fr; padding: 0 1; text-overflow: ellipsis; }
        #status.-error { color: $text-error; text-style: bold; }
        #status.-watch { color: $text-accent; text-style: bold; }
        #stall { width: auto; padding: 0 1; color: $background; background: $warning;
                 text-style: bold; display: none; }
        #stall.-shown { display: block; }
        #busy { width: auto; padding: 0 1; color: $text-accent; text-style: bold;
                display: none; }
        #clock { width: auto; padding: 0 1; text-style: bold; }
        &.-watch #mode { background: $accent; }
        #phase.-progressing { background: $primary; }
        #phase.-paused { background: $warning; }
        #phase.-promoted { background: $success; }
        #phase.-rolling-back, #phase.-rollback-failed { background: $error; }
        #phase.-rolled-back { background: $warning; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._phase: Phase | None = None
        self._stalled_since: float | None = None
        self._stopped = False

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Field(id="title")
            yield Field(id="driver")
            yield Field(id="mode")
        with Horizontal():
            yield Field(id="phase")
            yield Field(id="status")
            yield Field(id="busy")
            yield Field(id="stall")
            yield Field(id="clock")

    def show(self, snapshot: Snapshot) -> None:
        plan = snapshot.plan
        self.query_one("#title", Field).set(
            f"{plan.service} {plan.version} · {plan.environment} · {plan.strategy}"
        )
        watching = snapshot.mode is Mode.WATCH
        self.set_class(watching, "-watch")
        since = f" since {fmt.clock(snapshot.driver_since)}" if snapshot.driver_since else ""
        # Watching, who drives is the news and takes line 2; driving, it is a footnote.
        driver = self.query_one("#driver", Field)
        driver.set("" if watching else f"driving: {snapshot.driver}{since}")
        driver.display = not watching
        self.query_one("#mode", Field).set("WATCH-ONLY" if watching else "DRIVE")

        phase = self.query_one("#phase", Field)
        if snapshot.phase is not self._phase:
            if self._phase is not None:
                phase.remove_class(PHASE_CLASSES[self._phase])
            phase.add_class(PHASE_CLASSES[snapshot.phase])
            self._phase = snapshot.phase
        phase.set(snapshot.phase.label)

        status = self.query_one("#status", Field)
        # A failing rollback has the canary panel's banner; elsewhere the last refused or
        # failed action stays here until an action succeeds.
        error = snapshot.last_error if snapshot.phase not in ROLLBACK_PHASES else ""
        if error:
            status.set(error)
        elif watching:
            status.set(f"{snapshot.driver} drives{since}")
        else:
            status.set(
                f"step {max(snapshot.step_index + 1, 0)}/{len(plan.steps)} · "
                f"canary {snapshot.weight}%"
            )
        status.set_class(bool(error), "-error")
        status.set_class(watching and not error, "-watch")
        self.query_one("#clock", Field).set(fmt.clock(snapshot.now))

    def show_stall(self, last_update: float | None, *, stopped: bool = False) -> None:
        """Warn when the engine has not sent a snapshot for a while: the screen is old."""
        if self._stopped or last_update == self._stalled_since:
            return
        self._stalled_since = last_update
        self._stopped = stopped
        stall = self.query_one("#stall", Field)
        stall.set_class(last_update is not None, "-shown")
        if last_update is not None:
            what = "ENGINE STOPPED" if stopped else "NO UPDATE"
            stall.set(f"{what} SINCE {fmt.clock(last_update)}")

    def show_busy(self, intent: str | None) -> None:
        """An intent is on its way to the provider (it is verified before it is done)."""
        busy = self.query_one("#busy", Field)
        busy.set(f"{intent}…" if intent else "")
        busy.display = intent is not None
