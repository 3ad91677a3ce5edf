"""The canary: its traffic weight in large type, the step plan, the bake and the banner.

This panel answers the first question an operator has ("where is the canary, and is
the release moving, stopped or being undone?"), so a rollback in progress or failing
takes a full-width banner in the error colour.
"""

from __future__ import annotations

import re
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Digits

from relconsole.engine.state import RollbackCause, Snapshot
from relconsole.model import ControllerState, Mode, Phase, Role, Step
from relconsole.tui import format as fmt
from relconsole.tui.widgets import controller as ctl
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.header import PHASE_CLASSES
from relconsole.tui.widgets.panel import Panel


def undone_step(snapshot: Snapshot) -> int | None:
    """The step a finished rollback undid, while the release is rolled back."""
    cause = snapshot.rollback_cause
    if snapshot.phase is Phase.ROLLED_BACK and cause is not None and cause.step_index >= 0:
        return cause.step_index
    return None


def mark(step: Step) -> str:
    """A step's name in the timeline: its weight, or what the strategy routes there
    (a cohort's name, 'm20' for a 20 % mirror, 'b2' for the second batch, 'switch')."""
    label = step.label
    if label.startswith("cohort "):
        return label.removeprefix("cohort ")
    if label.startswith("mirror "):
        return f"m{step.route.mirror}"
    if label.startswith("batch "):
        return "b" + label.removeprefix("batch ")
    return label or str(step.weight)


def timeline(snapshot: Snapshot) -> Content:
    """'●1 ◉10 ○50 ○100': done, current, to come — with each step's weight (or what the
    strategy routes: '●beta ◉10 ○100', 'preview ◉switch ○done'); after a rollback
    '●1 ✘10 ○50 ○100', the step it undid."""
    parts: list[Content] = []
    undone = undone_step(snapshot)
    current = undone if undone is not None else snapshot.step_index
    if snapshot.plan.strategy == "blue-green":
        # Before the switch green is only previewed: that is a stage of its own.
        if current < 0 and snapshot.phase is not Phase.ROLLED_BACK:
            parts.append(Content.styled("◉preview", "bold $text-primary"))
        else:
            parts.append(Content.styled("●preview", "$text-success"))
    for index, step in enumerate(snapshot.plan.steps):
        name = mark(step)
        if index < current:
            parts.append(Content.styled(f"●{name}", "$text-success"))
        elif index == current and undone is not None:
            parts.append(Content.styled(f"✘{name}", "bold $text-error"))
        elif index == current:
            parts.append(Content.styled(f"◉{name}", "bold $text-primary"))
        else:
            parts.append(Content.styled(f"○{name}", "$text-muted"))
    return Content(" ").join(parts)


def goal(step: Step, *, first: bool = False) -> str:
    """What `a` does to reach `step`, after 'press a to': 'advance to 10%', 'send 1%',
    'route cohort beta', 'mirror 20%', 'update batch 2', 'switch to green'."""
    label = step.label
    if label.startswith(("cohort ", "mirror ")) and step.weight == 0:
        return f"route {label}" if label.startswith("cohort ") else label
    if label.startswith("batch "):
        return f"update {label}"
    if label == "switch":
        return "switch all traffic to green"
    if label == "done":
        return "finish (green keeps all traffic)"
    return f"send {step.weight}%" if first else f"advance to {step.weight}%"


def step_text(snapshot: Snapshot) -> str:
    """'step 2/4', or after a rollback 'rolled back at step 2/4' (not 'step 0/4')."""
    count = len(snapshot.plan.steps)
    undone = undone_step(snapshot)
    if undone is not None:
        return f"rolled back at step {undone + 1}/{count}"
    return f"step {max(snapshot.step_index + 1, 0)}/{count}"


def route_text(snapshot: Snapshot) -> str:
    """What reaches the new version besides the weight, as the provider read it:
    'cohort beta-users → canary', 'mirror 20% (answers dropped)', '2/4 batches on
    2.3.0'; blue-green's sides; '' for a plain canary."""
    plan = snapshot.plan
    traffic = snapshot.traffic
    route = traffic.route if traffic is not None else None
    if plan.strategy == "blue-green":
        live = "green" if snapshot.weight >= 100 else "blue"
        # The provider's own word on the preview and the last drain, where it has one.
        note = traffic.note if traffic is not None else ""
        sides = f"blue {plan.baseline_version or 'stable'} · green {plan.version}"
        return f"{live} live · {note or sides}"
    if route is None or not plan.routed:
        return ""
    if plan.strategy == "rolling":
        total = len(plan.steps)
        return f"{route.batches}/{total} batches on {plan.version}"
    parts = []
    if route.cohorts:
        parts.append(f"cohort{'s' if len(route.cohorts) > 1 else ''} "
                     f"{', '.join(route.cohorts)} → canary")
    if route.mirror:
        parts.append(f"mirror {route.mirror}% (answers dropped)")
    return " · ".join(parts) or ("no cohort routed" if plan.strategy == "ab" else "mirror off")


def cause_text(cause: RollbackCause | None) -> str:
    """Why the release was rolled back, short enough for the banner's one line at 80
    columns: the gates that tripped it (their values are in the Gates panel), or the
    operator's own words in full."""
    if cause is None:
        return ""
    tripped = cause.tripped
    if not tripped:
        return cause.reason
    names = ", ".join(g.name for g in tripped)
    most = max(g.consecutive_failures for g in tripped)
    return f"gate{'s' if len(tripped) > 1 else ''} {names} failed {most}×"


def banner(snapshot: Snapshot) -> tuple[str, str] | None:
    """(text, level) of the loud line above the weight, or None when all is ordinary.

    A rollback's banner keeps its cause for as long as the rollback is the news; a
    moment later every gate reads "no data" and would no longer say why.
    """
    phase = snapshot.phase
    cause = snapshot.rollback_cause
    why = cause_text(cause) or snapshot.rollback_reason
    origin = f" from {cause.weight}%" if cause is not None and cause.weight else ""
    c = ctl.controller_of(snapshot)
    if c is not None:
        # An aborted Rollout has no "Aborted" phase of its own (Argo says Degraded):
        # the banner says ABORTED, the word the operator pressed `r` for.
        aborted = ctl.banner_for(snapshot, c, why, origin)
        if aborted is not None:
            return aborted
    if phase is Phase.ROLLBACK_FAILED:
        wait = ""
        if snapshot.rollback_next_at is not None:
            wait = f", next in {fmt.duration(snapshot.rollback_next_at - snapshot.now)}"
        return (
            f"ROLLBACK FAILED — retrying (attempt {snapshot.rollback_attempts}{wait})",
            "error",
        )
    if phase is Phase.ROLLING_BACK:
        if why:
            return f"ROLLING BACK — {why}", "error"
        return "ROLLING BACK — sending all traffic to stable", "error"
    if phase is Phase.ROLLED_BACK:
        if why:
            return f"ROLLED BACK{origin} — {why}", "warning"
        return f"ROLLED BACK — canary at {snapshot.weight}%, stable serves the rest", "warning"
    if phase is Phase.PROMOTED:
        return f"PROMOTED — {snapshot.plan.version} serves {snapshot.weight}%", "success"
    if phase is Phase.PAUSED:
        return f"PAUSED: {snapshot.pause_reason or 'no reason given'}", "warning"
    return None


def next_move(snapshot: Snapshot) -> str:
    """What happens next, and which key makes it happen."""
    driving = snapshot.mode is Mode.DRIVE
    c = ctl.controller_of(snapshot)
    if c is not None and snapshot.phase not in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED):
        return ctl.hint(snapshot, c)
    steps = snapshot.plan.steps
    following = steps[snapshot.step_index + 1] if snapshot.step_index + 1 < len(steps) else None
    phase = snapshot.phase
    if phase is Phase.PENDING:
        if snapshot.plan.strategy == "blue-green":
            return ("preview — press a to switch all traffic to green" if driving
                    else "preview: green takes no users yet")
        first = goal(steps[0], first=True) if steps else "begin"
        return f"not started — press a to {first}" if driving else "not started"
    if phase is Phase.PAUSED:
        return "p resume · r roll back" if driving else f"waiting for {snapshot.driver}"
    if phase is Phase.ROLLBACK_FAILED:
        # The engine's own words for the failed attempt ('traffic: haproxy: connection
        # refused'); a watching console may not know them, and then says only that.
        cause = snapshot.rollback_error
        retry = " · r retries now" if driving else ""
        return f"cause: {cause}{retry}" if cause else f"rollback not verified{retry}"
    if phase is Phase.ROLLED_BACK:
        return "stable serves all traffic (verified)"
    if phase in (Phase.ROLLING_BACK, Phase.PROMOTED):
        return ""
    auto = snapshot.plan.auto_advance
    remaining = snapshot.bake_remaining
    if remaining > 0:
        then = " · then auto-advance" if auto and following is not None else ""
        return f"bake {fmt.duration(remaining)} left{then}"
    if following is None:
        return "at the last step"
    if snapshot.ready_to_advance:
        plain = not following.label
        if auto:
            return (f"ready — advancing to {following.weight}%" if plain
                    else f"ready — auto: {goal(following)}")
        if driving:
            return f"ready — press a to {goal(following)}"
        return (f"ready for {following.weight}% — waiting for {snapshot.driver}" if plain
                else f"ready to {goal(following)} — waiting for {snapshot.driver}")
    return "bake done — waiting for every gate to pass"


def hold_choices(hold: str) -> tuple[str, ...]:
    """What holds the release, fullest first: the cause and when it lets go survive to
    the shortest ('holds: window opens Mon 2026-12-07 09:00 UTC')."""
    cause, _, when = hold.partition("; ")
    out = [f"holds: {hold}"]
    if when.startswith("the next opens "):
        opens = when.removeprefix("the next opens ")
        out += [f"holds: {cause.split(' (')[0]}; {when}",
                f"holds: {'frozen' if cause.startswith('frozen') else 'window'} — opens {opens}"]
    elif cause.startswith("the next step holds until "):
        out.append("holds: next step at " + cause.removeprefix("the next step holds until "))
    else:
        out.append(f"holds: {cause.split(' (')[0]}")
    return tuple(out)


def next_moves(snapshot: Snapshot) -> tuple[str, ...]:
    """`next_move`, and shorter ways to say it where its row is short (the first that
    fits is shown)."""
    if snapshot.hold and snapshot.phase in (Phase.PENDING, Phase.PROGRESSING):
        # The schedule holds it (outside the window, a step's `at:`): say so, and when.
        return hold_choices(snapshot.hold)
    c = ctl.controller_of(snapshot)
    if c is not None and snapshot.phase not in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED):
        return ctl.hint_choices(snapshot, c)
    return (next_move(snapshot),)


def health_text(snapshot: Snapshot) -> str:
    """The servers' health, or how old the weight is while the traffic provider is dark.

    Server health from a provider that cannot be reached is not news: 'canary 1/1 up'
    beside a dead HAProxy would say the opposite of the truth.
    """
    at = snapshot.old("traffic")
    if at is not None:
        return f"as read {fmt.clock(at)}, {fmt.age(snapshot.now - at)} ago · health unknown"
    traffic = snapshot.traffic
    return (traffic.health_line() if traffic else "") or "server health not reported"


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
            &.-old { color: $text-muted; text-style: dim; }
        }
        #side { width: 1fr; height: auto; }
        /* Only for a plan a controller owns (Argo Rollouts): its phase and message. */
        #controller { display: none; }
        &.-controller #controller { display: block; }
        #controller.-degraded { color: $text-error; text-style: bold; }
        #controller.-paused { color: $text-warning; }
        #side > Field { width: 1fr; height: auto; }
        #next.-attention { color: $text-warning; text-style: bold; }
        #next.-error { color: $text-error; text-style: bold; }
        #next.-ready { color: $text-success; text-style: bold; }
        #health.-down { color: $text-error; text-style: bold; }
        #health.-old { color: $text-warning; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Field(id="banner")
        with Horizontal(id="main"):
            yield Digits("0%", id="weight")
            with Vertical(id="side"):
                yield Field(id="controller")
                yield ctl.FitField(id="step")
                yield ctl.FitField(id="health")
                yield ctl.FitField(id="next")

    def snapshot_key(self, snapshot: Snapshot) -> Any:
        return (
            banner(snapshot),
            snapshot.phase,
            snapshot.weight,
            snapshot.step_index,
            undone_step(snapshot),
            next_move(snapshot),
            snapshot.traffic,
            health_text(snapshot),
            route_text(snapshot),
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

        c = ctl.controller_of(snapshot)
        self.set_class(c is not None, "-controller")
        if c is None:
            counted = Content.assemble(f"{step_text(snapshot)}  ", timeline(snapshot))
            # A strategy's step names are longer than weights: where they do not fit
            # beside the count, the timeline alone (its ◉ says which step).
            alone = (timeline(snapshot),) if snapshot.plan.strategy != "canary" else ()
            self.query_one("#step", ctl.FitField).choose(counted, *alone)
        else:
            self._draw_controller(snapshot, c)

        old = snapshot.old("traffic")
        weight.set_class(old is not None, "-old")
        health = self.query_one("#health", ctl.FitField)
        traffic = snapshot.traffic
        shown_health = health_text(snapshot)
        weights = ctl.weights_text(c) if c is not None and old is None else ""
        routed = route_text(snapshot) if old is None else ""
        if weights and c is not None:
            short = ctl.weights_text(c, short=True)
            full = f"{weights} · {shown_health}"
            health.choose(full, f"{short} · {shown_health}", full)
        elif routed:
            # The route is what a tired reader must not miss: it wins over health when
            # only one fits (a server down still colours the line); then the preview's
            # address goes, then the provider's note.
            bare = re.sub(r" at https?://\S+", "", routed)
            health.choose(f"{routed} · {shown_health}", routed, bare, bare.split(" · ")[0])
        else:
            health.choose(shown_health)
        # Canary pods the controller is still bringing up are not down: only a server
        # that should serve and does not is news.
        down = traffic is not None and any(
            not s.up for s in traffic.servers
            if not (s.role is Role.CANARY and ctl.pods_coming_up(c)))
        health.set_class(old is None and down, "-down")
        health.set_class(old is not None, "-old")

        nxt = self.query_one("#next", ctl.FitField)
        nxt.choose(*next_moves(snapshot))
        nxt.set_class(snapshot.phase is Phase.ROLLBACK_FAILED, "-error")
        nxt.set_class(snapshot.phase is Phase.PAUSED, "-attention")
        nxt.set_class(snapshot.ready_to_advance and snapshot.phase is Phase.PROGRESSING,
                      "-ready")

    def _draw_controller(self, snapshot: Snapshot, c: ControllerState) -> None:
        line = self.query_one("#controller", Field)
        line.set(ctl.phase_line(c))
        line.set_class(c.phase == "Degraded", "-degraded")
        line.set_class(c.phase == "Paused", "-paused")
        self.query_one("#step", ctl.FitField).choose(*ctl.timelines(snapshot, c))
