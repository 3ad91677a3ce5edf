"""A release whose plan a controller owns (Argo Rollouts), in the console's words.

The controller is the truth then: its phase and message are shown exactly as its own CLI
prints them (operators paste them into searches and compare with `kubectl argo rollouts
get`), its step number is the plugin's ("step 3/8": steps completed), and the timeline is
its plan, not the config's `release.steps`. These are the texts the canary, gates and
header panels show for it; everything here is a pure function of a `Snapshot`, except
`FitField`, a label that shows the fullest of its texts that fits.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.content import Content
from textual.css.scalar import Scalar

from relconsole.engine.state import Snapshot
from relconsole.model import AnalysisVerdict, ControllerState, ControllerStep, Mode, Phase
from relconsole.tui.widgets.field import Field

# The words and marks of an AnalysisRun's (or one metric's) phase. A mark and a word for
# each, so NO_COLOR and a colour-blind reader lose nothing.
ANALYSIS_MARK = {
    "Successful": "✔",
    "Failed": "✘",
    "Error": "✘",
    "Inconclusive": "?",
    "Running": "◷",
    "Pending": "○",
}
ANALYSIS_STYLE = {
    "Successful": "$text-success",
    "Failed": "bold $text-error",
    "Error": "bold $text-error",
    "Inconclusive": "bold $text-warning",
}
BAD_ANALYSIS = frozenset({"Failed", "Error"})
PAUSE_MARK = "‖"  # not ⏸: several terminals draw that one as a two-cell emoji
WAITS = "waits for promote"
PROMOTE_CMD = "kubectl argo rollouts promote"


def controller_of(snapshot: Snapshot) -> ControllerState | None:
    """The controller that owns this release's plan, or None (the config's plan)."""
    return snapshot.traffic.controller if snapshot.traffic is not None else None


def phase_line(c: ControllerState) -> str:
    """'Argo Rollouts: Paused — CanaryPauseStep', phase and message verbatim."""
    return f"{c.system}: {c.phase}" + (f" — {c.message}" if c.message else "")


def step_number(snapshot: Snapshot, c: ControllerState) -> int:
    """The controller's step number (steps completed); the engine's when it gives none.

    After an abort Argo resets its step to 0 and the engine's own index is -1, so the
    step the abort undid is the one the rollback's cause recorded, where known: "aborted
    at step 0/7" would send a tired reader looking at the wrong step.
    """
    cause = snapshot.rollback_cause
    if aborted(snapshot, c) and cause is not None and cause.step_index >= 0:
        return cause.step_index
    if c.step is not None:
        return c.step
    return max(snapshot.step_index, 0)


def step_total(c: ControllerState) -> int:
    return c.steps if c.steps is not None else len(c.plan)


def current_step(snapshot: Snapshot, c: ControllerState) -> ControllerStep | None:
    """The step the controller stands at; None when every step is done."""
    index = step_number(snapshot, c)
    return c.plan[index] if 0 <= index < len(c.plan) else None


def aborted(snapshot: Snapshot, c: ControllerState) -> bool:
    return c.aborted or snapshot.phase is Phase.ROLLED_BACK


def step_count(snapshot: Snapshot, c: ControllerState) -> str:
    """'step 1/7' as the plugin counts (steps completed), 'aborted at step 3/7'."""
    count = f"step {step_number(snapshot, c)}/{step_total(c)}"
    return f"aborted at {count}" if aborted(snapshot, c) else count


def step_line(snapshot: Snapshot, c: ControllerState) -> str:
    """'step 1/7 · pause (until promoted)', 'aborted at step 3/7 · pause 1m',
    'step 7/7 · all steps done': the count and the current step, without the plan."""
    step = current_step(snapshot, c)
    text = step.text if step is not None else "all steps done"
    return f"{step_count(snapshot, c)} · {text}"


def weights_text(c: ControllerState, *, short: bool = False) -> str:
    """'set 40% · actual 20% (pods coming up)' ('set 40% · actual 20%' when `short`);
    '' where the controller gives no weights (a blue-green Rollout)."""
    set_w, actual = c.set_weight, c.actual_weight
    if set_w is None and actual is None:
        return ""
    if set_w is None or actual is None:
        return f"canary {set_w if actual is None else actual}%"
    text = f"set {set_w}% · actual {actual}%"
    if short or actual == set_w:
        return text
    return text + (" (pods coming up)" if actual < set_w else " (traffic moving back)")


def pods_coming_up(c: ControllerState | None) -> bool:
    """The controller is bringing the canary's pods up: some not ready yet is expected."""
    return (c is not None and not c.aborted and c.set_weight is not None
            and c.actual_weight is not None and c.actual_weight < c.set_weight)


def _seconds(seconds: float) -> str:
    whole = round(seconds)
    if whole >= 60 and whole % 60 == 0:
        return f"{whole // 60}m"
    if whole >= 60:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole}s"


def _kind(step: ControllerStep) -> str:
    text = step.text.lower()
    for kind in ("analysis", "experiment"):
        if text.startswith(kind):
            return kind
    return ""


def token(step: ControllerStep, level: int) -> str:
    """One step of the timeline: its text (level 0), short ('‖promote', '‖1m',
    'analysis', '30%': level 1), shortest ('‖', 'A': level 2)."""
    if level == 0:
        return step.text
    if step.waits:
        return PAUSE_MARK if level > 1 else f"{PAUSE_MARK}promote"
    if step.pause is not None:
        return f"{PAUSE_MARK}{_seconds(step.pause)}"
    kind = _kind(step)
    if kind:
        return kind[0].upper() if level > 1 else kind
    return f"{step.weight}%"


def _marked(index: int, current: int, step: ControllerStep, level: int, undone: bool,
            *, spelled: bool = True) -> Content:
    # The current step in its own words (`spelled`): the essential thing, at any width.
    text = step.text if index == current and spelled else token(step, level)
    if index < current:
        return Content.styled(f"●{text}", "$text-success")
    if index == current and undone:
        return Content.styled(f"✘{text}", "bold $text-error")
    if index == current:
        return Content.styled(f"◉{text}", "bold $text-primary")
    return Content.styled(f"○{text}", "$text-muted")


def timelines(snapshot: Snapshot, c: ControllerState) -> tuple[Content, ...]:
    """'step 1/7  ●10% ◉pause (until promoted) ○30% ○‖1m ○analysis ○60% ○‖1m': the
    count and the controller's plan, fullest first — every step's own text, then short
    and shortest tokens, then the shortest around the current step only; the current
    step always in its own words. Done steps '●', the current '◉' (after an abort '✘'),
    those to come '○': marks that read without colour. Where no row holds it, two rows:
    'step 1/7 · pause (until promoted)' over the plan in tokens (the last of them wraps
    if even that is too wide; the current step's words are never broken by a wrap
    before that)."""
    if not c.plan:
        return (Content(step_line(snapshot, c)),)  # a Rollout without steps
    current = step_number(snapshot, c)
    undone = aborted(snapshot, c)
    head = Content(f"{step_count(snapshot, c)}  ")

    def plan(indexes: range, level: int, gap: str = " ", spelled: bool = True) -> Content:
        parts = [_marked(i, current, c.plan[i], level, undone, spelled=spelled)
                 for i in indexes]
        if indexes and indexes.start > 0:
            parts.insert(0, Content("…"))
        if indexes and indexes.stop < len(c.plan):
            parts.append(Content("…"))
        return Content(gap).join(parts)

    every = range(len(c.plan))
    out = [Content.assemble(head, plan(every, 0, " › ")),
           Content.assemble(head, plan(every, 1)), Content.assemble(head, plan(every, 2))]
    for size in (5, 3):
        if len(c.plan) > size:
            low = max(0, min(current - size // 2, len(c.plan) - size))
            out.append(Content.assemble(head, plan(range(low, low + size), 2)))
    first = Content(step_line(snapshot, c))
    for level in (1, 2):
        out.append(Content("\n").join([first, plan(every, level, spelled=False)]))
    return tuple(out)


def hint(snapshot: Snapshot, c: ControllerState) -> str:
    """What happens next and what `a`/`p` do here, in full; '' when the phase needs
    no hint (see `hint_choices`)."""
    return hint_choices(snapshot, c)[0]


def hint_choices(snapshot: Snapshot, c: ControllerState) -> tuple[str, ...]:
    """What happens next and what `a`/`p` do here, fullest first (where the row is
    short the controller's name goes: its phase line says it just above).

    The engine's own rollback states (rolling back, a rollback not verified) keep the
    canary panel's usual words: they are relconsole's news, not the controller's.
    """
    driving = snapshot.mode is Mode.DRIVE
    if aborted(snapshot, c):
        if (c.actual_weight or 0) > 0:
            return (f"ABORTED — {c.system} is moving traffic back to stable",)
        verified = " (verified)" if snapshot.phase is Phase.ROLLED_BACK else ""
        return (f"ABORTED — rolled back: stable serves all traffic{verified}",)
    if snapshot.phase is Phase.PROMOTED or c.fully_promoted:
        return ("",)
    if c.manually_paused or snapshot.phase is Phase.PAUSED:
        return ("p resume · r abort (kubectl argo rollouts abort)" if driving else
                f"paused — waiting for {snapshot.driver}",)
    step = current_step(snapshot, c)
    if step is None:
        return (f"all steps done — {c.system} finishes the update",)
    if c.waiting or step.waits:
        if not driving:
            return (f"{WAITS} — {snapshot.driver} drives",)
        if snapshot.ready_to_advance:
            past = "the preview to active" if c.strategy == "BlueGreen" else "past this pause"
            return (f"a promotes {past} ({PROMOTE_CMD})",)
        return (f"{WAITS} once every gate passes",)
    if step.pause is not None:
        what = f"moves on by itself after {_seconds(step.pause)}"
    elif _kind(step):
        what = f"moves on once its {_kind(step)} succeeds"
    elif c.set_weight is not None and c.actual_weight is not None and (
            c.actual_weight != c.set_weight):
        what = "moves on once the canary's pods are up"
    else:
        what = "moves on by itself"
    # `a` here cuts the controller's own step short, and the console asks first.
    key = " · a promotes now (asks first)" if driving and snapshot.busy else ""
    return (f"{c.system} {what}{key}", f"{what}{key}", f"{c.system} {what}{key}")


def banner_for(snapshot: Snapshot, c: ControllerState, why: str,
               origin: str) -> tuple[str, str] | None:
    """The canary's banner for an aborted Rollout ('ABORTED — rolled back from 30% —
    p99 doubled'); None to keep the usual banner. `why` and `origin` (' from 30%') are
    the usual banner's words for the rollback."""
    if snapshot.phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED) or not aborted(
            snapshot, c):
        return None
    if (c.actual_weight or 0) > 0:
        return f"ABORTED — rolling back: canary still at {c.actual_weight}%", "error"
    return f"ABORTED — rolled back{origin}" + (f" — {why}" if why else ""), "warning"


def status_choices(snapshot: Snapshot, c: ControllerState) -> tuple[str, ...]:
    """The header's second line, fullest first: 'step 3/8 · set 40% · actual 20%'."""
    count = f"step {step_number(snapshot, c)}/{step_total(c)}"
    if aborted(snapshot, c):
        count = f"aborted at {count}"
    set_w, actual = c.set_weight, c.actual_weight
    if set_w is not None and actual is not None and set_w != actual:
        weight = f"set {set_w}% · actual {actual}%"
        return f"{count} · {weight}", weight, f"canary {actual}%"
    shown = actual if actual is not None else snapshot.weight
    return f"{count} · canary {shown}%", f"canary {shown}%"


# -- analysis -------------------------------------------------------------------------


def _phase_part(name: str, phase: str) -> Content:
    mark = ANALYSIS_MARK.get(phase, "·")
    label = f"{mark} {name} {phase}" if name else f"{mark} {phase}"
    return Content.styled(label, ANALYSIS_STYLE.get(phase, ""))


def analysis_line(run: AnalysisVerdict, *, named: bool = True, message: bool = True
                  ) -> Content:
    """'Argo analysis checkout-7f9c-4: ✘ Failed — ✘ error-rate Failed · ◷ latency
    Running — <its message>'; without `named` the run's name goes, and a run whose
    metrics say it all ('Argo analysis: ✔ error-rate Successful · ◷ latency Running')
    its own verdict too."""
    parts: list[Content] = [Content("Argo analysis")]
    own = run.phase in BAD_ANALYSIS or run.phase == "Inconclusive" or not run.metrics
    if named:
        parts.append(Content(f" {run.name}"))
    if named or own:
        parts += [Content(" " if not named else ": "), _phase_part("", run.phase)]
        if run.metrics:
            parts.append(Content(" — " if named else ": "))
    else:
        parts.append(Content(": "))
    parts.append(Content(" · ").join(_phase_part(m, p) for m, p in run.metrics))
    if message and run.message:
        parts.append(Content(f" — {run.message}"))
    return Content.assemble(*parts)


def analysis_choices(c: ControllerState | None) -> tuple[Content, ...]:
    """Every AnalysisRun's line, fullest first (a run's name and message go where the
    row is short; each metric's verdict stays); () with no analysis."""
    if c is None or not c.analysis:
        return ()
    # One run needs no name while it goes well; one that did not is looked up by it.
    quiet = len(c.analysis) == 1 and c.analysis[0].phase not in BAD_ANALYSIS
    levels = [(not quiet, True), (False, True), (not quiet, False), (False, False)]
    out = [Content("\n").join(analysis_line(run, named=named, message=message)
                              for run in c.analysis) for named, message in levels]
    return (*out, out[0])


def analysis_summary(c: ControllerState | None) -> Content | None:
    """For the gates title: ' · ✘ Argo analysis Failed' when one did not succeed."""
    if c is None:
        return None
    # A metric that failed inside a run still running is the news already.
    phases = {run.phase for run in c.analysis} | {
        p for run in c.analysis for _, p in run.metrics}
    for wanted in ("Failed", "Error", "Inconclusive"):
        if wanted in phases:
            mark = ANALYSIS_MARK[wanted]
            return Content.assemble(" · ", (f"{mark} Argo analysis {wanted}",
                                            ANALYSIS_STYLE[wanted]))
    return None


# -- a label that shows the fullest text that fits -------------------------------------


def _widest(text: Content) -> int:
    return max(cell_len(line) for line in text.plain.split("\n"))


class FitField(Field):
    """Shows the first of its texts that fits its width (the last one wraps if none
    does), chosen again on every resize.

    Its height is set from the text it shows: left `auto`, a text chosen after the
    first layout kept the height of the wrapped one before it (a blank row).
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._choices: tuple[Content, ...] = ()

    def choose(self, *texts: str | Content) -> None:
        self._choices = tuple(Content(t) if isinstance(t, str) else t for t in texts)
        self._fit()

    def on_resize(self, _event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        if not self._choices:
            self.set("")
            return
        width = self.content_region.width
        fitting = [t for t in self._choices if _widest(t) <= width] if width else []
        chosen = fitting[0] if fitting else self._choices[-1]
        self.set(chosen)
        rows = len(Text(chosen.plain).wrap(self.app.console, width)) if width else 1
        if self.styles.height != Scalar.from_number(max(1, rows)):
            self.styles.height = max(1, rows)
