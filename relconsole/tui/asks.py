"""What the console asks before each intent: the dialogs' words, built from a snapshot.

Pure builders (no app, no engine), so the wording an operator confirms is decided in one
place and can be checked without Pilot. The app pushes what these return.
"""

from __future__ import annotations

from relconsole.engine.state import Snapshot
from relconsole.model import Flag, Phase, ReleasePlan, Verdict
from relconsole.tui import format as fmt
from relconsole.tui.dialogs import ConfirmDialog, ReasonDialog, RolloutDialog


def early_advance(snap: Snapshot) -> ConfirmDialog | None:
    """The confirmation for cutting a bake short; None when the bake is over."""
    steps = snap.plan.steps
    if not (
        snap.phase is Phase.PROGRESSING
        and snap.bake_remaining > 0
        and snap.step_index + 1 < len(steps)
    ):
        return None
    return ConfirmDialog(
        "Advance before the bake is over?",
        f"The canary has baked {fmt.duration(snap.bake_elapsed)} of "
        f"{fmt.duration(snap.step.bake if snap.step else 0)} at {snap.weight}% "
        f"({fmt.duration(snap.bake_remaining)} left). Advance to "
        f"{steps[snap.step_index + 1].weight}% now?",
        confirm="Advance now",
    )


def pause() -> ReasonDialog:
    return ReasonDialog(
        "Pause the release?",
        "The canary keeps its current weight; nothing advances until you resume.",
        confirm="Pause",
        required=False,
    )


def promote(snap: Snapshot) -> ReasonDialog:
    not_passing = [g for g in snap.gates if g.verdict is not Verdict.PASS]
    warning = ""
    if not_passing:
        names = ", ".join(f"{g.name} {g.verdict.value.upper()}" for g in not_passing)
        warning = f"Not every gate passes: {names}. The engine will refuse."
    return ReasonDialog(
        f"Promote {snap.plan.service} {snap.plan.version} to 100%?",
        f"The canary goes from {snap.weight}% to 100% of traffic in "
        f"{snap.plan.environment}, skipping the remaining steps.",
        confirm="Promote",
        required=False,
        warning=warning,
    )


def retry_rollback(snap: Snapshot) -> ConfirmDialog:
    return ConfirmDialog(
        "Retry the rollback now?",
        f"The rollback is not verified yet (attempt {snap.rollback_attempts}). "
        "The engine keeps retrying on its own; this tries once more right away.",
        confirm="Retry now",
        danger=True,
    )


def rollback(snap: Snapshot) -> ReasonDialog:
    baseline = snap.plan.baseline_version or "stable"
    return ReasonDialog(
        f"Roll back {snap.plan.service} {snap.plan.version}?",
        f"All traffic goes back to {baseline}: the canary goes from "
        f"{snap.weight}% to 0%. The engine retries until it is verified.",
        confirm="Roll back",
        required=True,
        danger=True,
    )


def typed_hint(plan: ReleasePlan) -> str:
    """In production a flag change needs its key typed out; this says so.

    Whether the release is production is the config's decision (`plan.production`);
    this only names an environment that is not literally called "production".
    """
    environment = plan.environment
    where = "Production" if environment.casefold() == "production" else (
        f"{environment} is production"
    )
    return f"{where} — to confirm, type the flag's key:"


def flag(snap: Snapshot, key: str, enabled: bool) -> ReasonDialog:
    found = next((f for f in snap.flags if f.key == key), None)
    mine = " It belongs to this release." if found is not None and found.in_release else ""
    if enabled:
        title = f"Restore flag {key}?"
        body = f"{key} is turned back ON for everyone it targets.{mine}"
    else:
        title = f"Kill flag {key}?"
        body = f"Kill switch: {key} is turned OFF for everyone.{mine}"
    production = snap.plan.production
    return ReasonDialog(title, body, confirm="Restore" if enabled else "Kill",
                        required=True, danger=not enabled,
                        typed_key=key if production else "",
                        typed_hint=typed_hint(snap.plan) if production else "")


def rollout(snap: Snapshot, target: Flag) -> RolloutDialog:
    production = snap.plan.production
    return RolloutDialog(target, typed_key=production,
                         typed_hint=typed_hint(snap.plan) if production else "")


def rollout_unsupported(snap: Snapshot) -> str:
    """Why this console cannot set rollout percentages (the provider keeps them)."""
    name = snap.flags_provider
    if not name:
        return "no flag provider is configured"
    return f"{name} keeps rollout percentages itself — change them in {name}"
