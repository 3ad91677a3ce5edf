"""The deployment plan as typed values, built from the config and the live facts with no
I/O of its own: the Markdown and the JSON are both written from one `Plan`, so they
cannot say different things.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from relconsole import units
from relconsole.model import ControllerStep, GateSpec, ReleasePlan, Step
from relconsole.placeholders import dashboards
from relconsole.plan.facts import LiveFacts
from relconsole.plan.risk import Risk, assess, rate, span

# The checks `relconsole check --preflight` runs, by the names its lines carry; the
# checklist lists the same ones, so a plan's reader knows what the command will say.
BASELINE = "baseline healthy"
CANARY = "canary up"
FLAGS = "flags exist"
CAPACITY = "capacity"
WINDOW = "window"
NO_WINDOW = "no deployment window configured"


@dataclass(frozen=True)
class StepLine:
    number: int
    text: str  # what happens: weight, bake, expected duration and clock time
    checkpoint: str  # the validation checkpoint after it: which gates, which thresholds
    weight: int | None = None
    bake: float | None = None
    starts_in: float | None = None  # seconds from now (None: it waits for a person)
    ends_in: float | None = None


@dataclass(frozen=True)
class FlagLine:
    key: str
    kind: str  # release, kill-switch, … ('' when the provider does not know the flag)
    state: str  # "on, 25 %", "killed", "not found in sim"
    planned: str  # what the release does with it


@dataclass(frozen=True)
class Plan:
    service: str
    version: str
    environment: str
    strategy: str
    generated_at: str  # HH:MM:SS, the time the clock times count from
    risk: Risk
    checklist: tuple[str, ...]
    steps: tuple[StepLine, ...]
    steps_note: str  # "" or why the steps are not listed ("from the Rollout (not reachable …)")
    triggers: tuple[str, ...]
    rollback: tuple[str, ...]
    dashboards: tuple[str, ...]
    key_metrics: tuple[str, ...]
    alerts: tuple[str, ...]
    flags: tuple[FlagLine, ...]
    communication: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["risk"] = {
            "level": self.risk.level.word,
            "rollback_time": self.risk.rollback_time,
            "blast_radius": self.risk.blast_radius,
            "factors": [{"name": f.name, "level": f.level.word, "text": f.text}
                        for f in self.risk.factors],
        }
        return out


def _clock(at: float) -> str:
    return time.strftime("%H:%M", time.localtime(at))


def gate_text(plan: ReleasePlan, gate: GateSpec) -> str:
    """'error_rate ≤1 % Δ≤0.5 %' — a gate and its limits in its metric's unit."""
    if gate.is_health:
        return f"{gate.metric} {gate.describe()}"
    return f"{gate.metric} {units.threshold(gate, units.unit_of(plan.metrics, gate.metric))}"


def _polls(n: int) -> str:
    return "1 failing poll" if n == 1 else f"{n} failing polls in a row"


def _checkpoint(plan: ReleasePlan) -> str:
    if not plan.gates:
        return "no gates: the step only bakes (add gates: to judge the canary)"
    gates = "; ".join(gate_text(plan, g) for g in plan.gates)
    counted = [m.name for m in plan.metrics if m.counts is not None
               and any(g.metric == m.name for g in plan.gates)]
    tail = " (judged on counts: " + ", ".join(counted) + ")" if counted else ""
    return f"every gate must PASS — {gates}{tail}"


def step_what(plan: ReleasePlan, step: Step) -> str:
    """What a step does, in its strategy's words ("canary at 10 %", "cohort beta-users
    (header X-User-Group = beta) to the canary", "mirror 20 % …", "batch 2 …")."""
    label = step.label
    if label == "switch":
        return ("switch: all traffic to green, blue drains and stays ready for a switch "
                "back; the gates judge green against blue's last readings")
    if label == "done":
        return "green keeps all traffic — the release is promoted"
    if label.startswith("batch "):
        total = len(plan.steps)
        return (f"{label} of {total}: its servers drained, deployed, health-checked and back "
                f"in rotation ({step.weight} % of servers then on {plan.version})")
    if label.startswith("cohort "):
        cohort = plan.cohort(label.removeprefix("cohort "))
        who = f" ({cohort.describe()})" if cohort is not None else ""
        return f"{label}{who} to the canary, whatever the weight"
    if label.startswith("mirror "):
        return (f"{label} of live requests copied to the canary, its answers dropped "
                "(no user sees it)")
    extra = step.route.text()
    return f"canary at {step.weight} %" + (f" (and {extra})" if extra else "")


def _steps(plan: ReleasePlan, facts: LiveFacts, now: float) -> tuple[tuple[StepLine, ...], str]:
    if not plan.steps:
        return _rollout_steps(plan, facts)
    lines = []
    at = 0.0
    waits = not plan.auto_advance
    check = _checkpoint(plan)
    for i, step in enumerate(plan.steps):
        number = i + 1
        last = i == len(plan.steps) - 1
        start = at
        end = at + step.bake
        when = f"{_clock(now + start)}" + (f"–{_clock(now + end)}" if step.bake else "")
        if last and step.weight == 100:
            text = (f"Step {number}: canary at 100 % — the release is promoted "
                    f"(about {when}{', after an operator advances' if waits else ''})")
            checkpoint = ("Validation checkpoint at 100 %: promoted once it holds; keep "
                          "watching the gates under Monitoring")
            if step.bake:
                text = (f"Step {number}: canary at 100 %, bake {span(step.bake)} — expected "
                        f"{span(step.bake)}, {when}; then promoted")
                checkpoint = f"Validation checkpoint before promotion: {check}"
        else:
            text = (f"Step {number}: {step_what(plan, step)}, bake {span(step.bake)} — "
                    f"expected {span(step.bake)}, {when}")
            after = ("; then an operator advances (auto_advance: false)" if waits
                     else "; then it advances by itself on passing gates")
            text += after
            checkpoint = f"Validation checkpoint after step {number}: {check}"
        lines.append(StepLine(number, text, checkpoint, step.weight, step.bake, start, end))
        at = end
    note = ("clock times count from now and assume each step advances as soon as its bake "
            "is over" + ("; an operator's advance adds to them" if waits else ""))
    return tuple(lines), note


def _rollout_step(number: int, step: ControllerStep, check: str) -> StepLine:
    if step.pause is not None:
        text = f"Rollout step {number}: {step.text} — expected {span(step.pause)}"
    elif step.waits:
        text = f"Rollout step {number}: {step.text} — waits for a promote (`a`)"
    else:
        text = f"Rollout step {number}: {step.text} (canary at {step.weight} %)"
    return StepLine(number, text, f"Validation checkpoint after Rollout step {number}: "
                                  f"{check}", step.weight, step.pause)


def _rollout_steps(plan: ReleasePlan, facts: LiveFacts) -> tuple[tuple[StepLine, ...], str]:
    c = facts.controller
    if c is None:
        return (), f"steps: from the Rollout (not reachable: {facts.controller_why or '?'})"
    check = _checkpoint(plan) if plan.gates else (
        "no gates of relconsole's: only the Rollout's own analysis, if it has one, judges it")
    lines = tuple(_rollout_step(i + 1, s, check) for i, s in enumerate(c.plan))
    return lines, f"steps: from {c.resource} (the Rollout owns its plan)"


def window_line(plan: ReleasePlan, now: float) -> tuple[bool, str]:
    """(open now?, what the schedule says) for the checklist and the preflight."""
    schedule = plan.schedule
    if not schedule.configured:
        return True, NO_WINDOW
    closed = schedule.closed(now)
    if closed is None:
        return True, f"open now ({schedule.describe()})"
    return False, closed


def _checklist(plan: ReleasePlan, now: float) -> tuple[str, ...]:
    absolute = [g for g in plan.gates if not g.is_health and (g.max is not None
                                                               or g.min is not None)]
    items = []
    if absolute:
        limits = "; ".join(gate_text(plan, GateSpec(g.metric, max=g.max, min=g.min))
                           for g in absolute)
        items.append(f"{BASELINE.capitalize()}: the stable version "
                     f"{plan.baseline_version or '(versions.baseline)'} holds {limits}")
    else:
        items.append(f"{BASELINE.capitalize()}: no gate has an absolute limit (max, min) "
                     "to hold it to")
    items.append(f"{CANARY.capitalize()}: {plan.canary} is deployed and its instances are up")
    if plan.release_flags:
        items.append(f"{FLAGS.capitalize()}: {', '.join(plan.release_flags)}")
    else:
        items.append(f"{FLAGS.capitalize()}: no release flags listed (release.flags)")
    for dep in plan.changes.dependencies:
        items.append(f"Dependency {dep.name}"
                     + (f" {dep.version}" if dep.version else "")
                     + f" is deployed and healthy: {dep.probe}")
    items.append(f"{CAPACITY.capitalize()}: every stable server is up, to take all traffic "
                 "back on rollback")
    items.extend(migration_lines(plan))
    paged = [o for o in plan.owners if o.pager]
    if paged:
        items.append("Owners on call: " + ", ".join(f"{o.name} ({o.reach()})" for o in paged))
    elif plan.owners:
        items.append("Owners on call: none of " + ", ".join(o.name for o in plan.owners)
                     + " has a pager — agree who answers")
    else:
        items.append("Owners on call: no owners listed (release.owners) — name who answers")
    items.append(f"{WINDOW.capitalize()}: {window_line(plan, now)[1]}")
    items.append("Run `relconsole check --preflight` — it checks each of the above but the "
                 "owners")
    return tuple(items)


def migration_lines(plan: ReleasePlan) -> list[str]:
    """Each migration and when it runs (the checklist's lines)."""
    out = []
    for m in plan.migrations:
        if m.expand:
            out.append(f"Migration {m.name} (expand): `{' '.join(m.up)}` runs before the first "
                       f"traffic step, verified by `{' '.join(m.check)}`; a failure pauses the "
                       "release with no traffic moved")
        else:
            out.append(f"Migration {m.name} (contract): `{' '.join(m.up)}` runs "
                       f"{span(plan.contract_after)} after promotion, verified by "
                       f"`{' '.join(m.check)}`; no rollback after it")
    return out


def _triggers(plan: ReleasePlan, traffic_type: str) -> tuple[str, ...]:
    who = ("the engine rolls back by itself (auto_rollback)" if plan.auto_rollback
           else "an operator rolls back (`r`, or `relconsole rollback --reason`)")
    out = []
    for g in plan.gates:
        if g.is_health:
            continue
        out.append(f"{gate_text(plan, g)} broken on {_polls(g.failure_limit)}: {who}")
    health = [g for g in plan.gates if g.is_health]
    for g in health:
        out.append(f"instance health: {gate_text(plan, g)} broken on "
                   f"{_polls(g.failure_limit)}: {who}")
    if not health:
        out.append(f"instance health: canary instances that {traffic_type} reports down — no "
                   "health gate, so an operator decides (add {health: canary, min_up: …} to "
                   "roll back on it)")
    limits = sorted({g.inconclusive_limit for g in plan.gates})
    if limits:
        out.append(f"missing, stale or errored data for {'/'.join(map(str, limits))} polls "
                   "pauses the release and says why (no data is never good data)")
    return tuple(out)


def _undo(plan: ReleasePlan, traffic_type: str) -> str:
    """How the traffic half of a rollback goes, in the strategy's words."""
    if plan.strategy == "rolling":
        return (f"Deploy {plan.baseline_version or 'the old version'} again on the batches "
                f"already done, newest first, through {traffic_type}: each drained, deployed, "
                "health-checked and back in rotation; done once every server runs it")
    if plan.strategy == "blue-green":
        return (f"Switch all traffic back to blue through {traffic_type}, green drained; "
                "done once the weights and server states read back blue")
    undo = {"ab": "take the cohorts out of the routing, ",
            "shadow": "turn the mirror off, "}.get(plan.strategy, "")
    return (f"Send all traffic back to the stable version through {traffic_type} ({undo}"
            "weight 0), and read it back: the rollback is reported done only once it reads "
            "0 %" + (" with nothing routed" if undo else ""))


def _rollback(plan: ReleasePlan, traffic_type: str, config: str) -> tuple[str, ...]:
    out = []
    if plan.kill_flags_on_rollback and plan.release_flags:
        out.append("Kill the release's flags first (rollback.kill_flags): "
                   f"{', '.join(plan.release_flags)} — each read back to verify")
    out.append(_undo(plan, traffic_type))
    out.append(f"A rollback that fails is retried with backoff (at most "
               f"{span(plan.rollback_retry_max)} apart) until verified; headless and one-shot "
               f"commands give up after {span(plan.rollback_give_up)} and say so")
    downs = [m for m in plan.migrations if m.expand]
    if downs:
        out.append("Migrations are offered, never run: after the rollback, "
                   + "; ".join(f"`relconsole migrate down {m.name} --reason TEXT` would run "
                               f"`{' '.join(m.down)}`" for m in reversed(downs))
                   + " — a forward fix is usually safer")
    if plan.changes.infrastructure:
        out.append("Infrastructure changes stay as they are (undo by hand if needed): "
                   + "; ".join(plan.changes.infrastructure))
    out.append(f"By hand: `relconsole rollback -c {config} --reason TEXT` (or `r` in the "
               "console)")
    return tuple(out)


def _unit_words(unit: str) -> str:
    return {units.RATIO: "ratio, shown as %", units.SECONDS: "seconds, shown as ms"}.get(
        unit, unit or "no unit")


def _monitoring(plan: ReleasePlan, facts: LiveFacts) -> tuple[tuple[str, ...], tuple[str, ...],
                                                             tuple[str, ...]]:
    links = tuple(f"Dashboard ({what}): {url}" for what, url in dashboards(plan)) or (
        "No dashboards configured (release.dashboard, metrics.<name>.dashboard)",)
    metrics = [f"{m.name} ({_unit_words(units.unit_of(plan.metrics, m.name))}): "
               f"{m.judging()}" for m in plan.metrics]
    if facts.traffic_now is not None:
        metrics.append(f"traffic: {rate(facts.traffic_now)} now, both versions")
    if not metrics:
        metrics.append("no metrics configured (metrics:)")
    alerts = [f"{gate_text(plan, g)}: trips after {_polls(g.failure_limit)}"
              + (" and rolls back" if plan.auto_rollback else ", then an operator decides")
              for g in plan.gates] or ["no gates: nothing alerts (gates:)"]
    return links, tuple(metrics), tuple(alerts)


def _flags(plan: ReleasePlan, facts: LiveFacts, flags_type: str) -> tuple[FlagLine, ...]:
    on_rollback = ("killed first on rollback (rollback.kill_flags)"
                   if plan.kill_flags_on_rollback else
                   "left as it is on rollback (rollback.kill_flags is false)")
    known = {f.key: f for f in facts.flags or ()}
    out = []
    for key in plan.release_flags:
        flag = known.get(key)
        if flag is None:
            state = (f"not found in {flags_type}" if facts.flags is not None
                     else f"unknown ({facts.flags_why})")
            out.append(FlagLine(key, "", state, on_rollback))
            continue
        state = "killed" if flag.killed else "on"
        if flag.rollout is not None and not flag.killed:
            state += f", {flag.rollout} %"
        planned = (f"stays at {flag.rollout} % through the steps" if flag.rollout is not None
                   else "stays as it is through the steps")
        out.append(FlagLine(key, flag.kind.value, state,
                            f"{planned} (changed only by an operator: `%`, `k`); {on_rollback}"))
    return tuple(out)


def _communication(plan: ReleasePlan) -> tuple[str, ...]:
    def names(people: tuple[Any, ...]) -> str:
        return ", ".join(f"{p.name} ({p.reach()})" for p in people)

    owners, stakeholders = plan.owners, plan.stakeholders
    out = []
    everyone = names(owners + stakeholders)
    if everyone:
        out.append(f"Before the release: send this plan to {everyone}")
    if owners:
        out.append(f"At each step, and whenever it pauses: {names(owners)}")
        out.append("On a rollback, with its reason: "
                   + names(owners + stakeholders))
        paged = [o for o in owners if o.pager]
        if paged:
            out.append("If a rollback fails: page " + ", ".join(o.pager for o in paged))
    else:
        out.append("No owners listed (release.owners): nobody is named to tell at each step "
                   "or on a rollback")
    if plan.migrations:
        out.append("Each migration's outcome (up and check, or an operator's down) is "
                   "journalled and sent to the notify: targets, if any, as a `migration` "
                   "notice")
    if stakeholders:
        out.append(f"After promotion or rollback: {names(stakeholders)}")
    else:
        out.append("No stakeholders listed (release.stakeholders)")
    return tuple(out)


def build_plan(cfg: Any, facts: LiveFacts, now: float) -> Plan:
    """The plan for a loaded config (`LoadedConfig`), the facts read, from clock time `now`."""
    plan: ReleasePlan = cfg.plan
    traffic: dict[str, Any] = dict(cfg.providers.get("traffic", {}))
    traffic_type = str(traffic.get("type", "?"))
    flags_type = str(cfg.providers.get("flags", {}).get("type", "the flag provider"))
    steps, note = _steps(plan, facts, now)
    links, metrics, alerts = _monitoring(plan, facts)
    return Plan(
        service=plan.service,
        version=plan.version,
        environment=plan.environment,
        strategy=plan.strategy,
        generated_at=time.strftime("%H:%M:%S", time.localtime(now)),
        risk=assess(plan, traffic, facts),
        checklist=_checklist(plan, now),
        steps=steps,
        steps_note=note,
        triggers=_triggers(plan, traffic_type),
        rollback=_rollback(plan, traffic_type, str(cfg.path)),
        dashboards=links,
        key_metrics=metrics,
        alerts=alerts,
        flags=_flags(plan, facts, flags_type),
        communication=_communication(plan),
    )
