"""The canary: its traffic weight in large type, the step plan, the bake and the banner.

This panel answers the first question an operator has ("where is the canary, and is
the release moving, stopped or being undone?"), so a rollback in progress or failing
takes a full-width banner in the error colour.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Digits

from relconsole.engine.state import Snapshot
from relconsole.model import Mode, Phase
from relconsole.tui import format as fmt
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.header import PHASE_CLASSES
from relconsole.tui.widgets.panel import Panel


def timeline(snapshot: Snapshot) -> Content:
    """'●1 ◉10 ○50 ○100': done, current, to come — with each step's weight."""
    parts: list[Content] = []
    for index, step in enumerate(snapshot.plan.steps):
        if index < snapshot.step_index:
            parts.append(Content.styled(f"●{step.weight}", "$text-success"))
        elif index == snapshot.step_index:
            parts.append(Content.styled(f"◉{step.weight}", "bold $text-primary"))
        else:
            parts.append(Content.styled(f"○{step.weight}", "$text-muted"))
    return Content(" ").join(parts)


def banner(snapshot: Snapshot) -> tuple[str, str] | None:
    """(text, level) of the loud line above the weight, or None when all is ordinary."""
    phase = snapshot.phase
    if phase is Phase.ROLLBACK_FAILED:
        wait = ""
        if snapshot.rollback_next_at is not None:
            wait = f", next in {fmt.duration(snapshot.rollback_next_at - snapshot.now)}"
        return (
            f"ROLLBACK FAILED — retrying (attempt {snapshot.rollback_attempts}{wait})",
            "error",
        )
    if phase is Phase.ROLLING_BACK:
        return "ROLLING BACK — sending all traffic to stable", "error"
    if phase is Phase.ROLLED_BACK:
        return f"ROLLED BACK — canary at {snapshot.weight}%, stable serves the rest", "warning"
    if phase is Phase.PROMOTED:
        return f"PROMOTED — {snapshot.plan.version} serves {snapshot.weight}%", "success"
    if phase is Phase.PAUSED:
        return f"PAUSED: {snapshot.pause_reason or 'no reason given'}", "warning"
    return None


def next_move(snapshot: Snapshot) -> str:
    """What happens next, and which key makes it happen."""
    driving = snapshot.mode is Mode.DRIVE
    steps = snapshot.plan.steps
    following = (
        steps[snapshot.step_index + 1].weight if snapshot.step_index + 1 < len(steps) else None
    )
    phase = snapshot.phase
    if phase is Phase.PENDING:
        first = f"{steps[0].weight}%" if steps else "the first step"
        return f"not started — press a to send {first}" if driving else "not started"
    if phase is Phase.PAUSED:
        return "p resume · r roll back" if driving else f"waiting for {snapshot.driver}"
    if phase is Phase.ROLLBACK_FAILED:
        # The engine's own words for the failed attempt ('traffic: haproxy: connection
        # refused'); a watching console may not know them, and then says only that.
        cause = snapshot.rollback_error
        retry = " · r retries now" if driving else ""
        return f"cause: {cause}{retry}" if cause else f"rollback not verified{retry}"
    if phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.PROMOTED):
        return ""
    auto = snapshot.plan.auto_advance
    remaining = snapshot.bake_remaining
    if remaining > 0:
        then = " · then auto-advance" if auto and following is not None else ""
        return f"bake {fmt.duration(remaining)} left{then}"
    if following is None:
        return "at the last step"
    if snapshot.ready_to_advance:
        if auto:
            return f"ready — advancing to {following}%"
        if driving:
            return f"ready — press a to advance to {following}%"
        return f"ready for {following}% — waiting for {snapshot.driver}"
    return "bake done — waiting for every gate to pass"


class CanaryPanel(Panel):
    """Weight, step, step plan, bake countdown, traffic health, and the phase banner."""

    TITLE = "Canary"
    SOURCE = "traffic"

    DEFAULT_CSS = """
    CanaryPanel {
        #banner {
            width: 1fr; height: auto; padding: 0 1; text-style: bold; display: none;
            &.-error { display: block; background: $error; color: $background; }
            &.-warning { display: block; background: $warning; color: $background; }
            &.-success { display: block; background: $success; color: $background; }
        }
        #main { height: auto; }
        #weight {
            width: auto; height: 3; margin-right: 2; text-style: bold; color: $text-primary;
            &.-rolling-back, &.-rollback-failed { color: $text-error; }
            &.-paused { color: $text-warning; }
            &.-promoted { color: $text-success; }
            &.-pending, &.-rolled-back { color: $text-muted; }
        }
        #side { width: 1fr; height: auto; }
        #side > Field { width: 1fr; height: auto; }
        #next.-attention { color: $text-warning; text-style: bold; }
        #next.-error { color: $text-error; text-style: bold; }
        #next.-ready { color: $text-success; text-style: bold; }
        #health.-down { color: $text-error; text-style: bold; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Field(id="banner")
        with Horizontal(id="main"):
            yield Digits("0%", id="weight")
            with Vertical(id="side"):
                yield Field(id="step")
                yield Field(id="health")
                yield Field(id="next")

    def snapshot_key(self, snapshot: Snapshot) -> Any:
        return (
            banner(snapshot),
            snapshot.phase,
            snapshot.weight,
            snapshot.step_index,
            next_move(snapshot),
            snapshot.traffic,
        )

    def draw(self, snapshot: Snapshot) -> None:
        line = banner(snapshot)
        banner_field = self.query_one("#banner", Field)
        for level in ("error", "warning", "success"):
            banner_field.set_class(line is not None and line[1] == level, f"-{level}")
        banner_field.set(line[0] if line else "")

        weight = self.query_one("#weight", Digits)
        if weight.value != f"{snapshot.weight}%":
            weight.update(f"{snapshot.weight}%")
        for phase, css_class in PHASE_CLASSES.items():
            weight.set_class(snapshot.phase is phase, css_class)

        steps = snapshot.plan.steps
        self.query_one("#step", Field).set(
            Content.assemble(
                f"step {max(snapshot.step_index + 1, 0)}/{len(steps)}  ", timeline(snapshot)
            )
        )

        health = self.query_one("#health", Field)
        traffic = snapshot.traffic
        health.set((traffic.health_line() if traffic else "") or "server health not reported")
        health.set_class(
            traffic is not None and any(not s.up for s in traffic.servers), "-down"
        )

        move = next_move(snapshot)
        nxt = self.query_one("#next", Field)
        nxt.set(move)
        nxt.set_class(snapshot.phase is Phase.ROLLBACK_FAILED, "-error")
        nxt.set_class(snapshot.phase is Phase.PAUSED, "-attention")
        nxt.set_class(snapshot.ready_to_advance and snapshot.phase is Phase.PROGRESSING,
                      "-ready")
