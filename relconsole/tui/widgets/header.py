"""The two header lines: what is being released, who drives, the phase and the clock.

Service, environment and phase are never cut: the title gives up the strategy, then the
version, before the service name is shortened, and the driver's footnote takes only the
room the title leaves. A demo says it is a simulation, and how fast its clock runs; the
clock names its time zone.
"""

from __future__ import annotations

import time

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from relconsole.engine.state import Snapshot
from relconsole.model import Mode, Phase, ReleasePlan
from relconsole.tui import format as fmt
from relconsole.tui.widgets import controller as ctl
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
PADDING = 2  # cells of padding (0 1) around every header field


def zone(at: float) -> str:
    """The local time zone's name at `at` ('UTC', 'CET'), or its offset ('+0530')
    where the zone has no abbreviation."""
    local = time.localtime(at)
    name = time.strftime("%Z", local)
    return name if name and " " not in name else time.strftime("%z", local)


def clock_with_zone(at: float) -> str:
    """'12:03:10 UTC': every time on screen is in this zone, so the header says which."""
    return f"{fmt.clock(at)} {zone(at)}"


def simulation_label(speed: float, *, short: bool = False) -> str:
    """'SIMULATION ×5' ('SIM ×5' where room is short) — the demo's clock runs `speed`
    times faster than real time."""
    return f"{'SIM' if short else 'SIMULATION'} ×{speed:g}"


def fits_whole(plan: ReleasePlan, width: int) -> bool:
    """Whether service and environment fit in `width` cells without cutting either."""
    return cell_len(f"{plan.service} · {plan.environment}") <= width


def fit_title(plan: ReleasePlan, width: int, resource: str = "", beside: int = 0) -> str:
    """The fullest title that fits in `width` cells: the strategy goes first, then the
    controller's resource ('rollout payments/checkout'), then the version; service and
    environment stay, the service cut with an ellipsis only when nothing else is left
    to give. The resource is shown only where `beside` cells (the driver's footnote)
    still fit next to it: 'drivi…' would say nothing."""
    service, env = plan.service, plan.environment
    if resource:
        for text in (f"{service} {plan.version} · {env} · {plan.strategy} · {resource}",
                     f"{service} {plan.version} · {env} · {resource}"):
            if cell_len(text) + beside <= width:
                return text
    for text in (
        f"{service} {plan.version} · {env} · {plan.strategy}",
        f"{service} {plan.version} · {env}",
        f"{service} · {env}",
    ):
        if cell_len(text) <= width:
            return text
    room = width - cell_len(f"… · {env}")
    if room >= 4:
        return f"{service[:room]}… · {env}"
    return f"{service} · {env}"  # too narrow for anything: let the screen clip it


class Choices(Field):
    """A field showing the fullest of its texts that fits its width, so a narrow header
    drops words ("step 2/4 · ") rather than cutting the number at the end."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._choices: tuple[str, ...] = ()

    def choose(self, *texts: str) -> None:
        self._choices = texts
        self._fit()

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        if not self._choices:
            return
        width = self.content_region.width
        fitting = [t for t in self._choices if cell_len(t) <= width] if width else []
        self.set(fitting[0] if fitting else self._choices[-1])


def where(snapshot: Snapshot) -> str:
    """Where users are, short, in the strategy's words: 'canary 10%', 'cohort beta + 0%',
    'mirror 20% · canary 0%', 'batch 2/4 · 50% new', 'green live'."""
    plan = snapshot.plan
    weight = snapshot.weight
    route = snapshot.traffic.route if snapshot.traffic is not None else None
    if plan.strategy == "blue-green":
        return "green live" if weight >= 100 else "blue live"
    if plan.strategy == "rolling" and route is not None:
        return f"batch {route.batches}/{len(plan.steps)} · {weight}% new"
    if route is not None and route.cohorts and weight < 100:
        return f"cohort {', '.join(route.cohorts)} + {weight}%"
    if route is not None and route.mirror and weight < 100:
        return f"mirror {route.mirror}% · canary {weight}%"
    return f"canary {weight}%"


class ReleaseHeader(Vertical):
    """Service, version, environment, strategy, DRIVE/WATCH and driver; phase and time."""

    DEFAULT_CSS = """
    ReleaseHeader {
        height: 2;
        background: $panel;
        color: $foreground;
        & > Horizontal { height: 1; }
        Label { height: 1; }
        #title { width: auto; text-style: bold; padding: 0 1; text-wrap: nowrap; }
        #driver { width: 1fr; padding: 0 1; color: $text-muted; text-wrap: nowrap;
                  text-overflow: ellipsis; }
        #sim { width: auto; padding: 0 1; text-style: bold reverse; display: none; }
        #sim.-shown { display: block; }
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

    def __init__(
        self, *, id: str | None = None, simulation: float | None = None, take_key: str = ""
    ) -> None:
        """`simulation` is the demo's speed: the header then says the release is simulated.
        `take_key` takes a free lease (offered when nobody drives; "" when it cannot)."""
        super().__init__(id=id)
        self.simulation = simulation
        self.take_key = take_key
        self._phase: Phase | None = None
        self._plan: ReleasePlan | None = None
        self._resource = ""
        self._stalled_since: float | None = None
        self._stopped = False

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Field(id="title")
            yield Field(id="driver")
            sim = Field(simulation_label(self.simulation) if self.simulation else "", id="sim")
            sim.set_class(self.simulation is not None, "-shown")
            yield sim
            yield Field(id="mode")
        with Horizontal():
            yield Field(id="phase")
            yield Choices(id="status")
            yield Field(id="busy")
            yield Field(id="stall")
            yield Field(id="clock")

    def on_resize(self, event: events.Resize) -> None:
        self._fit_title()

    def _fit_title(self) -> None:
        if self._plan is None or not self.size.width:
            return
        mode = cell_len(self.query_one("#mode", Field).text) + PADDING
        sim = self.query_one("#sim", Field)
        # The title's own padding, and the driver's, which stays even with no text.
        room = self.size.width - mode - 2 * PADDING
        if self.simulation is not None:
            # The marker stays, shortened before the service name would be.
            label = simulation_label(self.simulation)
            if not fits_whole(self._plan, room - cell_len(label) - PADDING):
                label = simulation_label(self.simulation, short=True)
            sim.set(label)
            room -= cell_len(label) + PADDING
        driver = self.query_one("#driver", Field)
        beside = cell_len(driver.text) if driver.display else 0
        self.query_one("#title", Field).set(
            fit_title(self._plan, room, self._resource, beside))

    def show(self, snapshot: Snapshot) -> None:
        plan = snapshot.plan
        watching = snapshot.mode is Mode.WATCH
        self.set_class(watching, "-watch")
        since = f" since {fmt.clock(snapshot.driver_since)}" if snapshot.driver_since else ""
        # Watching, who drives is the news and takes line 2; driving, it is a footnote.
        driver = self.query_one("#driver", Field)
        driver.set("" if watching else f"driving: {snapshot.driver}{since}")
        driver.display = not watching
        self.query_one("#mode", Field).set("WATCH-ONLY" if watching else "DRIVE")
        self._plan = plan
        controller = ctl.controller_of(snapshot)
        self._resource = controller.resource if controller is not None else ""
        self._fit_title()

        phase = self.query_one("#phase", Field)
        if snapshot.phase is not self._phase:
            if self._phase is not None:
                phase.remove_class(PHASE_CLASSES[self._phase])
            phase.add_class(PHASE_CLASSES[snapshot.phase])
            self._phase = snapshot.phase
        phase.set(snapshot.phase.label)

        status = self.query_one("#status", Choices)
        # A failing rollback has the canary panel's banner; elsewhere the last refused or
        # failed action stays here until an action succeeds.
        error = snapshot.last_error if snapshot.phase not in ROLLBACK_PHASES else ""
        if error:
            status.choose(error)
        elif watching and snapshot.driver == "nobody" and self.take_key:
            # Unguarded: nothing rolls it back. Say so, and how to become its driver.
            key = self.take_key
            status.choose(f"nobody drives — {key} take it", f"nobody drives — {key}",
                          "nobody drives")
        elif watching:
            status.choose(f"{snapshot.driver} drives{since}", f"{snapshot.driver} drives")
        elif controller is not None:
            # The controller's count and weights: `release.steps` is not its plan.
            status.choose(*ctl.status_choices(snapshot, controller))
        else:
            weight = where(snapshot)
            step = f"step {max(snapshot.step_index + 1, 0)}/{len(plan.steps)}"
            status.choose(f"{step} · {weight}", weight)
        status.set_class(bool(error), "-error")
        status.set_class(watching and not error, "-watch")
        self.query_one("#clock", Field).set(clock_with_zone(snapshot.now))

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
