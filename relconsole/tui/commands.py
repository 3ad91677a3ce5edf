"""The command palette (ctrl+p): every action, each flag's kill switch and rollout, help
and themes.

In watch-only mode the actions are still listed, marked watch-only; choosing one gives
the same notice as pressing its key, and nothing reaches the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from relconsole.tui.themes import PREFIX

if TYPE_CHECKING:
    from relconsole.tui.app import ReleaseApp

Command = tuple[str, Callable[[], object], str]


def commands(app: ReleaseApp) -> list[Command]:
    watching = app.watching
    note = f" (watch-only: {app.snapshot.driver} drives)" if watching else ""
    out: list[Command] = [
        ("Advance one step", app.request_advance, "send the next step's weight" + note),
        ("Pause the release", app.request_pause, "stop advancing; asks for a reason" + note),
        ("Resume the release", app.request_resume, "carry on from a pause" + note),
        ("Promote to 100%", app.request_promote, "all traffic to the canary; confirms" + note),
        ("Roll back", app.request_rollback, "all traffic to stable; asks for a reason" + note),
    ]
    rollout_help = (
        "percentage 0–100; asks for a reason" if app.engine.flag_rollout_supported
        else "not possible here: " + app.rollout_unsupported()
    )
    for flag in app.snapshot.flags:
        if flag.killed:
            out.append((f"Restore flag {flag.key}", partial(app.request_flag, flag.key, True),
                        "turn it back on; asks for a reason" + note))
        else:
            out.append((f"Kill flag {flag.key}", partial(app.request_flag, flag.key, False),
                        "kill switch: off for everyone; asks for a reason" + note))
        out.append((f"Set rollout of flag {flag.key}", partial(app.request_rollout, flag.key),
                    rollout_help + note))
    out.append(("Help: keys", app.action_help, "every key of this console"))
    for name in sorted(app.available_themes):
        if name.startswith(PREFIX):
            out.append((f"Theme: {name}", partial(app.switch_theme, name), "colour theme"))
    return out


class ReleaseCommands(Provider):
    """Actions of the release console."""

    def _commands(self) -> list[Command]:
        from relconsole.tui.app import ReleaseApp  # import here: app imports this module

        app = self.app
        return commands(app) if isinstance(app, ReleaseApp) else []

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
