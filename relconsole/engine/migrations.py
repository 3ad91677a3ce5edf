"""Database migrations of a release (`release.migrations`): expand before traffic moves,
contract long after, and a `down` only when an operator asks for it.

- **Expand** migrations run before the first traffic step (the advance or promotion
  from PENDING, automatic or by hand): each one's `up`, then its `check`. Safety rule 2
  as for traffic: the intent is journalled (`migration.up`), the command runs, `check`
  verifies it, the outcome is journalled; it is `verified` only when `check` exits 0. A
  failing `up` or `check` stops the release before any traffic moves: it pauses with the
  command's last line of output as the reason, and nothing else changes. A migration
  the journal shows verified is not run again (after a restart, or a new attempt).
- **Contract** migrations run only once the release is PROMOTED and
  `release.contract_after` has passed since the promotion was verified; journalled
  likewise. A failing one is shown as a problem and not retried by itself. Once one is
  verified a rollback is refused: the old code may not run on the contracted schema.
- **Rollback never runs a `down`.** It offers the `down` of every verified expand
  migration, most recent first (`offered_downs`); `run_down` runs one when an operator
  asks, with a reason (`relconsole migrate down NAME --reason TEXT`), journalled as
  `migration.down` and verified by its exit status. A forward fix is usually safer than
  undoing a schema change under a running service, so nothing here does it on its own.

The engine runs no program itself: a `MigrationRunner` (argv, timeout, environment →
`CommandOutcome`) is handed in, built by `assembly.py` over `relconsole.commands`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relconsole.engine.context import EngineContext
from relconsole.engine.journal import JournalError
from relconsole.engine.recovery import current_attempt
from relconsole.engine.results import ActionResult
from relconsole.engine.state import EventKind
from relconsole.model import CONTRACT, Actor, Migration, Phase

UP = "migration.up"
DOWN = "migration.down"
SOURCE = "migrations"  # the problem's source on screen
# Real seconds between lease renewals while a long migration runs: the engine's lock is
# held throughout, so its usual renewal (every poll) does not happen meanwhile.
RENEW_EVERY = 2.0
LINE_LIMIT = 200  # characters of a command's output quoted in a reason


@dataclass(frozen=True)
class CommandOutcome:
    """How one migration command ended, as the runner reports it."""

    exit_code: int | None  # None: killed on its timeout, or never started
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False
    error: str = ""  # why it could not be started

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.error

    def last_line(self) -> str:
        """What the command said last: its last line of stderr, else of stdout."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                line = lines[-1]
                return line if len(line) <= LINE_LIMIT else line[: LINE_LIMIT - 1] + "…"
        return ""

    def summary(self, what: str) -> str:
        if self.error:
            head = f"{what} could not start ({self.error})"
        elif self.timed_out:
            head = f"{what} timed out after {self.duration:.0f}s (killed)"
        else:
            head = f"{what} exited {self.exit_code}"
        said = self.last_line()
        return f"{head}: {said}" if said else head

    def as_data(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "duration": round(self.duration, 3),
                "timed_out": self.timed_out, "said": self.last_line()}


# argv, timeout (real seconds), extra environment -> how it ended. Never raises for a
# program that fails or cannot start: that is an outcome too.
MigrationRunner = Callable[[tuple[str, ...], float, Mapping[str, str]], Awaitable[CommandOutcome]]
# name, phase, outcome, command, who: told once a migration's outcome is known (the
# notifications' `migration` event; `NotifyBridge.migration`).
MigrationHook = Callable[[str, str, str, Sequence[str], str], object]


@dataclass(frozen=True)
class OfferedDown:
    """A `down` the operator may run after a rollback: what it would do."""

    name: str
    command: tuple[str, ...]
    verified_at: float  # when its `up` was verified

    def text(self) -> str:
        return f"{self.name}: {' '.join(self.command)}"


def standing(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, float]]:
    """Each migration's last verified direction (UP or DOWN) and when, from the whole
    journal: a schema does not go back with a new attempt of the release."""
    found: dict[str, tuple[str, float]] = {}
    for record in records:
        intent = record.get("intent")
        if intent not in (UP, DOWN) or not str(record.get("outcome") or "").startswith(
                "verified"):
            continue
        data = record.get("data")
        name = data.get("migration") if isinstance(data, Mapping) else None
        ts = record.get("ts")
        if isinstance(name, str) and isinstance(ts, int | float):
            found[name] = (str(intent), float(ts))
    return found


def promoted_at(records: Sequence[Mapping[str, Any]]) -> float | None:
    """When the current attempt's promotion was verified (its first record at 100 %)."""
    for record in current_attempt(records):
        after = record.get("after")
        if (isinstance(after, Mapping) and after.get("phase") == Phase.PROMOTED.value
                and str(record.get("outcome") or "").startswith("verified")):
            ts = record.get("ts")
            return float(ts) if isinstance(ts, int | float) else None
    return None


class Migrations:
    def __init__(self, ctx: EngineContext, runner: MigrationRunner | None) -> None:
        self.ctx = ctx
        self.runner = runner
        self.on_outcome: MigrationHook | None = None
        self._failed_contract: set[str] = set()  # not retried by this process
        self._offered = False  # the downs were offered for this rollback

    @property
    def plan(self) -> tuple[Migration, ...]:
        return self.ctx.plan.migrations

    def _standing(self) -> dict[str, tuple[str, float]]:
        try:
            return standing(self.ctx.drive.journal.records())
        except JournalError:
            return {}

    def verified(self, name: str) -> bool:
        return self._standing().get(name, ("", 0.0))[0] == UP

    def pending(self, phase: str) -> list[Migration]:
        done = self._standing()
        return [m for m in self.plan if m.phase == phase and done.get(m.name, ("",))[0] != UP]

    # ------------------------------------------------------------------ expand

    async def before_first_step(self, actor: Actor | None) -> ActionResult | None:
        """Run every expand migration not yet verified; the refusal or failure to return
        instead of the step, or None when traffic may move. The engine lock is held."""
        for migration in self.pending("expand"):
            failed = await self._up(migration, actor)
            if failed is not None:
                return failed
        return None

    async def _up(self, m: Migration, actor: Actor | None) -> ActionResult | None:
        ctx = self.ctx
        if self.runner is None:
            return ctx.refuse(f"{m.phase} migration {m.name} cannot run: this console has "
                              "no migration runner")
        reason = f"{m.phase} migration {m.name}"
        before = ctx.state.journal_view()
        data: dict[str, Any] = {"migration": m.name, "phase": m.phase, "command": list(m.up),
                                "check": list(m.check)}
        try:
            ctx.record.write(UP, reason=reason, before=before, after={"migration": m.name},
                             data=data, actor=actor)
        except JournalError as exc:
            return ctx.refuse(f"{reason} refused: journal cannot be written ({exc})")
        ctx.emit(EventKind.MIGRATION_UP, f"{reason}: running {' '.join(m.up)}",
                 actor=ctx.who(actor), migration=m.name, phase=m.phase)
        ran = await self._run(m, m.up, "up")
        data["up"] = ran.as_data()
        problem = None if ran.ok else ran.summary("up")
        if problem is None:
            checked = await self._run(m, m.check, "check")
            data["check_result"] = checked.as_data()
            problem = None if checked.ok else checked.summary("check")
        outcome = "verified" if problem is None else f"failed: {problem}"
        ctx.record.soft(UP, reason=reason, before=before, after=ctx.state.journal_view(),
                        outcome=outcome, data=data, actor=actor)
        self._tell(m, outcome, m.up, actor)
        if problem is None:
            ctx.emit(EventKind.MIGRATION_UP, f"{reason}: verified by {' '.join(m.check)}",
                     actor=ctx.who(actor), migration=m.name, phase=m.phase)
            return None
        message = f"{reason} failed — {problem}"
        ctx.state.last_error = message
        ctx.emit(EventKind.ERROR, message, migration=m.name, phase=m.phase)
        return ActionResult(False, message)

    async def _run(self, m: Migration, argv: tuple[str, ...], which: str) -> CommandOutcome:
        assert self.runner is not None
        plan = self.ctx.plan
        env = {"RELCONSOLE_MIGRATION": m.name, "RELCONSOLE_PHASE": m.phase,
               "RELCONSOLE_COMMAND": which, "RELCONSOLE_SERVICE": plan.service,
               "RELCONSOLE_VERSION": plan.version, "RELCONSOLE_ENVIRONMENT": plan.environment}
        keeper = asyncio.ensure_future(self._keep_lease())
        try:
            return await self.runner(argv, m.timeout, env)
        finally:
            keeper.cancel()

    async def _keep_lease(self) -> None:
        # A schema change may take minutes; the lease must not look abandoned meanwhile.
        while True:
            await asyncio.sleep(RENEW_EVERY)  # real time: leases are wall-clock
            self.ctx.drive.renew()

    def _tell(self, m: Migration, outcome: str, command: Sequence[str],
              actor: Actor | None) -> None:
        if self.on_outcome is not None:
            with contextlib.suppress(Exception):  # a notifier must never stop a release
                self.on_outcome(m.name, m.phase, outcome, list(command), self.ctx.who(actor))

    # ------------------------------------------------------------------ contract

    async def after_promotion(self, now: float) -> None:
        """On a poll of a PROMOTED release: run the contract migrations that are due."""
        ctx = self.ctx
        if ctx.state.phase is not Phase.PROMOTED or not ctx.drive.driving:
            return
        due = [m for m in self.pending(CONTRACT) if m.name not in self._failed_contract]
        if not due:
            return
        try:
            since = promoted_at(ctx.drive.journal.records())
        except JournalError:
            return
        if since is None or now - since < ctx.plan.contract_after:
            return
        for m in due:
            if await self._up(m, None) is not None:
                self._failed_contract.add(m.name)
                ctx.health.note(SOURCE, f"contract migration {m.name} failed and is not "
                                        "retried by itself; fix it, then restart the console")
                return
        ctx.health.note(SOURCE, None)

    def contract_failed(self) -> list[str]:
        """Contract migrations that failed in this process (not retried by themselves)."""
        return sorted(self._failed_contract)

    def contract_pending(self) -> bool:
        """Whether a contract migration is still to run for this promotion."""
        return bool([m for m in self.pending(CONTRACT) if m.name not in self._failed_contract])

    def contracted(self) -> list[str]:
        """Contract migrations verified: a rollback is no longer safe after them."""
        done = self._standing()
        return [m.name for m in self.plan if m.phase == CONTRACT
                and done.get(m.name, ("",))[0] == UP]

    # ------------------------------------------------------------------ after a rollback

    def offered_downs(self) -> list[OfferedDown]:
        """After a rollback: the `down` of every verified expand migration, most recent
        first. Offered only; a forward fix is usually safer."""
        if self.ctx.state.phase is not Phase.ROLLED_BACK:
            return []
        done = self._standing()
        out = [OfferedDown(m.name, m.down, done[m.name][1]) for m in self.plan
               if m.expand and done.get(m.name, ("",))[0] == UP]
        return sorted(out, key=lambda d: d.verified_at, reverse=True)

    def offer(self) -> None:
        """Once per rollback, say on the event stream (the screen's journal, the headless
        log) which downs an operator may run and what each would do. None runs here."""
        if self.ctx.state.phase is not Phase.ROLLED_BACK:
            self._offered = False
            return
        if self._offered:
            return
        self._offered = True
        for down in self.offered_downs():
            self.ctx.emit(
                EventKind.MIGRATION_DOWN,
                f"offered, not run: `relconsole migrate down {down.name} --reason TEXT` would "
                f"run {' '.join(down.command)} (a forward fix is usually safer)",
                migration=down.name, command=list(down.command))

    async def run_down(self, name: str, reason: str, actor: Actor) -> ActionResult:
        """An operator's explicit `down` of one expand migration, after a rollback."""
        ctx = self.ctx
        if not reason.strip():
            return ctx.refuse("migration down refused: a reason is required")
        m = next((m for m in self.plan if m.name == name), None)
        if m is None:
            known = ", ".join(x.name for x in self.plan) or "none are configured"
            return ctx.refuse(f"migration down refused: no migration {name!r} (known: {known})")
        if not m.expand:
            return ctx.refuse(f"migration down refused: {name} is a contract migration; its "
                              "down is not offered (the old schema is gone)")
        if ctx.state.phase is not Phase.ROLLED_BACK:
            return ctx.refuse(f"migration down refused: the release is "
                              f"{ctx.state.phase.label.lower()}, not rolled back — the "
                              "running code may need this schema")
        if not self.verified(name):
            return ctx.refuse(f"migration down refused: {name}'s up is not verified in the "
                              "journal (or it was already taken down): nothing to undo")
        if self.runner is None:
            return ctx.refuse("migration down refused: this console has no migration runner")
        before = ctx.state.journal_view()
        data: dict[str, Any] = {"migration": m.name, "phase": m.phase, "command": list(m.down)}
        try:
            ctx.record.write(DOWN, reason=reason.strip(), before=before,
                             after={"migration": m.name}, data=data, actor=actor)
        except JournalError as exc:
            return ctx.refuse(f"migration down refused: journal cannot be written ({exc})")
        ctx.emit(EventKind.MIGRATION_DOWN, f"down {m.name}: running {' '.join(m.down)}",
                 actor=str(actor), migration=m.name, phase=m.phase)
        ran = await self._run(m, m.down, "down")
        data["down"] = ran.as_data()
        outcome = "verified" if ran.ok else f"failed: {ran.summary('down')}"
        ctx.record.soft(DOWN, reason=reason.strip(), before=before,
                        after=ctx.state.journal_view(), outcome=outcome, data=data, actor=actor)
        self._tell(m, f"down {outcome}", m.down, actor)
        if ran.ok:
            ctx.emit(EventKind.MIGRATION_DOWN, f"down {m.name}: verified (exit 0)",
                     actor=str(actor), migration=m.name, phase=m.phase)
            return ActionResult(True, f"migration {m.name} down: verified (exit 0)")
        message = f"migration {m.name} down failed — {ran.summary('down')}"
        ctx.state.last_error = message
        ctx.emit(EventKind.ERROR, message, migration=m.name)
        return ActionResult(False, message)
