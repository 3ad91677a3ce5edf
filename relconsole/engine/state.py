"""What the engine tells its front ends: a snapshot of the release and discrete events."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from relconsole.flags_audit import Finding, audit, findings_by_key
from relconsole.model import (
    ControllerState,
    Flag,
    GateStatus,
    Mode,
    Phase,
    ReleasePlan,
    Step,
    TrafficState,
    Verdict,
)


class EventKind(StrEnum):
    """What an event is about: the engine's own events and the journal's intents.

    The journal writes the intent values, a watching console turns the driver's records
    into events of the same kinds, and the headless printer and the journal panel colour
    by them; one enum keeps a typo from silently turning a rollback into a plain line.
    """

    ATTACH = "attach"
    ADVANCE = "advance"
    STEP = "step"
    PROMOTE = "promote"
    PROMOTED = "promoted"
    VERDICT = "verdict"
    PAUSE = "pause"
    RESUME = "resume"
    ROLLBACK = "rollback"
    ROLLBACK_RETRY = "rollback.retry"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"
    ERROR = "error"
    FLAG = "flag"
    FLAG_KILL = "flag.kill"
    FLAG_RESTORE = "flag.restore"
    FLAG_ROLLOUT = "flag.rollout"
    PROVIDER = "provider"
    LEASE = "lease"
    # The schedule holds the release (outside its window, a step's `at:`), or lets it go.
    HOLD = "hold"
    # A database migration's up (and check) or, asked for by an operator, its down.
    MIGRATION_UP = "migration.up"
    MIGRATION_DOWN = "migration.down"
    # A journal record whose intent this version does not know (a newer driver wrote it).
    JOURNAL = "journal"

    @classmethod
    def of_intent(cls, intent: object) -> EventKind:
        """The kind of a journal record's intent; unknown intents are plain journal lines."""
        try:
            return cls(str(intent))
        except ValueError:
            return cls.JOURNAL

    @property
    def is_flag(self) -> bool:
        return self in (EventKind.FLAG, EventKind.FLAG_KILL, EventKind.FLAG_RESTORE,
                        EventKind.FLAG_ROLLOUT)


@dataclass(frozen=True)
class Series:
    """Recent values of one metric for the sparklines, oldest first (None = no data)."""

    canary: tuple[float | None, ...] = ()
    baseline: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class ProblemNote:
    """A provider that is failing or stale: what went wrong and since when."""

    source: str  # "metrics", "traffic", "flags"
    message: str
    since: float


@dataclass(frozen=True)
class RollbackCause:
    """Why a release was rolled back, kept for as long as the rollback is the news.

    A gate that tripped a rollback turns INCONCLUSIVE a poll later (the canary takes no
    traffic any more); the verdicts as they stood when the rollback began are what an
    operator needs to see, so they are kept here, beside the words of the reason.
    """

    reason: str
    at: float
    actor: str
    """Who rolled back, as the console or the journal names them."""
    weight: int
    """The canary weight the rollback started from."""
    step_index: int
    gates: tuple[GateStatus, ...] = ()
    """Every gate's verdict when the rollback began (empty when not known)."""

    @property
    def tripped(self) -> tuple[GateStatus, ...]:
        """The gates that had failed up to their limit when the rollback began."""
        return tuple(g for g in self.gates if g.verdict is Verdict.FAIL and g.tripped)


@dataclass(frozen=True)
class Snapshot:
    plan: ReleasePlan
    now: float
    mode: Mode
    driver: str  # who holds the lease ("you" when this process drives)
    driver_since: float | None
    phase: Phase
    step_index: int  # -1 before the first step
    weight: int  # last weight read back from the traffic provider
    bake_elapsed: float
    pause_reason: str = ""
    ready_to_advance: bool = False  # bake over, gates green, waiting for a human
    gates: tuple[GateStatus, ...] = ()
    latest: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    traffic: TrafficState | None = None
    flags: tuple[Flag, ...] = ()
    problems: tuple[ProblemNote, ...] = ()
    rollback_attempts: int = 0
    rollback_next_at: float | None = None
    last_error: str = ""
    """The last refused or failed action, for the status line; "" once the phase or the
    step it was said in has changed (it is about a state that is gone)."""
    rollback_reason: str = ""
    """Why the release is being (or was) rolled back: the gate, the operator's words."""
    rollback_error: str = ""
    """Why the last rollback attempt is not verified yet ("" once it is, or before one)."""
    flags_provider: str = ""
    """The flag provider's name ("" when none is configured)."""
    flag_rollout_supported: bool = False
    """Whether a flag's rollout percentage can be set through the flag provider."""
    journal_warnings: tuple[str, ...] = ()
    """What the journal repaired or doubts (a torn last line, a stale head), oldest first."""
    rollback_cause: RollbackCause | None = None
    """The last rollback's cause with the verdicts behind it (None: no rollback known)."""
    traffic_at: float | None = None
    """When `weight` and `traffic` were read (None: never); old while traffic is dark."""
    metrics_at: float | None = None
    """When the metrics provider last answered (None: never); `latest` is that old."""
    hold: str = ""
    """What the schedule says keeps the release from moving on now (outside its deployment
    window, in a freeze, the next step's `at:` to come); "" when nothing does."""
    busy: str = ""
    """Why the controller that owns the plan moves on from this step by itself (a timed
    pause, a running analysis), so that `a` now cuts the step short; "" otherwise."""

    @property
    def controller(self) -> ControllerState | None:
        """The controller that owns the plan (Argo Rollouts), as last read; or None."""
        return self.traffic.controller if self.traffic is not None else None

    @property
    def timeline(self) -> tuple[Step, ...]:
        """The steps the release follows: the config's, or the controller's own plan and
        its end at 100 % (index = the controller's step number)."""
        c = self.controller
        if c is None:
            return self.plan.steps
        return (*(Step(weight=s.weight) for s in c.plan), Step(weight=100))

    @property
    def step_label(self) -> str:
        """'step 2/4'; with a controller, its own count ('step 3/8', as its CLI says)."""
        c = self.controller
        if c is not None:
            return f"step {max(self.step_index, 0)}/{len(c.plan)}"
        text = f"step {self.step_index + 1}/{len(self.plan.steps)}"
        # The strategy's word for the step ("cohort beta-users", "switch", "batch 2").
        step = self.step
        return f"{text} · {step.label}" if step is not None and step.label else text

    @property
    def step(self) -> Step | None:
        steps = self.timeline
        if 0 <= self.step_index < len(steps):
            return steps[self.step_index]
        return None

    @property
    def bake_remaining(self) -> float:
        step = self.step
        if step is None:
            return 0.0
        return max(0.0, step.bake - self.bake_elapsed)

    def problem(self, source: str) -> ProblemNote | None:
        for p in self.problems:
            if p.source == source:
                return p
        return None

    def old(self, source: str) -> float | None:
        """When the values shown of `source` ("traffic", "metrics") were read, if they
        are old: the provider has a problem and has not answered since it began. None
        while they are live (or, answering with nothing usable, not shown at all)."""
        note = self.problem(source)
        at = {"traffic": self.traffic_at, "metrics": self.metrics_at}.get(source)
        if note is None or at is None or at > note.since:
            return None
        return at

    def flag_findings(self) -> dict[str, tuple[Finding, ...]]:
        """Flag hygiene findings per flag key (flags without findings are absent).

        What `relconsole flags --audit` reports, judged at this snapshot's time against
        the release's audit policy; `flags_audit.marker()` turns a flag's findings into
        a short marker for the flags panel.
        """
        return findings_by_key(audit(self.flags, self.plan.flags_audit, self.now))


@dataclass(frozen=True)
class Event:
    """Something that happened, as one line for the journal panel and the headless log."""

    at: float
    kind: EventKind
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    actor: str = ""
    past: bool = False
    """Replayed from the journal when a console attached: history, not news."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "kind": self.kind.value,
            "message": self.message,
            "actor": self.actor,
            **self.data,
        }
