"""ReleaseApp: the dashboard over one `ReleaseEngine`.

The app renders engine snapshots and sends intents; it never talks to a provider and
reads nothing of the engine but its snapshots, events and intents. Every intent's
`ActionResult` is shown. Watch-only is enforced by the engine; here it only hides the
action keys and explains why they do nothing. The command palette is built here, from
the same key table (`keys.KEYS`) as the bindings and the help screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.worker import Worker

from relconsole.engine.release import (
    FIRST_READ_TRIES,
    ActionResult,
    Intent,
    ReleaseEngine,
    WatchOnlyError,
)
from relconsole.engine.state import Event, EventKind, Snapshot
from relconsole.handoff import HANDOFF_TIMEOUT, Handoff, hand_off
from relconsole.model import Flag, Mode, Phase
from relconsole.tui import asks, hangup, keys
from relconsole.tui.dialogs import ChoiceDialog, Dialog, Rollout, Targeting
from relconsole.tui.gate_details import GateDetails
from relconsole.tui.help import HelpScreen
from relconsole.tui.journal_export import journal_markdown, save_new
from relconsole.tui.keys import ReleaseFooter
from relconsole.tui.themes import (
    NO_COLOR_CSS,
    VARIABLE_DEFAULTS,
    no_color,
    offered,
    register_themes,
    starting_theme,
)
from relconsole.tui.widgets import (
    CanaryPanel,
    ErrorRatePanel,
    FlagsPanel,
    GatesPanel,
    JournalPanel,
    LatencyPanel,
    ReleaseHeader,
)
from relconsole.tui.widgets.flags import effect as flag_effect
from relconsole.tui.widgets.journal import JournalLog
from relconsole.tui.widgets.panel import Panel
from relconsole.tui.widgets.too_small import TooSmall, too_small

WIDE = 110  # columns from which panels sit side by side and the footer has its padding
CRAMPED_BELOW = 24  # lines under which the metric panels give their rows to the rest
R = TypeVar("R")
STALL_AFTER_POLLS = 3  # snapshots missed before the header warns that the screen is old
FLAG_ACTIONS = frozenset({"kill_flag", "restore_flag", "set_rollout", "target_flag"})


class ReleaseApp(App[None]):
    """The release console."""

    TITLE = "relconsole"

    CSS = """
    Screen { layout: vertical; }
    #top { layout: horizontal; height: auto; }
    #canary { width: 47%; }
    #metrics { layout: horizontal; width: 1fr; height: auto; }
    #metrics > Panel { width: 1fr; }
    #top Panel { min-height: 7; }
    /* Wide: gates, flags and journal each get the full width, so the flags table has
       room for key, type, state, owner, age and audit marker side by side. */
    #lower {
        layout: grid;
        grid-size: 1;
        grid-rows: auto auto 1fr;
        height: 1fr;
    }
    /* No flag provider: no empty flags table; the journal takes its room. */
    #lower.-no-flags { grid-rows: auto 1fr; }
    JournalLog { overflow-y: auto; }
    Screen.-narrow {
        #top { layout: vertical; }
        #canary, #metrics { width: 100%; }
        #canary { min-height: 0; }
        #lower { grid-size: 2; grid-columns: 3fr 2fr; grid-rows: auto 1fr; }
        #gates { column-span: 2; }
        #lower.-no-flags #journal { column-span: 2; }
        FooterKey {  /* " a advance" rather than " a advance ": every key fits in 80 */
            .footer-key--key { padding: 0 0 0 1; }
            .footer-key--description { padding: 0 0 0 1; }
        }
    }
    Screen.-narrow.-short, Screen.-narrow.-cramped {
        /* The flags share a short row with the journal: fill it and let the table scroll
           inside it, so the row under the cursor (the one `k` flips) is always in view. */
        #flags { height: 100%; }
        FlagsTable { height: 1fr; }
    }
    Screen.-short, Screen.-cramped {
        #top Panel { min-height: 0; }
        MetricPanel .detail { display: none; }
        FlagsPanel #detail { display: none; }
        FlagsTable { max-height: 8; }
    }
    /* Under 24 lines the metric panels go (the gates table shows the same canary and
       baseline values), so the flags and the journal keep rows to show. */
    Screen.-cramped #metrics { display: none; }
    /* Rolled back, the canary takes no traffic and its charts show nothing new (the
       gates keep the values that tripped it): on a short screen the journal — what
       happened, and who did it — gets their rows. */
    Screen.-short.-rolled-back #metrics { display: none; }
    /* Under 24 lines the way to try again is left to `?`, and a rolled-back gate's
       reason to the banner and the table's values: at 60×20 they took every row the
       flags and the journal had. */
    Screen.-cramped GatesPanel .hint { display: none; }
    Screen.-cramped.-rolled-back GatesPanel .reason { display: none; }
    TooSmall { display: none; }
    Screen.-too-small {
        /* Toasts too: at 40×12 one covered half of the sentence that says the size. */
        #header, #top, #lower, ReleaseFooter, Toast { display: none; }
        TooSmall { display: block; }
    }
    """ + NO_COLOR_CSS

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        *keys.bindings(),
        # Only for a console opened from `relconsole fleet` (see `check_action`): leave
        # it as `q` does, then show the fleet again instead of ending.
        Binding("escape", "quit(True)", "fleet", key_display="esc"),
    ]

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-cramped"), (CRAMPED_BELOW, "-short"), (32, "-tall")]

    AUTO_FOCUS = "FlagsTable"

    def __init__(
        self,
        engine: ReleaseEngine,
        *,
        theme: str | None = None,
        start_engine: bool = True,
        mouse: bool = True,
        watch_reason: str = "",
        background: Sequence[Callable[[], Awaitable[object]]] = (),
        simulation: float | None = None,
        state_dir: Path | None = None,
        handoff: Handoff | None = None,
        take: Callable[[str], Awaitable[str | None]] | None = None,
        fleet: bool = False,
        notices: Sequence[str] = (),
        fleet_entry: bool = False,
    ) -> None:
        """`watch_reason` says why this console only watches (shown once at start);
        `background` are extra coroutines to run beside the engine loop (the demo's
        simulated driver), started and stopped with it. `simulation` is the demo's clock
        speed: the header marks the release as simulated. `state_dir` is where a
        screenshot goes when the current directory cannot take it. `handoff` says how a
        headless driver is started when the operator quits mid-release (None: it is not
        offered), and how to attach again. `fleet`: opened from `relconsole fleet`, so
        escape leaves for it (`to_fleet` is then True once the app has exited).
        `fleet_entry`: the palette offers to open the fleet (`relconsole run`: the
        Rollouts of this cluster, or this config's folder); leaving for it sets `to_fleet`.
        `notices` are warnings shown once at start (others on this host will not see
        this driver: the state folder fell back to a private one)."""
        # Under NO_COLOR Textual picks its colour filter here, from the theme it starts
        # with (not ours): Monochrome turned the ansi theme's "terminal default" colours
        # into black on black. Native ANSI colour makes it pick NoColor instead: the
        # terminal's own foreground and background, never equal.
        super().__init__(ansi_color=True if no_color() else None)
        self.engine = engine
        self.start_notices = tuple(notices)
        self.start_engine = start_engine
        self.mouse = mouse
        self.watch_reason = watch_reason
        self.background = tuple(background)
        self.simulation = simulation
        self.state_dir = state_dir
        self.snapshot: Snapshot = engine.snapshot()
        self.notices: deque[str] = deque(maxlen=50)  # what was notified, newest last
        self.notice_titles: deque[str] = deque(maxlen=50)  # their titles, in step
        self._wanted_theme = theme
        self._theme_problem = ""
        self._unsubscribe: Callable[[], None] | None = None
        self._pending_snapshot: Snapshot | None = None
        self._pending_events: list[Event] = []
        self._flush_scheduled = False
        self._in_flight: str | None = None
        self._quit_armed = False
        self.handoff = handoff
        # Takes the free lease and makes the engine drive (the session's `take`): why
        # not, or None once this console drives. None: this console cannot take it.
        self.take = take
        # Opened from the fleet: escape (or the palette) leaves for it, `q` still ends
        # everything; `to_fleet` tells the CLI which of the two it was.
        self.fleet = fleet
        self.fleet_entry = fleet_entry
        self.to_fleet = False
        self.exit_line = ""  # printed by the CLI once the terminal is restored
        self._engine_worker: Worker[None] | None = None
        self._handing_off = False
        # Dashboard keys, in the order Textual tries their bindings (see `on_event`).
        self._key_actions: dict[str, list[str]] = {}
        for binding in keys.bindings():
            self._key_actions.setdefault(binding.key, []).append(binding.action)
        self._register_themes()

    # ------------------------------------------------------------------ set-up

    def _register_themes(self) -> None:
        self._theme_problem = register_themes(self) or self._theme_problem

    @property
    def offered_themes(self) -> list[str]:
        """relconsole's themes that stay legible at 256 colours; Textual's stock themes
        (registered by Textual itself) are never offered."""
        return offered(self.available_themes)

    def _initial_theme(self) -> str:
        name, problem = starting_theme(self, self._wanted_theme)
        if problem:
            self._theme_problem = problem
        return name

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def run(self, *args: Any, mouse: bool | None = None, **kwargs: Any) -> Any:
        return super().run(*args, mouse=self.mouse if mouse is None else mouse, **kwargs)

    def compose(self) -> ComposeResult:
        yield TooSmall(id="too-small")
        yield ReleaseHeader(id="header", simulation=self.simulation,
                            take_key="t" if self.take is not None else "")
        with Container(id="top"):
            yield CanaryPanel(id="canary")
            with Container(id="metrics"):
                yield ErrorRatePanel(id="errors")
                yield LatencyPanel(id="latency")
        with Container(id="lower"):
            yield GatesPanel(id="gates")
            yield FlagsPanel(id="flags")
            yield JournalPanel(id="journal")
        yield ReleaseFooter()

    def on_mount(self) -> None:
        self.theme = self._initial_theme()
        if self._theme_problem:
            self._notify(f"{self._theme_problem}; using {self.theme}", severity="warning")
        self._unsubscribe = self.engine.subscribe(self._snapshot_arrived, self._event_arrived)
        first = self.engine.snapshot()
        self._draw(first)
        self.query_one(JournalPanel).add(self.engine.recent_events(50))
        if self.watching and self.watch_reason:
            self._notify(f"watch-only: {self.watch_reason}", timeout=10)
        for notice in self.start_notices:
            self._notify(notice, severity="warning", timeout=30)
        for warning in first.journal_warnings:
            # e.g. a torn last line repaired after a crash: say so, once, loudly enough.
            self._notify(f"journal: {warning}", severity="warning", timeout=30)
        if self.start_engine:
            self._watch_for_hangup()
            self._engine_worker = self._run_engine()
            for job in self.background:
                self.run_worker(job, group="background", exit_on_error=False)
            self.set_interval(1.0, self._check_stall)

    def _watch_for_hangup(self) -> None:
        """Leave when the terminal goes away (see `hangup`), and on SIGTERM.

        The release is left exactly as it is and the journal is already fsynced per
        record. Only a real terminal is watched: Pilot tests run headless.
        """
        if self.is_headless:
            return
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, self._terminate)
        fd = hangup.terminal_fd()
        if fd is None:
            return
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._hung_up)
        # SIGHUP may be ignored (nohup) or never sent: probe the terminal as well.
        self.set_interval(1.0, lambda: self._probe_terminal(fd))

    def _probe_terminal(self, fd: int) -> None:
        if hangup.terminal_gone(fd):
            self._hung_up()

    def _hung_up(self) -> None:
        hangup.leave_now(self.engine.stop)

    def _terminate(self) -> None:
        self.engine.stop()
        self.exit(return_code=0)

    def on_unmount(self) -> None:
        self.engine.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @work(name="engine", group="engine", exit_on_error=False)
    async def _run_engine(self) -> None:
        try:
            await self.engine.run()
        except Exception as exc:  # the screen must say the data stopped, not freeze green
            self.query_one(ReleaseHeader).show_stall(self.snapshot.now, stopped=True)
            self._notify(f"engine stopped: {exc}", severity="error", timeout=3600)
            raise

    # ------------------------------------------------------------------ keys, in order

    async def on_event(self, event: events.Event) -> None:
        """Every key acts in the order it was typed, however fast the keys come.

        Textual hands a key to the focused widget and acts on its binding only once it
        has bubbled back up, so in a burst (a paste, an SSH link catching up) the keys
        behind an action key reached the dashboard before the dialog it opens: they were
        lost, or worse, ran other actions. Here, before the key goes anywhere, an open
        dialog takes it (`Dialog.take`), and a dashboard action key runs its action — which
        opens its dialog at once, so the next key finds it.
        """
        if isinstance(event, events.Key | events.Paste) and not event.is_forwarded:
            stack = self.screen_stack
            top = stack[-1] if stack else None
            if isinstance(top, Dialog) and top.take(event):
                return
            if isinstance(event, events.Key) and len(stack) == 1:
                for action in self._key_actions.get(event.key, ()):
                    if await self.run_action(action):
                        return
        await super().on_event(event)

    # ------------------------------------------------------------------ engine → screen

    def _snapshot_arrived(self, snapshot: Snapshot) -> None:
        self._pending_snapshot = snapshot
        self._schedule_flush()

    def _event_arrived(self, event: Event) -> None:
        self._pending_events.append(event)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Coalesce a burst of engine callbacks into one redraw."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.call_later(self._flush_pending)

    def _flush_pending(self) -> None:
        self._flush_scheduled = False
        events, self._pending_events = self._pending_events, []
        if events:
            self.query_one(JournalPanel).add(events)
        for event in events:
            if event.kind is EventKind.LEASE and event.message.startswith("lease lost"):
                # Lost the lease: who took it, when and why, where it cannot be missed
                # (at 80×24 the journal panel may have no rows to show it in).
                self._notify(event.message, title="lease lost", severity="warning",
                             timeout=60)
        snapshot, self._pending_snapshot = self._pending_snapshot, None
        if snapshot is not None:
            self._draw(snapshot)

    def _draw(self, snapshot: Snapshot) -> None:
        try:
            self._draw_now(snapshot)
        except NoMatches:
            # The app is exiting and its widgets are being removed while the engine still
            # publishes: there is nothing left to draw on (this raised in the header).
            if self._closing_down():
                return
            raise

    def _closing_down(self) -> bool:
        # Seen in tests: during shutdown `is_running` is already False while `_exit` is
        # not yet set; either means the screen is going away.
        return not self.is_running or self._exit or self._closing

    def _draw_now(self, snapshot: Snapshot) -> None:
        header = self.query_one(ReleaseHeader)
        before = self.snapshot
        self.snapshot = snapshot
        header.show(snapshot)
        for panel in self.query(Panel):
            panel.show(snapshot)
        self._show_flags_panel(bool(snapshot.flags_provider))
        self.default_screen.set_class(snapshot.phase is Phase.ROLLED_BACK, "-rolled-back")
        if isinstance(self.screen, GateDetails):
            self.screen.show(snapshot)
        if self.default_screen.has_class("-too-small"):
            self.query_one(TooSmall).show_for(self.size, snapshot)
        if (before.mode, before.phase, before.flags_provider, before.driver) != (
            snapshot.mode, snapshot.phase, snapshot.flags_provider, snapshot.driver
        ):
            self.refresh_bindings()

    def _show_flags_panel(self, shown: bool) -> None:
        """Without a flag provider there is nothing to list: the journal takes the room."""
        panel = self.query_one(FlagsPanel)
        if panel.display == shown:
            return
        panel.display = shown
        self.query_one("#lower").set_class(not shown, "-no-flags")
        if not shown and self.focused is not None and panel in self.focused.ancestors:
            self.query_one(JournalLog).focus()

    def _check_stall(self) -> None:
        # A fresh snapshot's time is the engine clock's now (virtual in the demo); the
        # one on screen is as old as the last publish.
        age = self.engine.snapshot().now - self.snapshot.now
        limit = max(STALL_AFTER_POLLS * self.snapshot.plan.poll_interval, 15.0)
        self.query_one(ReleaseHeader).show_stall(self.snapshot.now if age > limit else None)

    def on_resize(self, event: events.Resize) -> None:
        # Below the wide breakpoint every action key fits in the footer only without the
        # palette key at the right (ctrl+p still works, and `?` lists it).
        footer = self.query_one(ReleaseFooter)
        wide = event.size.width >= WIDE
        if footer.show_command_palette != wide:
            footer.show_command_palette = wide
        small = too_small(event.size)
        self.default_screen.set_class(small, "-too-small")
        if small:
            self.query_one(TooSmall).show_for(event.size, self.snapshot)

    def on_flags_panel_selected(self, event: FlagsPanel.Selected) -> None:
        self.refresh_bindings()

    # ------------------------------------------------------------------ state helpers

    @property
    def watching(self) -> bool:
        return self.snapshot.mode is Mode.WATCH or self.engine.mode is Mode.WATCH

    @property
    def selected_flag(self) -> Flag | None:
        return self.query_one(FlagsPanel).selected

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "quit" and parameters:
            return self.fleet  # escape: back to the fleet, only when there is one
        if action == "take_lease":
            return self._take_refusal() is None  # in the footer only while it is free
        if action == "refuse_watch":
            # The hidden twin also answers `k` and `%` when no flag provider is set up, and
            # the traffic keys of a release that is over.
            no_flags = not self.snapshot.flags_provider and bool(parameters) and (
                parameters[0] in FLAG_ACTIONS
            )
            over = bool(parameters) and self._over(str(parameters[0])) is not None
            return self.watching or no_flags or over
        if action not in keys.DRIVING_ACTIONS:
            return True
        if self.watching:
            return False
        if action in FLAG_ACTIONS and not self.snapshot.flags_provider:
            return False  # no flag provider: `k` and `%` have nothing to act on
        phase = self.snapshot.phase
        if self._over(action) is not None:
            # Over, or at 100 %: the footer offers what is left to do. The key still answers
            # (its hidden twin, `refuse_watch`) with the engine's own words.
            return False
        paused = phase is Phase.PAUSED
        if action == "pause":
            return not paused
        if action == "resume":
            return paused
        if action in ("kill_flag", "restore_flag"):
            flag = self.selected_flag
            killed = flag is not None and flag.killed
            return killed if action == "restore_flag" else not killed
        return True

    def _notify(self, message: str, *, severity: SeverityLevel = "information",
                title: str = "", timeout: float | None = None) -> None:
        self.notices.append(message)
        self.notice_titles.append(title)
        self.notify(message, title=title, severity=severity, timeout=timeout)

    def _refused(self, intent: str) -> bool:
        """True (after saying why) when this intent must not go to the engine now."""
        if self._handing_off:
            self._notify("the release is being handed to a headless driver", severity="warning")
            return True
        if self.watching:
            self._notify(f"watch-only: {self.snapshot.driver} drives this release",
                         severity="warning")
            return True
        if self._in_flight is not None and intent != "rollback":
            # Rollback is the way out: it is never queued behind anything.
            self._notify(f"{self._in_flight} is still running — wait for its result",
                         severity="warning")
            return True
        return False

    async def _call(
        self, intent: str, call: Callable[[], Awaitable[ActionResult]], reason: str = ""
    ) -> None:
        """Send one intent and show its verified outcome, with the reason as journalled.

        The reason is quoted exactly as the dialog handed it to the engine, so what was
        typed in a burst can be checked against what the journal now says.
        """
        self._in_flight = intent
        title = f"{intent} · reason journalled: “{reason}”" if reason else intent
        self.query_one(ReleaseHeader).show_busy(intent)
        try:
            result = await call()
        except WatchOnlyError as exc:
            self._notify(str(exc), severity="warning")
        except Exception as exc:  # an engine bug must not take the console down
            self._notify(f"{intent} failed: {exc}", severity="error", timeout=30)
        else:
            self._notify(
                result.message,
                title=title,
                severity="information" if result.ok else "error",
                timeout=8 if result.ok else 20,
            )
        finally:
            self._in_flight = None
            self._quit_armed = False
            self.query_one(ReleaseHeader).show_busy(None)

    # ------------------------------------------------------------------ actions (keys)

    def action_advance(self) -> None:
        self.request_advance()

    def action_pause(self) -> None:
        self.request_pause()

    def action_resume(self) -> None:
        self.request_resume()

    def action_promote(self) -> None:
        self.request_promote()

    def action_rollback(self) -> None:
        self.request_rollback()

    def action_kill_flag(self) -> None:
        self._flip_selected()

    def action_restore_flag(self) -> None:
        self._flip_selected()

    def action_set_rollout(self) -> None:
        flag = self.selected_flag
        if flag is None:
            self._notify("no flag selected — pick one in the Flags table", severity="warning")
            return
        self.request_rollout(flag.key)

    def action_target_flag(self) -> None:
        flag = self.selected_flag
        if flag is None:
            self._notify("no flag selected — pick one in the Flags table", severity="warning")
            return
        self.request_target(flag.key)

    def _over(self, intent: str) -> str | None:
        """Why a traffic key has nothing left to do in this phase (rolled back: all of
        them; promoted: all but rollback), in the engine's words; None while it has."""
        if self.watching:
            return None
        phase = self.snapshot.phase
        if phase is Phase.ROLLED_BACK and intent == "rollback":
            return "rollback refused: already rolled back"
        if phase not in (Phase.ROLLED_BACK, Phase.PROMOTED):
            return None
        traffic: dict[str, Intent] = {"advance": "advance", "promote": "promote",
                                      "pause": "pause", "resume": "resume"}
        if intent not in traffic:
            return None
        return (self.engine.why_not(traffic[intent])
                or f"{intent} refused: release is {phase.label.lower()}")

    def action_refuse_watch(self, intent: str) -> None:
        over = self._over(intent)
        if over is not None:
            self._notify(over, severity="warning")
            return
        if not self.watching and intent in FLAG_ACTIONS and not self.snapshot.flags_provider:
            self._notify("no flag provider is configured (providers.flags): there are no "
                         "flags to change", severity="warning")
            return
        self._refused(intent)

    def _take_refusal(self) -> str | None:
        if self.take is None:
            return "this console cannot take the lease: `relconsole run -c FILE` drives"
        if not self.watching:
            return "this console drives this release already"
        if self.snapshot.driver != "nobody":
            return (f"{self.snapshot.driver} drives this release — taking a live lease is "
                    "a take-over: relconsole run --take-over --take-over-reason TEXT")
        return None

    def action_refuse_take(self) -> None:
        self._notify(f"not taken: {self._take_refusal() or 'try again'}", severity="warning")

    def action_take_lease(self) -> None:
        """Nobody drives: after a confirmation with a reason, this console drives."""
        refusal = self._take_refusal()
        if refusal is not None or self.take is None:
            self._notify(f"not taken: {refusal}", severity="warning")
            return
        take = self.take

        def answered(reason: str | None) -> None:
            if reason is None:
                self._notify("take cancelled — this console still only watches")
                return
            self._take_worker(take, reason)

        self._ask(asks.take_lease(self.snapshot), answered)

    @work(group="intent", exit_on_error=False)
    async def _take_worker(
        self, take: Callable[[str], Awaitable[str | None]], reason: str
    ) -> None:
        header = self.query_one(ReleaseHeader)
        header.show_busy("take")
        try:
            refusal = await take(reason)
        except Exception as exc:  # the lease files or the journal: say so, keep watching
            self._notify(f"not taken: {exc}", severity="error", timeout=30)
            return
        finally:
            header.show_busy(None)
        if refusal is not None:
            self._notify(f"not taken: {refusal}", severity="warning", timeout=20)
            return
        self.watch_reason = ""
        self._draw(self.engine.snapshot())
        self._notify(f"this console drives the release now — reason journalled: “{reason}”",
                     title="lease taken", timeout=10)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(watching=self.watching, driver=self.snapshot.driver,
                                    production=self.snapshot.plan.production,
                                    flags=bool(self.snapshot.flags_provider)))

    def action_gate_details(self) -> None:
        self.push_screen(GateDetails(self.snapshot))

    def action_save_journal(self) -> Path | None:
        """Save the journal as Markdown and say where (a new file; never overwritten)."""
        text, count = journal_markdown(self.engine)
        folders: list[Path] = []
        problems: list[str] = []
        try:
            folders.append(Path.cwd())
        except OSError as exc:  # the directory the console started in was removed
            problems.append(f"current directory: {exc.strerror or exc}")
        folders.append(self.state_dir or self.engine.journal.path.parent)
        path, failed = save_new(text, f"relconsole-journal-{self.snapshot.plan.release_id}",
                                folders)
        if path is None:
            self._notify(f"journal not saved — {'; '.join(problems + failed)}",
                         title="save journal", severity="error", timeout=20)
            return None
        self._notify(f"journal saved ({count} records, Markdown): {path}",
                     title="save journal", timeout=20)
        return path

    def action_copy_journal(self) -> None:
        text, count = journal_markdown(self.engine)
        self.copy_to_clipboard(text)
        self._notify(f"journal copied ({count} records, Markdown) through OSC 52: only a "
                     "terminal that supports it puts it on the clipboard (tmux: "
                     "set-clipboard on). If nothing arrives, s saves it to a file.",
                     title="copy journal", timeout=15)

    def action_help_quit(self) -> None:
        # Textual's ctrl+c hint names q only; here q may ask first, and the engineer who
        # pressed ctrl+c most likely wanted to copy.
        self._notify("ctrl+c neither quits nor copies here: q quits (asks first while this "
                     "console drives). To copy: s saves the journal, ctrl+p → Copy journal; "
                     "c copies in a detail view (enter on the journal, g)",
                     title="ctrl+c", timeout=10)

    async def action_quit(self, to_fleet: bool = False) -> None:
        """Quit. A console that drives a release that is not over asks first.

        While it runs, a driving console is what rolls the canary back when a gate fails;
        quitting it silently left the release unguarded. So it asks: hand the release to
        a headless driver, pause it, or leave it as it is (saying that nobody will roll
        it back) — and prints one line on the way out. Watching consoles, and releases
        that are promoted or rolled back, quit at once as before.
        """
        if self._handing_off or isinstance(self.screen, ChoiceDialog):
            return  # already leaving, or already asking how
        self.to_fleet = to_fleet and (self.fleet or self.fleet_entry)
        if self._in_flight is not None and not self._quit_armed:
            self._quit_armed = True
            self._notify(
                f"{self._in_flight} is still being applied — press q again to quit anyway "
                "(the engine picks it up from the journal on the next start)",
                severity="warning",
            )
            return
        snap = self.engine.snapshot()
        if self.engine.mode is not Mode.DRIVE or snap.phase.terminal:
            self._leave("")
            return
        self._ask(
            asks.quit_driving(snap, pause_refused=self.engine.why_not("pause"),
                              handoff_refused=self._handoff_refused()),
            self._quit_chosen,
        )

    def _handoff_refused(self) -> str:
        if self.handoff is None:
            return "not offered by this console"
        return self.handoff.unavailable

    def _quit_chosen(self, choice: str | None) -> None:
        if choice is None:
            self._notify("quit cancelled — this console still drives the release")
        elif choice == asks.LEAVE_AS_IS:
            self.engine.leave(f"{self.engine.actor} quit the console and left the release "
                              "as it was: nobody drives it")
            self._leave(self._exit_line("nobody drives it: nothing rolls it back until a "
                                        "console or a headless driver attaches"))
        elif choice == asks.PAUSE_AND_QUIT:
            self._pause_and_quit()
        elif choice == asks.HAND_OFF:
            self._hand_off()

    def _exit_line(self, how: str) -> str:
        """One line for the terminal once the console is gone: where the release stands,
        who (if anyone) guards it, where its journal is and how to attach again."""
        snap = self.engine.snapshot()
        again = self.handoff.reattach if self.handoff is not None else "relconsole run -c FILE"
        return (f"relconsole: {asks.where(snap)} — {how}. Journal: {self.engine.journal.path}"
                f". Re-attach: {again}")

    def _leave(self, line: str) -> None:
        self.exit_line = line
        self.engine.stop()
        self.exit()

    @work(group="quit", exit_on_error=False)
    async def _pause_and_quit(self) -> None:
        self.query_one(ReleaseHeader).show_busy("pause")
        try:
            result = await self.engine.pause(f"{self.engine.actor} paused the release and "
                                             "quit the console")
        finally:
            self.query_one(ReleaseHeader).show_busy(None)
        if not result.ok:
            self._notify(f"not quitting: {result.message}", title="pause", severity="error",
                         timeout=30)
            return
        self._leave(self._exit_line("paused; nobody drives it"))

    @work(group="quit", exit_on_error=False)
    async def _hand_off(self) -> None:
        handoff = self.handoff
        if handoff is None:
            return
        if self._in_flight is not None:
            self._notify(f"not handed off: {self._in_flight} is still running — wait for its "
                         "result", severity="warning")
            return
        self._handing_off = True
        header = self.query_one(ReleaseHeader)
        header.show_busy("hand-off")
        self._notify("handing the release to a headless driver…", timeout=30)
        await self._stand_down()
        plan = self.engine.plan
        handed = await hand_off(
            handoff, actor=self.engine.actor,
            reason=f"hand-off: {self.engine.actor} quit the console (pid {os.getpid()}) and "
                   "handed the release to a headless driver",
            timeout=HANDOFF_TIMEOUT + FIRST_READ_TRIES * plan.call_timeout,
        )
        if handed.ok:
            self._leave(self._exit_line(handed.message))
            return
        self._handing_off = False
        header.show_busy(None)
        self._notify(f"hand-off failed: {handed.message}", severity="error", timeout=120)
        if self.start_engine:
            # Still its driver (the lease was never taken), or demoted on its first poll
            # if it was: either way the screen says so.
            self._engine_worker = self._run_engine()

    async def _stand_down(self) -> None:
        """Stop the poll loop and wait until it has stopped: no tick may act while the
        lease changes hands."""
        self.engine.stop()
        worker, self._engine_worker = self._engine_worker, None
        if worker is not None:
            with contextlib.suppress(Exception):
                await worker.wait()

    def switch_theme(self, name: str) -> None:
        self.theme = name

    # ------------------------------------------------------------------ command palette

    # Textual's commands that this console replaces: Quit is in the key table, Theme
    # offered all twenty stock themes, and Screenshot saved to ~/Downloads, which a
    # bastion does not have.
    REPLACED_COMMANDS = frozenset({"Quit", "Theme", "Screenshot"})

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands (less those replaced above), then this console's."""
        for command in super().get_system_commands(screen):
            if command.title not in self.REPLACED_COMMANDS:
                yield command
        yield from self.palette_commands()
        yield SystemCommand(
            "Copy journal to clipboard",
            "the journal as Markdown, via OSC 52 (needs a terminal that supports it; "
            "Save journal to a file is the fallback)",
            self.action_copy_journal,
        )
        yield SystemCommand(
            "Screenshot",
            "save an SVG of the screen in the current directory (or the state folder)",
            # After the palette has closed, so it is not in the picture.
            lambda: self.set_timer(0.1, self.save_screen),
        )

    def save_screen(self) -> Path | None:
        """Save an SVG of the screen and say where; the current directory first, then
        the state folder. Returns the file, or None (after saying why) when neither
        can take it."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"relconsole-{self.snapshot.plan.release_id}-{stamp}.svg"
        svg = self.export_screenshot()
        problems: list[str] = []
        folders: list[Path] = []
        try:
            folders.append(Path.cwd())
        except OSError as exc:  # the directory the console started in was removed
            problems.append(f"current directory: {exc.strerror or exc}")
        if self.state_dir is not None:
            folders.append(self.state_dir)
        for folder in folders:
            path = folder / name
            try:
                path.write_text(svg, encoding="utf-8")
            except OSError as exc:
                problems.append(f"{folder}: {exc.strerror or exc}")
                continue
            self._notify(f"screenshot saved: {path}", title="screenshot", timeout=15)
            return path
        self._notify(f"screenshot not saved — {'; '.join(problems)}", severity="error",
                     timeout=20)
        return None

    def palette_commands(self) -> Iterator[SystemCommand]:
        """Every key's action, each flag's kill switch and rollout, and the themes.

        In watch-only mode the actions are still listed, marked watch-only; choosing one
        gives the same notice as pressing its key, and nothing reaches the engine. An
        action runs without `check_action`, so the one of Pause and Resume that does not
        apply is still answered (by the engine, with its reason) rather than ignored.
        """
        watching = self.watching
        note = f" (watch-only: {self.snapshot.driver} drives)" if watching else ""
        for spec in keys.KEYS:
            if not spec.palette:
                continue
            text = spec.palette_help or spec.help
            if spec.drives and watching:
                yield SystemCommand(spec.palette, text + note,
                                    partial(self.action_refuse_watch, spec.action))
            else:
                yield SystemCommand(spec.palette, text, getattr(self, f"action_{spec.action}"))
        rollout_help = (
            "percentage 0–100; asks for a reason" if self.snapshot.flag_rollout_supported
            else "not possible here: " + asks.rollout_unsupported(self.snapshot)
        )
        cannot_target = asks.targeting_unsupported(self.snapshot)
        target_help = ("users by attribute (plan=beta), whatever the percentage; asks for "
                       "a reason" if cannot_target is None
                       else f"not possible here: {cannot_target}")
        for flag in self.snapshot.flags:
            if flag.killed:
                yield SystemCommand(f"Restore flag {flag.key}",
                                    f"{flag_effect(flag, kill=False)}; asks for a reason"
                                    + note,
                                    partial(self.request_flag, flag.key, True))
            else:
                yield SystemCommand(f"Kill flag {flag.key}",
                                    f"{flag_effect(flag, kill=True)}; asks for a reason"
                                    + note,
                                    partial(self.request_flag, flag.key, False))
            yield SystemCommand(f"Set rollout of flag {flag.key}", rollout_help + note,
                                partial(self.request_rollout, flag.key))
            yield SystemCommand(f"Target a cohort with flag {flag.key}", target_help + note,
                                partial(self.request_target, flag.key))
        if self.fleet:
            yield SystemCommand("Back to the fleet",
                                "leave this console for the fleet table, as q leaves it (esc)",
                                partial(self.action_quit, True))
        elif self.fleet_entry:
            yield SystemCommand("Open the fleet",
                                "every release of this cluster (or this config's folder) in "
                                "one table; leaves this console as q does",
                                partial(self.action_quit, True))
        if no_color():
            return  # NO_COLOR draws no colour whatever the theme: nothing to choose
        for name in self.offered_themes:
            yield SystemCommand(f"Theme: {name}", "colour theme",
                                partial(self.switch_theme, name))

    # ------------------------------------------------------------------ intents
    #
    # Every request opens its dialog at once, in the key press that asked for it (not in
    # a worker that runs later): a key that follows in the same burst then lands in the
    # dialog (`on_event`), never on the dashboard behind it. The intent itself is sent
    # from a worker once the dialog has answered.

    def _ask(self, dialog: ModalScreen[R], then: Callable[[R | None], None]) -> None:
        self.push_screen(dialog, callback=then)

    def _send(self, intent: str, call: Callable[[], Awaitable[ActionResult]],
              reason: str = "") -> None:
        # Busy from now, not from when the worker starts: a key in between is refused.
        self._in_flight = intent
        self._send_worker(intent, call, reason)

    @work(group="intent", exit_on_error=False)
    async def _send_worker(self, intent: str, call: Callable[[], Awaitable[ActionResult]],
                           reason: str) -> None:
        await self._call(intent, call, reason)

    def request_advance(self) -> None:
        if self._refused("advance"):
            return
        snap = self.snapshot
        # What the engine would still refuse once the bake may be cut short: said now,
        # with the engine's words, instead of asking first and refusing after.
        refusal = self.engine.why_not("advance", skip_bake=True, reason=asks.EARLY_REASON)
        if refusal is not None:
            self._notify(refusal, title="advance", severity="error", timeout=20)
            return
        if asks.advances_to_last(snap):
            # The last step is a promotion, and is asked as one (typed in production).
            def last(reason: str | None) -> None:
                if reason is None:
                    self._notify("advance cancelled — nothing changed")
                    return
                early = asks.needs_early(self.snapshot)
                self._send("advance", lambda: self.engine.advance(
                    reason or (asks.EARLY_REASON if early else ""), skip_bake=early), reason)

            self._ask(asks.advance_to_last(snap), last)
            return
        dialog = asks.early_advance(snap)
        if dialog is None:
            self._send("advance", lambda: self.engine.advance(""))
            return

        def early(confirmed: bool | None) -> None:
            if not confirmed:
                self._notify("advance cancelled — nothing changed")
                return
            self._send("advance", lambda: self.engine.advance(asks.EARLY_REASON,
                                                              skip_bake=True))

        self._ask(dialog, early)

    def request_pause(self) -> None:
        if self._refused("pause"):
            return

        def answered(reason: str | None) -> None:
            if reason is None:
                self._notify("pause cancelled — nothing changed")
                return
            self._send("pause", lambda: self.engine.pause(reason), reason)

        self._ask(asks.pause(), answered)

    def request_resume(self) -> None:
        if self._refused("resume"):
            return
        self._send("resume", lambda: self.engine.resume(""))

    def request_promote(self) -> None:
        if self._refused("promote"):
            return
        refusal = self.engine.why_not("promote")
        if refusal is not None:
            # No dialog for a promotion the engine will refuse: its reason, now.
            self._notify(refusal, title="promote", severity="error", timeout=20)
            return

        def answered(reason: str | None) -> None:
            if reason is None:
                self._notify("promote cancelled — nothing changed")
                return
            self._send("promote", lambda: self.engine.promote(reason), reason)

        self._ask(asks.promote(self.snapshot), answered)

    def request_rollback(self) -> None:
        if self._refused("rollback"):
            return
        snap = self.snapshot
        if snap.phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED):
            def retry(confirmed: bool | None) -> None:
                if confirmed:
                    self._send("rollback",
                               lambda: self.engine.rollback("operator retried the rollback"))

            self._ask(asks.retry_rollback(snap), retry)
            return

        def answered(reason: str | None) -> None:
            if reason is None:
                self._notify("rollback cancelled — nothing changed")
                return
            self._send("rollback", lambda: self.engine.rollback(reason), reason)

        self._ask(asks.rollback(snap), answered)

    def _flip_selected(self) -> None:
        flag = self.selected_flag
        if flag is None:
            self._notify("no flag selected — pick one in the Flags table", severity="warning")
            return
        self.request_flag(flag.key, flag.killed)

    def request_flag(self, key: str, enabled: bool) -> None:
        if self._refused("kill" if not enabled else "restore"):
            return

        def answered(reason: str | None) -> None:
            if reason is None:
                self._notify(f"{'restore' if enabled else 'kill'} {key} cancelled — "
                             "nothing changed")
                return
            intent = "restore flag" if enabled else "kill flag"
            self._send(intent, lambda: self.engine.set_flag(key, enabled, reason), reason)

        self._ask(asks.flag(self.snapshot, key, enabled), answered)

    def request_rollout(self, key: str) -> None:
        if self._refused("rollout"):
            return
        snap = self.snapshot
        if not snap.flag_rollout_supported:
            self._notify(f"rollout not changed: {asks.rollout_unsupported(snap)}",
                         severity="warning")
            return
        flag = next((f for f in snap.flags if f.key == key), None)
        if flag is None:
            self._notify(f"no flag {key} — it is no longer listed", severity="warning")
            return

        def answered(choice: Rollout | None) -> None:
            if choice is None:
                self._notify(f"rollout of {key} cancelled — nothing changed")
                return
            self._send("flag rollout",
                       lambda: self.engine.set_flag_rollout(key, choice.percent, choice.reason),
                       choice.reason)

        self._ask(asks.rollout(snap, flag), answered)

    def request_target(self, key: str) -> None:
        if self._refused("cohort"):
            return
        snap = self.snapshot
        cannot = asks.targeting_unsupported(snap)
        if cannot is not None:
            self._notify(f"cohort not changed: {cannot}", severity="warning")
            return
        flag = next((f for f in snap.flags if f.key == key), None)
        if flag is None:
            self._notify(f"no flag {key} — it is no longer listed", severity="warning")
            return

        def answered(choice: Targeting | None) -> None:
            if choice is None:
                self._notify(f"cohort of {key} cancelled — nothing changed")
                return
            self._send("flag cohort",
                       lambda: self.engine.set_flag_cohort(key, choice.attribute,
                                                           choice.values, choice.reason),
                       choice.reason)

        self._ask(asks.target(snap, flag), answered)
