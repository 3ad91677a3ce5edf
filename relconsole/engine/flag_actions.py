"""Verified flag changes: kill, restore, rollout percentage and cohorts (safety rule 2
for flags).

A cohort (`model.Segment`: users whose attribute is one of some values) is served the
flag's "on" whatever its percentage; it is read back in `Flag.segments`, and the change
is verified only when the cohort reads back as asked while the flag's state and
percentage read back as they were.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from relconsole.engine.context import EngineContext
from relconsole.engine.journal import JournalError
from relconsole.engine.results import ActionResult, CallFailed
from relconsole.engine.state import EventKind
from relconsole.model import Actor, Flag, Segment
from relconsole.providers.base import FlagProvider, FlagTargeting, targets_segments

# The built-in flag providers that serve a flag to a cohort (the engine knows none of
# them by code, only by name, for the refusal's words).
TARGETING_PROVIDERS = ("flagd", "unleash", "launchdarkly", "split")
# An evaluation-context key as applications write them: `plan`, `userId`, `user.country`.
ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")
MAX_VALUES = 1000
SEGMENT_EXAMPLES = "userId=alice,bob, plan=beta or country=DE,FR"


def attribute_problem(attribute: str) -> str:
    """What is wrong with a cohort's attribute name ("" when nothing is)."""
    if not attribute:
        return f"the attribute is missing: write ATTR=V1,V2 (e.g. {SEGMENT_EXAMPLES})"
    if not ATTRIBUTE.fullmatch(attribute):
        return (f"“{attribute}” is not an attribute name: letters, digits, _ . - "
                "(starting with a letter or _), as the application sends it")
    return ""


def parse_segment(text: str) -> Segment | str:
    """`plan=beta`, `userId=alice,bob` as a Segment, or what is wrong with the text."""
    raw = text.strip()
    if "=" not in raw:
        return f"“{raw}” is not a cohort: write ATTR=V1,V2 (e.g. {SEGMENT_EXAMPLES})"
    attribute, _, listed = raw.partition("=")
    attribute = attribute.strip()
    problem = attribute_problem(attribute)
    if problem:
        return problem
    values = [v.strip() for v in listed.split(",")]
    if not any(values):
        return f"no values after {attribute}=: list who the flag is on for, e.g. {attribute}=beta"
    if not all(values):
        return f"an empty value in “{listed.strip()}”: separate values with single commas"
    if len(values) > MAX_VALUES:
        return f"{len(values)} values: at most {MAX_VALUES} in one cohort"
    return Segment(attribute, tuple(dict.fromkeys(values)))  # each once, in order


def targeting_refusal(name: str) -> str:
    """Why a flag provider without cohorts refuses one, naming those that have them."""
    return (f"flag cohorts refused: the {name or 'configured'} flag provider cannot serve a "
            f"flag to a cohort; {', '.join(TARGETING_PROVIDERS)} can")


@dataclass(frozen=True)
class FlagChange:
    """One change of one flag: how to make it, and how to tell from a read that it held."""

    key: str
    intent: str
    reason: str
    apply: Callable[[FlagProvider], Awaitable[None]]
    check: Callable[[Flag], bool]
    done: str
    """What the change did, in the words the journal panel shows."""
    held: Callable[[Flag | None, Flag], bool] | None = None
    """Where `check` needs the flag as it was too: whether the change held."""
    keeps: tuple[str, ...] = ()
    """`Flag` fields that must read back as they were before the change."""
    attribute: str = ""
    """The cohort's attribute, for a target or untarget."""

    def keys_changed(self, before: Flag | None, after: Flag | None) -> list[str]:
        """The `keeps` fields that read back otherwise than they were."""
        if before is None or after is None:
            return []
        return [name for name in self.keeps if getattr(before, name) != getattr(after, name)]

    @classmethod
    def enable(cls, key: str, enabled: bool, reason: str) -> FlagChange:
        return cls(
            key, "flag.restore" if enabled else "flag.kill", reason,
            apply=lambda p: p.set_enabled(key, enabled, reason=reason),
            check=lambda f: f.enabled == enabled,
            done=f"{key} {'restored (on)' if enabled else 'KILLED (off)'}",
        )

    @classmethod
    def rollout(cls, key: str, percent: int, reason: str) -> FlagChange:
        return cls(
            key, "flag.rollout", reason,
            apply=lambda p: p.set_rollout(key, percent, reason=reason),
            check=lambda f: f.rollout == percent,
            done=f"{key} rollout at {percent}%",
        )

    @classmethod
    def target(cls, key: str, segment: Segment, reason: str) -> FlagChange:
        def apply(p: FlagProvider) -> Awaitable[None]:
            # `cohort_refusal` has checked `targets_segments` before this runs.
            return cast(FlagTargeting, p).target(key, segment, reason=reason)

        return cls(
            key, "flag.target", reason, apply=apply,
            check=lambda f: f.segments is not None and any(
                s.same(segment) for s in f.segments),
            done=f"{key} on for {segment.text()}", keeps=("enabled", "rollout"),
            attribute=segment.attribute,
        )

    @classmethod
    def cohort(cls, key: str, attribute: str, values: tuple[str, ...], reason: str
               ) -> FlagChange:
        """`target` the cohort of `attribute` in `values`; with no values, `untarget` it."""
        if values:
            return cls.target(key, Segment(attribute, tuple(values)), reason)
        return cls.untarget(key, attribute, reason)

    @classmethod
    def untarget(cls, key: str, attribute: str, reason: str) -> FlagChange:
        def apply(p: FlagProvider) -> Awaitable[None]:
            return cast(FlagTargeting, p).untarget(key, attribute, reason=reason)

        def on(flag: Flag | None) -> int:
            segments = flag.segments if flag is not None else None
            return sum(s.attribute == attribute for s in segments or ())

        # Another person's rule on the same attribute (LaunchDarkly reads every simple
        # rule back) may stay: relconsole's own is gone when one fewer reads back.
        return cls(
            key, "flag.untarget", reason, apply=apply,
            check=lambda f: f.segments is not None,
            held=lambda before, after: on(after) == 0 or on(after) < on(before),
            done=f"{key} no longer on for its {attribute} cohort",
            keeps=("enabled", "rollout"), attribute=attribute,
        )


def _shown(flag: Flag | None) -> str:
    if flag is None:
        return "no such flag"
    text = "on" if flag.enabled else "off"
    if flag.rollout is not None:
        text += f", rollout {flag.rollout}%"
    if flag.segments:
        text += ", on for " + "; ".join(s.text() for s in flag.segments)
    return text


def _state(key: str, flag: Flag | None) -> dict[str, object]:
    """A flag as the journal's before/after records it."""
    state: dict[str, object] = {"flag": key, "enabled": flag.enabled if flag else None,
                                "rollout": flag.rollout if flag else None}
    if flag is not None and flag.segments is not None:
        state["segments"] = [s.text() for s in flag.segments]
    return state


def cohort_refusal(provider: FlagProvider | None, change: FlagChange,
                   current: Flag | None, values: tuple[str, ...] = ()) -> str | None:
    """Why a target/untarget would be refused before anything is journalled, or None."""
    if provider is None:
        return None  # said by the caller, as for every flag change
    if not targets_segments(provider):
        return targeting_refusal(provider.name)
    problem = attribute_problem(change.attribute)
    if not problem and any(not v.strip() for v in values):
        problem = "a cohort's values must not be empty"
    if problem:
        return f"{change.intent} refused: {problem}"
    if change.intent == "flag.untarget" and current is not None and current.segments is not None:
        attribute = change.attribute
        if all(s.attribute != attribute for s in current.segments):
            has = "; ".join(s.text() for s in current.segments) or "none"
            return (f"flag.untarget refused: {change.key} has no cohort on {attribute} "
                    f"(its cohorts: {has})")
    return None


class FlagActions:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    def cohort_refusal(self, change: FlagChange, values: tuple[str, ...] = ()) -> str | None:
        """Why a target/untarget would be refused now, before anything is journalled."""
        return cohort_refusal(self.ctx.drive.flags, change, self.ctx.obs.flag(change.key),
                              values)

    async def change(self, change: FlagChange, actor: Actor | None) -> ActionResult:
        """Journal → call → read back → verify → journal, with the engine lock held."""
        ctx = self.ctx
        provider = ctx.drive.flags
        if provider is None:
            return ActionResult(False, "no flag provider is configured")
        key, intent, reason = change.key, change.intent, change.reason
        current = ctx.obs.flag(key)
        before = _state(key, current)
        try:
            ctx.record.write(intent, reason=reason, before=before, data={"flag": key},
                             actor=actor)
        except JournalError as exc:
            return ctx.refuse(f"{intent} refused: journal cannot be written ({exc})")
        try:
            await ctx.call("flags", f"change {key}", change.apply(provider))
            listed = await ctx.call("flags", "read back", provider.list_flags())
        except CallFailed as exc:
            result = ctx.fail(intent, reason, before, f"{intent} {key} not verified: {exc}",
                              actor, outcome=f"failed: {exc}")
            ctx.publish()
            return result
        ctx.obs.flags = ctx.obs.mark_release_flags(listed)
        flag = ctx.obs.flag(key)
        moved = change.keys_changed(current, flag)
        held = flag is not None and change.check(flag) and (
            change.held is None or change.held(current, flag))
        if flag is None or not held or moved:
            also = f" ({', '.join(moved)} changed too)" if moved else ""
            message = f"{intent} {key} not verified: provider shows {_shown(flag)}{also}"
            result = ctx.fail(intent, reason, before, message, actor)
            ctx.publish()
            return result
        ctx.record.soft(intent, reason=reason, before=before,
                        after=_state(key, flag),
                        outcome="verified", actor=actor)
        ctx.emit(EventKind.FLAG, f"{change.done}: {reason}", actor=ctx.who(actor))
        ctx.publish()
        return ActionResult(True, f"{change.done} (verified)")
