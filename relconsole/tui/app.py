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
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer

from relconsole.engine.release import ActionResult, ReleaseEngine, WatchOnlyError
from relconsole.engine.state import Event, Snapshot
from relconsole.model import Flag, Mode, Phase
from relconsole.tui import asks, hangup, keys
from relconsole.tui.help import HelpScreen
from relconsole.tui.themes import (
    ANSI_THEME,
    DEFAULT_THEME,
    PREFIX,
    VARIABLE_DEFAULTS,
    ThemeError,
    load_themes,
    resolve_name,
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
from relconsole.tui.widgets.panel import Panel

WIDE = 110  # columns from which panels sit side by side and the footer has its padding
STALL_AFTER_POLLS = 3  # snapshots missed before the header warns that the screen is old


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
    JournalLog { overflow-y: auto; }
    Screen.-narrow {
        #top { layout: vertical; }
        #canary, #metrics { width: 100%; }
        #canary { min-height: 0; }
        #lower { grid-size: 2; grid-columns: 3fr 2fr; grid-rows: auto 1fr; }
        #gates { column-span: 2; }
        FooterKey {  /* " a advance" rather than " a advance ": every key fits in 80 */
            .footer-key--key { padding: 0 0 0 1; }
            .footer-key--description { padding: 0 0 0 1; }
        }
    }
    Screen.-narrow.-short {
        /* The flags share a short row with the journal: fill it and let the table scroll
           inside it, so the row under the cursor (the one `k` flips) is always in view. */
        #flags { height: 100%; }
        FlagsTable { height: 1fr; }
    }
    Screen.-short {
        #top Panel { min-height: 0; }
        MetricPanel .detail { display: none; }
        FlagsPanel #detail { display: none; }
        FlagsTable { max-height: 8; }
    }
    """

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        *keys.bindings()
    ]

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]

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
    ) -> None:
        """`watch_reason` says why this console only watches (shown once at start);
        `background` are extra coroutines to run beside the engine loop (the demo's
        simulated driver), started and stopped with it."""
        super().__init__()
        self.engine = engine
        self.start_engine = start_engine
        self.mouse = mouse
        self.watch_reason = watch_reason
        self.background = tuple(background)
        self.snapshot: Snapshot = engine.snapshot()
        self.notices: deque[str] = deque(maxlen=50)  # what was notified, newest last
        self._wanted_theme = theme
        self._theme_problem = ""
        self._unsubscribe: Callable[[], None] | None = None
        self._pending_snapshot: Snapshot | None = None
        self._pending_events: list[Event] = []
        self._flush_scheduled = False
        self._in_flight: str | None = None
        self._quit_armed = False
        self._register_themes()

    # ------------------------------------------------------------------ set-up

    def _register_themes(self) -> None:
        try:
            themes = load_themes()
        except ThemeError as exc:
            self._theme_problem = str(exc)
            themes = {}
        for theme in themes.values():
            self.register_theme(theme)

    def _initial_theme(self) -> str:
        available = self.available_themes
        if self._wanted_theme:
            name = resolve_name(self._wanted_theme, available)
            if name is not None:
                return name
            self._theme_problem = f"unknown theme {self._wanted_theme!r}"
        # A real 16-colour terminal (or NO_COLOR) gets the terminal's own palette. The
        # headless driver of the tests reports "standard" too, so it is not asked.
        few_colours = not self.is_headless and self.console.color_system in (
            "standard", "windows", None
        )
        if (os.environ.get("NO_COLOR") or few_colours) and ANSI_THEME in available:
            return ANSI_THEME
        return DEFAULT_THEME if DEFAULT_THEME in available else "textual-dark"

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def run(self, *args: Any, mouse: bool | None = None, **kwargs: Any) -> Any:
        return super().run(*args, mouse=self.mouse if mouse is None else mouse, **kwargs)

    def compose(self) -> ComposeResult:
        yield ReleaseHeader(id="header")
        with Container(id="top"):
            yield CanaryPanel(id="canary")
            with Container(id="metrics"):
                yield ErrorRatePanel(id="errors")
                yield LatencyPanel(id="latency")
        with Container(id="lower"):
            yield GatesPanel(id="gates")
            yield FlagsPanel(id="flags")
            yield JournalPanel(id="journal")
        yield Footer()

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
        for warning in first.journal_warnings:
            # e.g. a torn last line repaired after a crash: say so, once, loudly enough.
            self._notify(f"journal: {warning}", severity="warning", timeout=30)
        if self.start_engine:
            self._watch_for_hangup()
            self._run_engine()
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
        snapshot, self._pending_snapshot = self._pending_snapshot, None
        if snapshot is not None:
            self._draw(snapshot)

    def _draw(self, snapshot: Snapshot) -> None:
        before = self.snapshot
        self.snapshot = snapshot
        self.query_one(ReleaseHeader).show(snapshot)
        for panel in self.query(Panel):
            panel.show(snapshot)
        if (before.mode, before.phase) != (snapshot.mode, snapshot.phase):
            self.refresh_bindings()

    def _check_stall(self) -> None:
        # A fresh snapshot's time is the engine clock's now (virtual in the demo); the
        # one on screen is as old as the last publish.
        age = self.engine.snapshot().now - self.snapshot.now
        limit = max(STALL_AFTER_POLLS * self.snapshot.plan.poll_interval, 15.0)
        self.query_one(ReleaseHeader).show_stall(self.snapshot.now if age > limit else None)

    def on_resize(self, event: events.Resize) -> None:
        # Below the wide breakpoint every action key fits in the footer only without the
        # palette key at the right (ctrl+p still works, and `?` lists it).
        footer = self.query_one(Footer)
        wide = event.size.width >= WIDE
        if footer.show_command_palette != wide:
            footer.show_command_palette = wide

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
        if action == "refuse_watch":
            return self.watching
        if action not in keys.DRIVING_ACTIONS:
            return True
        if self.watching:
            return False
        paused = self.snapshot.phase is Phase.PAUSED
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
        self.notify(message, title=title, severity=severity, timeout=timeout)

    def _refused(self, intent: str) -> bool:
        """True (after saying why) when this intent must not go to the engine now."""
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

    async def _call(self, intent: str, call: Callable[[], Awaitable[ActionResult]]) -> None:
        """Send one intent and show its verified outcome."""
        self._in_flight = intent
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
                title=intent,
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

    def action_refuse_watch(self, intent: str) -> None:
        self._refused(intent)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(watching=self.watching, driver=self.snapshot.driver,
                                    production=self.snapshot.plan.production))

    async def action_quit(self) -> None:
        """Leave the release exactly as it is: stop the poll loop and exit."""
        if self._in_flight is not None and not self._quit_armed:
            self._quit_armed = True
            self._notify(
                f"{self._in_flight} is still being applied — press q again to quit anyway "
                "(the engine picks it up from the journal on the next start)",
                severity="warning",
            )
            return
        self.engine.stop()
        self.exit()

    def switch_theme(self, name: str) -> None:
        self.theme = name

    # ------------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands (less its Quit: the key table has ours), then this console's."""
        for command in super().get_system_commands(screen):
            if command.title != "Quit":
                yield command
        yield from self.palette_commands()

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
        for flag in self.snapshot.flags:
            if flag.killed:
                yield SystemCommand(f"Restore flag {flag.key}",
                                    "turn it back on; asks for a reason" + note,
                                    partial(self.request_flag, flag.key, True))
            else:
                yield SystemCommand(f"Kill flag {flag.key}",
                                    "kill switch: off for everyone; asks for a reason" + note,
                                    partial(self.request_flag, flag.key, False))
            yield SystemCommand(f"Set rollout of flag {flag.key}", rollout_help + note,
                                partial(self.request_rollout, flag.key))
        for name in sorted(self.available_themes):
            if name.startswith(PREFIX):
                yield SystemCommand(f"Theme: {name}", "colour theme",
                                    partial(self.switch_theme, name))

    # ------------------------------------------------------------------ intents

    @work(group="intent", exit_on_error=False)
    async def request_advance(self) -> None:
        if self._refused("advance"):
            return
        reason = ""
        early = asks.early_advance(self.snapshot)
        if early is not None:
            # The engine lets a human cut a bake short; a stray key press should not.
            if not await self.push_screen_wait(early):
                self._notify("advance cancelled — nothing changed")
                return
            reason = "advanced before the bake ended"
        await self._call("advance", lambda: self.engine.advance(reason))

    @work(group="intent", exit_on_error=False)
    async def request_pause(self) -> None:
        if self._refused("pause"):
            return
        reason = await self.push_screen_wait(asks.pause())
        if reason is None:
            self._notify("pause cancelled — nothing changed")
            return
        await self._call("pause", lambda: self.engine.pause(reason))

    @work(group="intent", exit_on_error=False)
    async def request_resume(self) -> None:
        if self._refused("resume"):
            return
        await self._call("resume", lambda: self.engine.resume(""))

    @work(group="intent", exit_on_error=False)
    async def request_promote(self) -> None:
        if self._refused("promote"):
            return
        reason = await self.push_screen_wait(asks.promote(self.snapshot))
        if reason is None:
            self._notify("promote cancelled — nothing changed")
            return
        await self._call("promote", lambda: self.engine.promote(reason))

    @work(group="intent", exit_on_error=False)
    async def request_rollback(self) -> None:
        if self._refused("rollback"):
            return
        snap = self.snapshot
        reason: str | None
        if snap.phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED):
            if not await self.push_screen_wait(asks.retry_rollback(snap)):
                return
            reason = "operator retried the rollback"
        else:
            reason = await self.push_screen_wait(asks.rollback(snap))
            if reason is None:
                self._notify("rollback cancelled — nothing changed")
                return
        await self._call("rollback", lambda: self.engine.rollback(reason))

    def _flip_selected(self) -> None:
        flag = self.selected_flag
        if flag is None:
            self._notify("no flag selected — pick one in the Flags table", severity="warning")
            return
        self.request_flag(flag.key, flag.killed)

    @work(group="intent", exit_on_error=False)
    async def request_flag(self, key: str, enabled: bool) -> None:
        if self._refused("kill" if not enabled else "restore"):
            return
        reason = await self.push_screen_wait(asks.flag(self.snapshot, key, enabled))
        if reason is None:
            self._notify(f"{'restore' if enabled else 'kill'} {key} cancelled — nothing changed")
            return
        intent = "restore flag" if enabled else "kill flag"
        await self._call(intent, lambda: self.engine.set_flag(key, enabled, reason))

    @work(group="intent", exit_on_error=False)
    async def request_rollout(self, key: str) -> None:
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
        choice = await self.push_screen_wait(asks.rollout(snap, flag))
        if choice is None:
            self._notify(f"rollout of {key} cancelled — nothing changed")
            return
        await self._call(
            "flag rollout",
            lambda: self.engine.set_flag_rollout(key, choice.percent, choice.reason),
        )
