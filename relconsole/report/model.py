"""What happened in a release, built from its journal records and (optionally) metric series.

Pure: no I/O, no clock. `build_report` takes the records as the journal reads them back,
the release plan from the config, and the series a metrics provider gave for the window;
every renderer (Markdown, HTML, JSON) shows this one model, so they cannot disagree.

Only the current attempt counts (records after the last `restart`, as recovery reads
them); how many earlier attempts the journal holds is said in `notes`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from relconsole.engine.recovery import current_attempt
from relconsole.model import GateSpec, MetricPair, ReleasePlan, actor_text
from relconsole.releases import OUTCOMES
from relconsole.units import RATIO, SECONDS, unit_of, value

SCHEMA = "relconsole.report/1"
ROLLBACK_INTENTS = ("rollback", "rollback.retry")
FLAG_INTENTS = ("flag.kill", "flag.restore", "flag.rollout", "flag.target", "flag.untarget")
# The engine's migration records (`engine/migrations.py` UP and DOWN).
MIGRATION_INTENTS = ("migration.up", "migration.down")
# The intents that move the canary: where a chart marks a step boundary.
STEP_INTENTS = ("advance", "promote", *ROLLBACK_INTENTS)

Record = Mapping[str, Any]


@dataclass(frozen=True)
class TimelineEntry:
    """One action: its intent record with the record of its verified outcome."""

    seq: str  # "4–5": the intent's and the outcome's record numbers
    at: float  # when it was asked for
    done_at: float | None  # when its outcome was written (None: never)
    actor: str
    automatic: bool  # the engine decided, on behalf of `actor`'s lease holder
    intent: str
    reason: str
    step_before: int | None
    step_after: int | None
    weight_before: int | None
    weight_after: int | None
    phase_after: str | None
    outcome: str


@dataclass(frozen=True)
class GateValue:
    """One gate's verdict as a journal record carries it, with the values behind it."""

    gate: str
    verdict: str
    canary: float | None
    baseline: float | None
    unit: str
    threshold: str
    reason: str
    consecutive_failures: int


@dataclass(frozen=True)
class VerdictChange:
    at: float
    seq: int | None
    gate: str
    before: str | None  # None: the first verdict recorded for this gate
    after: GateValue


@dataclass(frozen=True)
class Decision:
    """Why the engine took an automatic action: its rule and the gates it saw."""

    at: float
    intent: str
    reason: str
    on_behalf_of: str
    outcome: str
    gates: tuple[GateValue, ...]


@dataclass(frozen=True)
class FlagChange:
    at: float
    key: str
    intent: str
    actor: str
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]
    outcome: str


@dataclass(frozen=True)
class Timing:
    """Fault → detection → rollback verified, in the journal's clock (Unix seconds)."""

    fault_at: float | None = None
    fault_basis: str = ""  # how fault_at was found: a first bad value, or the step start
    detected_at: float | None = None  # first failing verdict
    detected_gates: tuple[str, ...] = ()
    rollback_at: float | None = None  # the rollback's intent
    rollback_verified_at: float | None = None
    fault_to_detection: float | None = None  # seconds
    detection_to_rollback_verified: float | None = None  # seconds


@dataclass(frozen=True)
class IncidentReview:
    rolled_back: bool  # verified; False: a rollback was asked for and is not verified
    seen: tuple[str, ...]
    when: tuple[tuple[str, float], ...]
    done: tuple[str, ...]
    check_next: tuple[str, ...]


@dataclass(frozen=True)
class Point:
    at: float
    canary: float | None
    baseline: float | None


@dataclass(frozen=True)
class StepMark:
    at: float
    label: str  # "step 2 · 10%", "rollback", "promoted"
    kind: str  # "step", "rollback" or "promote"


@dataclass(frozen=True)
class Chart:
    metric: str
    title: str
    unit: str
    points: tuple[Point, ...]
    limit: float | None  # the gate's absolute max, drawn as a line


@dataclass(frozen=True)
class Report:
    schema: str
    release: str
    service: str
    version: str
    baseline_version: str
    environment: str
    outcome: str
    started: float | None
    ended: float | None
    records: int
    timeline: tuple[TimelineEntry, ...]
    verdict_changes: tuple[VerdictChange, ...]
    decisions: tuple[Decision, ...]
    flags: tuple[FlagChange, ...]
    # {at, name, phase, direction (up|down), command, actor, reason, outcome, text}
    migrations: tuple[dict[str, Any], ...]
    timing: Timing
    incident_review: IncidentReview | None
    marks: tuple[StepMark, ...]
    charts: tuple[Chart, ...]
    dashboards: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------- helpers


def _num(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _ts(rec: Record) -> float | None:
    return _num(rec.get("ts"))


def _view(rec: Record | None, key: str) -> Any:
    part = rec.get(key) if rec is not None else None
    return part if isinstance(part, Mapping) else {}


def _automatic(actor: Any) -> bool:
    return isinstance(actor, Mapping) and bool(actor.get("on_behalf_of"))


def _pairs(records: Sequence[Record]) -> list[tuple[Record, Record | None]]:
    """Each action as (intent record, outcome record): an action is journalled twice,
    intent first and verified outcome after (safety rule 2). A record written with its
    outcome pairs with itself; an intent whose outcome never came gets None."""
    used: set[int] = set()
    out: list[tuple[Record, Record | None]] = []
    for i, rec in enumerate(records):
        if i in used:
            continue
        if rec.get("outcome") is not None:
            out.append((rec, rec))
            continue
        end: Record | None = None
        for j in range(i + 1, len(records)):
            later = records[j]
            if later.get("intent") != rec.get("intent"):
                continue
            if later.get("outcome") is not None:
                used.add(j)
                end = later
            break  # the same intent again without an outcome: a new attempt
        out.append((rec, end))
    return out


def gate_values(data: Any) -> tuple[GateValue, ...]:
    """The gates a record's `data` carries (`data.gates`, as `record`/`changes` write)."""
    gates = data.get("gates") if isinstance(data, Mapping) else None
    if not isinstance(gates, list):
        return ()
    out = []
    for g in gates:
        if not isinstance(g, Mapping) or "gate" not in g:
            continue
        out.append(GateValue(
            gate=str(g["gate"]),
            verdict=str(g.get("verdict", "")),
            canary=_num(g.get("canary")),
            baseline=_num(g.get("baseline")),
            unit=str(g.get("unit") or ""),
            threshold=str(g.get("threshold") or ""),
            reason=str(g.get("reason") or ""),
            consecutive_failures=_int(g.get("consecutive_failures")) or 0,
        ))
    return tuple(out)


def _entry(rec: Record, end: Record | None) -> TimelineEntry:
    before, after = _view(rec, "before"), _view(end or rec, "after")
    if end is not None and end is not rec and not after:
        after = _view(rec, "after")
    seq = str(rec.get("seq", "?"))
    if end is not None and end is not rec:
        seq += f"–{end.get('seq', '?')}"
    return TimelineEntry(
        seq=seq,
        at=_ts(rec) or 0.0,
        done_at=_ts(end) if end is not None else None,
        actor=actor_text(rec.get("actor")),
        automatic=_automatic(rec.get("actor")),
        intent=str(rec.get("intent", "")),
        reason=str(rec.get("reason") or ""),
        step_before=_int(before.get("step")),
        step_after=_int(after.get("step")),
        weight_before=_int(before.get("weight")),
        weight_after=_int(after.get("weight")),
        phase_after=str(after["phase"]) if after.get("phase") else None,
        outcome=(str(end.get("outcome")) if end is not None
                 else "no outcome recorded (the console stopped before verifying)"),
    )


def _verified(entry: TimelineEntry) -> bool:
    return entry.outcome.startswith("verified")


def _verdict_changes(records: Sequence[Record]) -> list[VerdictChange]:
    last: dict[str, str] = {}
    out: list[VerdictChange] = []
    for rec in records:
        at = _ts(rec)
        for g in gate_values(rec.get("data")):
            if at is None or last.get(g.gate) == g.verdict:
                continue
            out.append(VerdictChange(at=at, seq=_int(rec.get("seq")), gate=g.gate,
                                     before=last.get(g.gate), after=g))
            last[g.gate] = g.verdict
    return out


def _marks(timeline: Sequence[TimelineEntry]) -> list[StepMark]:
    marks: list[StepMark] = []
    for e in timeline:
        if e.intent not in STEP_INTENTS or not _verified(e) or e.done_at is None:
            continue
        if e.intent in ROLLBACK_INTENTS:
            marks.append(StepMark(e.done_at, "rollback", "rollback"))
        elif e.phase_after == "promoted":
            marks.append(StepMark(e.done_at, f"promoted · {e.weight_after}%", "promote"))
        else:
            marks.append(StepMark(e.done_at, f"step {e.step_after} · {e.weight_after}%", "step"))
    return marks


def _breaches(spec: GateSpec, canary: float | None, baseline: float | None) -> bool:
    """Whether one canary value is past a limit of the gate (the value, not the verdict:
    a gate on counts or with a failure limit decides later, which is the point)."""
    if canary is None:
        return False
    if spec.max is not None and canary > spec.max:
        return True
    if spec.min is not None and canary < spec.min:
        return True
    if baseline is None:
        return False
    if spec.max_increase is not None and canary - baseline > spec.max_increase:
        return True
    if spec.max_decrease is not None and baseline - canary > spec.max_decrease:
        return True
    if baseline > 0:
        if spec.max_ratio is not None and canary / baseline > spec.max_ratio:
            return True
        if spec.min_ratio is not None and canary / baseline < spec.min_ratio:
            return True
    return False


def _points(pairs: Sequence[MetricPair]) -> tuple[Point, ...]:
    def usable(r: Any) -> float | None:
        return float(r.value) if r.usable else None

    return tuple(Point(p.canary.at, usable(p.canary), usable(p.baseline)) for p in pairs)


def _timing(
    records: Sequence[Record],
    timeline: Sequence[TimelineEntry],
    plan: ReleasePlan,
    series: Mapping[str, Sequence[MetricPair]],
) -> Timing:
    detect_rec: Record | None = None
    failing: tuple[GateValue, ...] = ()
    for rec in records:
        failing = tuple(g for g in gate_values(rec.get("data")) if g.verdict == "fail")
        if failing and _ts(rec) is not None:
            detect_rec = rec
            break
    rollback = next((e for e in timeline if e.intent == "rollback"), None)
    verified = next((e for e in timeline if e.intent in ROLLBACK_INTENTS and _verified(e)),
                    None)
    rollback_at = rollback.at if rollback else None
    verified_at = verified.done_at if verified else None
    if detect_rec is None:
        return Timing(rollback_at=rollback_at, rollback_verified_at=verified_at)

    recorded = _ts(detect_rec) or 0.0
    # The record is written when the gate trips, after `failure_limit` failing polls: the
    # first of them came (failures - 1) poll intervals earlier.
    polls = max(g.consecutive_failures for g in failing)
    step_start = max((e.done_at for e in timeline
                      if e.intent in ("advance", "promote") and _verified(e)
                      and e.done_at is not None and e.done_at <= recorded), default=None)
    detected = recorded - max(0, polls - 1) * plan.poll_interval
    if step_start is not None:
        detected = max(detected, step_start)

    fault_at, basis = None, ""
    specs = {g.metric: g for g in plan.gates}
    if step_start is not None:
        for g in failing:
            spec = specs.get(g.gate)
            for p in _points(series.get(g.gate, ())):
                if spec is None or not step_start <= p.at <= detected:
                    continue
                if _breaches(spec, p.canary, p.baseline) and (fault_at is None or p.at < fault_at):
                    fault_at, basis = p.at, f"first bad value of {g.gate} in the metric series"
                    break
        if fault_at is None:
            step = next((e for e in timeline if e.done_at == step_start), None)
            where = f"step {step.step_after} ({step.weight_after}%)" if step else "the step"
            fault_at, basis = step_start, f"start of {where}: no series shows it earlier"
    return Timing(
        fault_at=fault_at,
        fault_basis=basis,
        detected_at=detected,
        detected_gates=tuple(g.gate for g in failing),
        rollback_at=rollback_at,
        rollback_verified_at=verified_at,
        fault_to_detection=detected - fault_at if fault_at is not None else None,
        detection_to_rollback_verified=(verified_at - detected
                                        if verified_at is not None else None),
    )


def gate_text(g: GateValue) -> str:
    """'error_rate fail: canary 5.09 %, baseline 0.24 % (limit ≤1 % Δ≤0.5 %)'."""
    parts = [f"{g.gate} {g.verdict}"]
    shown = [f"{k} {value(v, g.unit)}"
             for k, v in (("canary", g.canary), ("baseline", g.baseline))]
    parts.append(": " + ", ".join(shown))
    if g.threshold:
        parts.append(f" (limit {g.threshold})")
    return "".join(parts)


def _review(
    plan: ReleasePlan,
    baseline_version: str,
    timeline: Sequence[TimelineEntry],
    flags: Sequence[FlagChange],
    timing: Timing,
    decisions: Sequence[Decision],
    dashboards: Sequence[tuple[str, str]],
    migrations: Sequence[dict[str, Any]] = (),
) -> IncidentReview | None:
    rollbacks = [e for e in timeline if e.intent in ROLLBACK_INTENTS]
    if not rollbacks:
        return None
    first = rollbacks[0]
    done_ok = any(_verified(e) for e in rollbacks)
    seen: list[str] = []
    trip = next((d for d in decisions if d.intent == "rollback"), None)
    if trip is not None:
        seen += [gate_text(g) for g in trip.gates if g.verdict == "fail"]
        seen.append(f"the engine rolled back on its rules: {trip.reason}")
    else:
        seen.append(f"rolled back by {first.actor}: {first.reason or 'no reason given'}")
    when: list[tuple[str, float]] = []
    if timing.fault_at is not None:
        when.append((f"fault ({timing.fault_basis})", timing.fault_at))
    if timing.detected_at is not None:
        when.append((f"detected: first failing verdict of {', '.join(timing.detected_gates)}",
                     timing.detected_at))
    when.append((f"rollback asked for by {first.actor}", first.at))
    if timing.rollback_verified_at is not None:
        when.append(("rollback verified: canary at 0%", timing.rollback_verified_at))
    done = [f"{e.intent} at {e.weight_before}% by {e.actor}: {e.outcome}" for e in rollbacks]
    done += [f"{f.intent} {f.key} by {f.actor}: {f.outcome}" for f in flags
             if f.at >= first.at]
    check: list[str] = []
    if not done_ok:
        check.append("the rollback is NOT verified: check the traffic provider now and "
                     "finish it by hand (`relconsole rollback --reason …`)")
    for name in timing.detected_gates or tuple(g.metric for g in plan.gates):
        check.append(f"compare {name} of {plan.version} with {baseline_version or 'the baseline'}"
                     " around the fault time: which endpoints, which errors")
    if done_ok:
        check.append("confirm the baseline is healthy now that it takes all traffic")
    killed = [f.key for f in flags if f.intent == "flag.kill" and f.at >= first.at]
    if killed:
        check.append(f"release flags turned off ({', '.join(killed)}): restore them only "
                     "with the fix")
    if len([e for e in rollbacks if e.intent == "rollback.retry"]):
        check.append("the rollback needed retries: see why the traffic provider failed")
    downs = [m for m in migrations if m["direction"] == "up" and m["phase"] == "expand"
             and m["outcome"].startswith("verified")]
    undone = {m["name"] for m in migrations if m["direction"] == "down"
              and m["outcome"].startswith("verified")}
    downs = [m for m in downs if m["name"] not in undone]
    if downs:
        check.extend(f"migration {m['name']} ran and stays: `relconsole migrate down "
                     f"{m['name']} --reason …` would undo it, but a forward fix is usually "
                     "safer" for m in reversed(downs))
    else:
        check.append("no migrations to reverse")
    check += [f"{what} dashboard: {address}" for what, address in dashboards]
    check.append("find and fix the cause before `relconsole run --again --reason …`")
    return IncidentReview(done_ok, tuple(seen), tuple(when), tuple(done), tuple(check))


def _migrations(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Each migration that ran (its intent with its outcome), from the whole journal: a
    schema change outlives the attempt that made it."""
    out = []
    for rec, end in _pairs(records):
        if rec.get("intent") not in MIGRATION_INTENTS:
            continue
        data = _view(rec, "data")
        direction = str(rec.get("intent")).rpartition(".")[2]
        name, phase = str(data.get("migration", "?")), str(data.get("phase", "?"))
        command = [str(a) for a in data.get("command") or ()]
        outcome = str(end.get("outcome")) if end is not None else "no outcome recorded"
        actor = actor_text(rec.get("actor"))
        out.append({
            "at": _ts(rec) or 0.0, "name": name, "phase": phase, "direction": direction,
            "command": command, "actor": actor, "reason": str(rec.get("reason") or ""),
            "outcome": outcome,
            "text": f"{direction} {name} ({phase}) by {actor}: {' '.join(command)} → {outcome}",
        })
    return out


def chart_metrics(plan: ReleasePlan) -> list[tuple[str, str]]:
    """(metric, title): the error rate and the latency, gated ones first."""
    gated = [g.metric for g in plan.gates]
    names = sorted((m.name for m in plan.metrics),
                   key=lambda n: (n not in gated, -int(n.endswith("p99"))))
    picked: list[tuple[str, str]] = []
    for unit, title in ((RATIO, "error rate"), (SECONDS, "latency")):
        name = next((n for n in names if unit_of(plan.metrics, n) == unit), None)
        if name is not None:
            picked.append((name, f"{title} ({name})"))
    return picked


def build_report(
    records: Sequence[Record],
    plan: ReleasePlan,
    *,
    baseline_version: str = "",
    series: Mapping[str, Sequence[MetricPair]] | None = None,
    series_note: str = "",
    dashboards: Sequence[tuple[str, str]] = (),
) -> Report:
    """The report of the current attempt of the release these records belong to."""
    attempt = list(current_attempt(list(records)))
    notes: list[str] = []
    if len(attempt) < len(records):
        notes.append(f"this is the latest attempt; the journal holds "
                     f"{len(records) - len(attempt)} records of earlier ones")
    timeline = [_entry(rec, end) for rec, end in _pairs(attempt)]
    decisions = []
    for (rec, end), entry in zip(_pairs(attempt), timeline, strict=True):
        if entry.automatic and entry.intent not in ("provider",):
            decisions.append(Decision(
                at=entry.at, intent=entry.intent, reason=entry.reason,
                on_behalf_of=str(_view(rec, "actor").get("on_behalf_of", "")),
                outcome=entry.outcome,
                gates=gate_values(rec.get("data")) or gate_values((end or {}).get("data")),
            ))
    flags = []
    for rec, end in _pairs(attempt):
        if rec.get("intent") not in FLAG_INTENTS:
            continue
        flags.append(FlagChange(
            at=_ts(rec) or 0.0,
            key=str(_view(rec, "before").get("flag") or _view(rec, "data").get("flag") or "?"),
            intent=str(rec.get("intent")), actor=actor_text(rec.get("actor")),
            reason=str(rec.get("reason") or ""), before=dict(_view(rec, "before")),
            after=dict(_view(end, "after")),
            outcome=str(end.get("outcome")) if end is not None else "no outcome recorded",
        ))
    migrations = _migrations(records)
    series = series or {}
    timing = _timing(attempt, timeline, plan, series)
    phase = None
    for rec in attempt:
        phase = _view(rec, "after").get("phase", phase)
    stamps = [t for t in map(_ts, attempt) if t is not None]
    charts = []
    if series:
        limits = {g.metric: g.max for g in plan.gates if g.max is not None}
        for name, title in chart_metrics(plan):
            if name in series:
                charts.append(Chart(name, title, unit_of(plan.metrics, name),
                                    _points(series[name]), limits.get(name)))
    if series_note:
        notes.append(series_note)
    return Report(
        schema=SCHEMA,
        release=plan.release_id,
        service=plan.service,
        version=plan.version,
        baseline_version=baseline_version,
        environment=plan.environment,
        outcome=OUTCOMES.get(str(phase), str(phase)) if phase else "not started",
        started=min(stamps) if stamps else None,
        ended=max(stamps) if stamps else None,
        records=len(attempt),
        timeline=tuple(timeline),
        verdict_changes=tuple(_verdict_changes(attempt)),
        decisions=tuple(decisions),
        flags=tuple(flags),
        migrations=tuple(migrations),
        timing=timing,
        incident_review=_review(plan, baseline_version, timeline, flags, timing, decisions,
                                dashboards, migrations),
        marks=tuple(_marks(timeline)),
        charts=tuple(charts),
        dashboards=tuple(dashboards),
        notes=tuple(notes),
    )


def window(records: Sequence[Record], poll_interval: float) -> tuple[float, float] | None:
    """The span a chart covers: the current attempt, with a poll to spare at the end."""
    stamps = [t for t in map(_ts, current_attempt(list(records))) if t is not None]
    if not stamps:
        return None
    return min(stamps), max(stamps) + 2 * poll_interval
