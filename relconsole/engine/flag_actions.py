"""Verified flag changes: kill, restore and rollout percentage (safety rule 2 for flags)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from relconsole.engine.context import EngineContext
from relconsole.engine.journal import JournalError
from relconsole.engine.results import ActionResult, CallFailed
from relconsole.engine.state import EventKind
from relconsole.model import Actor, Flag
from relconsole.providers.base import FlagProvider


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


def _shown(flag: Flag | None) -> str:
    if flag is None:
        return "no such flag"
    text = "on" if flag.enabled else "off"
    if flag.rollout is not None:
        text += f", rollout {flag.rollout}%"
    return text


class FlagActions:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    async def change(self, change: FlagChange, actor: Actor | None) -> ActionResult:
        """Journal → call → read back → verify → journal, with the engine lock held."""
        ctx = self.ctx
        provider = ctx.drive.flags
        if provider is None:
            return ActionResult(False, "no flag provider is configured")
        key, intent, reason = change.key, change.intent, change.reason
        current = ctx.obs.flag(key)
        before = {"flag": key, "enabled": current.enabled if current else None,
                  "rollout": current.rollout if current else None}
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
        if flag is None or not change.check(flag):
            message = f"{intent} {key} not verified: provider shows {_shown(flag)}"
            result = ctx.fail(intent, reason, before, message, actor)
            ctx.publish()
            return result
        ctx.record.soft(intent, reason=reason, before=before,
                        after={"flag": key, "enabled": flag.enabled, "rollout": flag.rollout},
                        outcome="verified", actor=actor)
        ctx.emit(EventKind.FLAG, f"{change.done}: {reason}", actor=ctx.who(actor))
        ctx.publish()
        return ActionResult(True, f"{change.done} (verified)")
