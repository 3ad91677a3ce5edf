"""What the console asks before each intent: the dialogs' words, built from a snapshot.

Pure builders (no app, no engine), so the wording an operator confirms is decided in one
place and can be checked without Pilot. The app pushes what these return.
"""

from __future__ import annotations

from relconsole.engine.flag_actions import targeting_refusal
from relconsole.engine.state import Snapshot
from relconsole.model import Flag, Phase, ReleasePlan
from relconsole.tui import format as fmt
from relconsole.tui.dialogs import (
    Choice,
    ChoiceDialog,
    ConfirmDialog,
    ReasonDialog,
    RolloutDialog,
    TargetDialog,
)
from relconsole.tui.widgets.flags import effect as flag_effect

# The journal's words for a bake cut short from the console (the dialog has no field).
EARLY_REASON = "advanced before the bake ended (confirmed at the console)"


def _next_weight(snap: Snapshot) -> int | None:
    steps = snap.timeline
    return steps[snap.step_index + 1].weight if snap.step_index + 1 < len(steps) else None


def _baked(snap: Snapshot) -> str:
    return (f"The canary has baked {fmt.duration(snap.bake_elapsed)} of "
            f"{fmt.duration(snap.step.bake if snap.step else 0)} at {snap.weight}% "
            f"({fmt.duration(snap.bake_remaining)} left).")


def needs_early(snap: Snapshot) -> bool:
    """Whether `a` now cuts something short: the bake, or a gate's gathering of data."""
    return snap.phase is Phase.PROGRESSING and (
        snap.bake_remaining > 0 or bool(snap.busy)
        or any(g.needs_more_data for g in snap.gates))


def early_advance(snap: Snapshot) -> ConfirmDialog | None:
    """The confirmation for cutting a bake, or a gate's evidence, short; None when
    neither is (`needs_early`).

    Cancel is focused: a stray Enter (a burst, a paste) must not cut a bake short.
    """
    nxt = _next_weight(snap)
    if not needs_early(snap) or nxt is None:
        return None
    if snap.busy:
        # A controller's own step (a timed pause, a running analysis): promoting now
        # skips the rest of it, as `kubectl argo rollouts promote` would.
        return ConfirmDialog(
            "Promote before this step is over?",
            f"{snap.busy[0].upper()}{snap.busy[1:]}. Promote past it now (the canary "
            f"goes on towards {nxt}%)?",
            confirm="Promote now",
            default="cancel",
        )
    if snap.bake_remaining > 0:
        return ConfirmDialog(
            "Advance before the bake is over?",
            f"{_baked(snap)} Advance to {nxt}% now?",
            confirm="Advance now",
            default="cancel",
        )
    short = next(g for g in snap.gates if g.needs_more_data)
    return ConfirmDialog(
        "Advance before the gates have enough data?",
        f"Gate {short.name} {short.reason}. Nothing shows a breach, but nothing shows the "
        f"canary healthy yet either. Advance to {nxt}% now?",
        confirm="Advance now",
        default="cancel",
    )


def advances_to_last(snap: Snapshot) -> bool:
    """Whether `a` now takes the canary to the last step: that is a promotion. In
    blue-green the switch is (all traffic moves at once); its end is not."""
    if snap.plan.strategy == "blue-green":
        return snap.step_index < 0
    return snap.step_index + 2 == len(snap.timeline)


def pause() -> ReasonDialog:
    return ReasonDialog(
        "Pause the release?",
        "The canary keeps its current weight; nothing advances until you resume.",
        confirm="Pause",
        required=False,
    )


def _reason_dialog(title: str, body: str, *, confirm: str, warning: str,
                   plan: ReleasePlan) -> ReasonDialog:
    """A reason for a promotion. In production it also needs the service's name typed
    out, as a flag change needs its key: 100% of traffic is not one Enter away."""
    if not plan.production:
        return ReasonDialog(title, body, confirm=confirm, required=False, warning=warning)
    return ReasonDialog(
        title, body, confirm=confirm, required=False, warning=warning,
        typed_key=plan.service, typed_what="the service's name",
        typed_hint=f"{_production(plan)} — to confirm, type the service's name:",
    )


def promote(snap: Snapshot) -> ReasonDialog:
    """Asked only once the engine has said it would promote (`ReleaseEngine.why_not`)."""
    warning = ""
    if snap.step_index < 0:
        warning = "The canary has taken no traffic yet: no gate has judged it."
    return _reason_dialog(
        f"Promote {snap.plan.service} {snap.plan.version} to 100%?",
        f"The canary goes from {snap.weight}% to 100% of traffic in "
        f"{snap.plan.environment}, skipping the remaining steps.",
        confirm="Promote", warning=warning, plan=snap.plan,
    )


def advance_to_last(snap: Snapshot) -> ReasonDialog:
    """`a` at the step before the last: a promotion, asked as one (typed in production)."""
    nxt = _next_weight(snap)
    early = _baked(snap) + " Advancing now cuts the bake short." if (
        snap.phase is Phase.PROGRESSING and snap.bake_remaining > 0) else ""
    plan = snap.plan
    if plan.strategy == "blue-green":
        bake = plan.steps[0].bake if plan.steps else 0.0
        return _reason_dialog(
            f"Switch {plan.service} to green ({plan.version})?",
            f"All traffic in {plan.environment} moves to green at once; blue "
            f"({plan.baseline_version or 'stable'}) drains and stays ready for a switch "
            f"back. The gates then judge green for {fmt.duration(bake)} against blue's "
            "last readings.",
            confirm="Switch to green", warning=early, plan=plan,
        )
    return _reason_dialog(
        f"Advance {snap.plan.service} {snap.plan.version} to {nxt}%?",
        f"The last step: the canary goes from {snap.weight}% to {nxt}% of traffic in "
        f"{snap.plan.environment}.",
        confirm=f"Advance to {nxt}%", warning=early, plan=snap.plan,
    )


def retry_rollback(snap: Snapshot) -> ConfirmDialog:
    return ConfirmDialog(
        "Retry the rollback now?",
        f"The rollback is not verified yet (attempt {snap.rollback_attempts}). "
        "The engine keeps retrying on its own; this tries once more right away.",
        confirm="Retry now",
        danger=True,
    )


def _undoing(snap: Snapshot) -> str:
    """What a rollback undoes, in the strategy's words."""
    baseline = snap.plan.baseline_version or "stable"
    route = snap.traffic.route if snap.traffic is not None else None
    if snap.plan.strategy == "rolling":
        done = route.batches if route is not None else 0
        return (f"The {done} batch{'es' if done != 1 else ''} already on "
                f"{snap.plan.version} are deployed again with {baseline}, newest first, "
                "each drained and health-checked before it takes users.")
    if snap.plan.strategy == "blue-green":
        return (f"All traffic switches back to blue ({baseline}); green drains. "
                f"Green now has {snap.weight}%.")
    undo = []
    if route is not None and route.cohorts:
        undo.append(f"cohort {', '.join(route.cohorts)} stops reaching the canary")
    if route is not None and route.mirror:
        undo.append("the mirror is turned off")
    before = f"{'; '.join(undo)}; " if undo else ""
    return (f"All traffic goes back to {baseline}: {before}the canary goes from "
            f"{snap.weight}% to 0%.")


def rollback(snap: Snapshot) -> ReasonDialog:
    return ReasonDialog(
        f"Roll back {snap.plan.service} {snap.plan.version}?",
        f"{_undoing(snap)} The engine retries until it is verified.",
        confirm="Roll back",
        required=True,
        danger=True,
    )


def take_lease(snap: Snapshot) -> ReasonDialog:
    """Asked before a watcher takes a free lease: from then on it is what guards the
    release, automatic rollback included."""
    plan = snap.plan
    auto = [what for what, on in (("rollback", plan.auto_rollback),
                                  ("advance", plan.auto_advance)) if on]
    resumes = (f"The automatic {' and '.join(auto)} resume{'s' if len(auto) == 1 else ''} "
               "from here, where the release stands now" if auto
               else "Nothing advances or rolls back on its own (auto_advance and "
                    "auto_rollback are off)")
    return ReasonDialog(
        f"Drive {plan.service} {plan.version} from this console?",
        f"Nobody drives this release. Taking the lease makes this console its driver: "
        f"{resumes} ({where(snap)}), and the action keys act. Others watch.",
        confirm="Take the lease",
        required=True,
        placeholder="reason (required — journalled with the take)",
    )


def typed_hint(plan: ReleasePlan) -> str:
    """In production a flag change needs its key typed out; this says so.

    Whether the release is production is the config's decision (`plan.production`);
    this only names an environment that is not literally called "production".
    """
    return f"{_production(plan)} — to confirm, type the flag's key:"


def _production(plan: ReleasePlan) -> str:
    environment = plan.environment
    return "Production" if environment.casefold() == "production" else (
        f"{environment} is production"
    )


def flag(snap: Snapshot, key: str, enabled: bool) -> ReasonDialog:
    found = next((f for f in snap.flags if f.key == key), None)
    mine = " It belongs to this release." if found is not None and found.in_release else ""
    # Say what happens to the feature, from the flag's kind: "kill a kill switch" alone
    # does not tell whether the feature goes on or off.
    if enabled:
        title = f"Restore flag {key}?"
        what = f" — {flag_effect(found, kill=False)}" if found else ""
        body = f"{key} is turned back ON for everyone it targets{what}.{mine}"
    else:
        title = f"Kill flag {key}?"
        what = f" — {flag_effect(found, kill=True)}" if found else ""
        body = f"{key} is turned OFF for everyone{what}.{mine}"
    production = snap.plan.production
    return ReasonDialog(title, body, confirm="Restore" if enabled else "Kill",
                        required=True, danger=not enabled,
                        typed_key=key if production else "",
                        typed_hint=typed_hint(snap.plan) if production else "")


def rollout(snap: Snapshot, target: Flag) -> RolloutDialog:
    production = snap.plan.production
    return RolloutDialog(target, typed_key=production,
                         typed_hint=typed_hint(snap.plan) if production else "")


def target(snap: Snapshot, flag: Flag) -> TargetDialog:
    production = snap.plan.production
    return TargetDialog(flag, typed_key=production,
                        typed_hint=typed_hint(snap.plan) if production else "")


def targeting_unsupported(snap: Snapshot) -> str | None:
    """Why this console cannot serve a flag to a cohort, or None when it can: a provider
    that reads cohorts back (`Flag.segments` not None) can set them."""
    if not snap.flags_provider:
        return "no flag provider is configured"
    if any(f.segments is not None for f in snap.flags):
        return None
    return targeting_refusal(snap.flags_provider).removeprefix("flag cohorts refused: ")


def rollout_unsupported(snap: Snapshot) -> str:
    """Why this console cannot set rollout percentages (the provider keeps them)."""
    name = snap.flags_provider
    if not name:
        return "no flag provider is configured"
    return f"{name} keeps rollout percentages itself — change them in {name}"


# The answers of the quit dialog (`ChoiceDialog` ids).
HAND_OFF, PAUSE_AND_QUIT, LEAVE_AS_IS = "hand-off", "pause", "leave"


def where(snap: Snapshot) -> str:
    """'checkout-api 2.3.0 PROGRESSING at 10% (step 2/4)': what the exit line starts with."""
    return (f"{snap.plan.service} {snap.plan.version} {snap.phase.label} at {snap.weight}% "
            f"({snap.step_label})")


def quit_driving(
    snap: Snapshot, *, pause_refused: str | None, handoff_refused: str
) -> ChoiceDialog:
    """What to do with a release this console drives, before it quits.

    While it runs, this console is what rolls the canary back when a gate fails; once it
    quits nothing does, so quitting says so and offers the ways to leave it guarded or at
    least still. Cancel is focused: `q` then a stray Enter keeps driving.
    """
    rolling_back = snap.phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED)
    if rolling_back:
        body = (f"The rollback of {snap.plan.service} {snap.plan.version} is not verified yet "
                f"(canary at {snap.weight}%, attempt {snap.rollback_attempts}). This console "
                "keeps retrying it; once it quits, nothing does.")
        leave = "Quit, leave the rollback unfinished — nobody will retry it"
    else:
        guard = ("a failing gate rolls the canary back" if snap.plan.auto_rollback
                 else "it shows a failing gate")
        body = (f"{where(snap)}. This console drives it: while it runs, {guard}; once "
                "it quits, nothing does.")
        leave = f"Quit, leave it {snap.phase.label} — nobody will roll it back"
    if snap.phase is Phase.PAUSED:
        # A headless run ends at once on a paused release (exit 4): it would not guard it.
        handoff_refused = "a headless run stops at once on a paused release"
    choices = [
        Choice(HAND_OFF, "Hand off to a headless driver, then quit",
               unavailable=f"No hand-off: {handoff_refused}" if handoff_refused else ""),
        Choice(PAUSE_AND_QUIT, f"Pause at {snap.weight}%, then quit",
               unavailable="" if pause_refused is None else f"No pause: {_why(pause_refused)}"),
        Choice(LEAVE_AS_IS, leave),
        Choice("cancel", "Cancel — keep driving from this console"),
    ]
    starts = " (it starts the release)" if snap.phase is Phase.PENDING else ""
    return ChoiceDialog(
        "Quit while this console drives the release?",
        body,
        choices,
        warning=("A headless driver takes the lease and follows the plan" + starts + ": it "
                 "rolls back when a gate fails, and advances when a bake is over and the "
                 "gates pass."),
    )


def _why(refusal: str) -> str:
    """'pause refused: release is paused' → 'release is paused', for a short label."""
    return refusal.split(": ", 1)[-1]
