"""The release's risk level, derived and explained: one line per factor.

Four factors, each Low, Medium or High with the reason in words; the release's level is
the highest of them, so the line that sets it is always there to read:

- scope: what the release changes besides its code (`release.changes`): a breaking API
  change is High; infrastructure changes or dependencies that must already be deployed
  are Medium.
- blast radius: who is exposed at the first step: its weight of production traffic
  (and how many requests per second that is, where the metrics can say); outside
  production it is Low.
- reversibility: how fast traffic goes back (`rollback_estimate`, from the traffic
  provider's own settings); infrastructure changes a traffic rollback does not undo.
- timing: the deployment window (open, or closed until when), current traffic against
  its usual peak (from Prometheus, when it can say), and on-call coverage (an owner
  with a pager).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from relconsole.durations import DurationError, parse_duration
from relconsole.model import ReleasePlan
from relconsole.plan.facts import LiveFacts
from relconsole.providers.base import ProviderError


class Level(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def word(self) -> str:
        return self.name.capitalize()


@dataclass(frozen=True)
class Factor:
    name: str  # Scope, Blast radius, Reversibility, Timing
    level: Level
    text: str

    def line(self) -> str:
        return f"{self.name}: {self.level.word} — {self.text}"


@dataclass(frozen=True)
class Rollback:
    """How traffic goes back, from the traffic provider's settings."""

    text: str  # "seconds: one HAProxy runtime-API command, read back (≤2s a call)"
    level: Level  # Low: instant or seconds; Medium: bounded by a timeout of the tool's


@dataclass(frozen=True)
class Risk:
    level: Level
    rollback_time: str
    blast_radius: str
    factors: tuple[Factor, ...]


def span(seconds: float) -> str:
    """A duration as a person writes it: '30s', '2m', '1h30m', '0s'."""
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs else "")


def rate(value: float) -> str:
    return f"{value:.3g} req/s" if value < 1000 else f"{value:,.0f} req/s"


def _seconds(raw: Any, default: float) -> float:
    if raw is None:
        return default
    try:
        return parse_duration(raw)
    except DurationError:
        return default


def _rolling_estimate(plan: ReleasePlan, traffic: dict[str, Any]) -> str:
    """A rolling rollback deploys every done batch again: as long as rolling forward."""
    from relconsole.clock import SystemClock
    from relconsole.providers import registry
    from relconsole.providers.base import BuildContext

    provider = registry.build_traffic(traffic, BuildContext(plan=plan, clock=SystemClock()))
    bound = float(getattr(provider, "action_timeout", plan.call_timeout))
    return (f"up to {span(bound)}: each batch already done is deployed again with "
            f"{plan.baseline_version or 'the old version'}, newest first — drained, deployed, "
            "health-checked and back in rotation, as slow as rolling forward")


def rollback_estimate(plan: ReleasePlan, traffic: dict[str, Any]) -> Rollback:
    """How long traffic takes to go back, as the traffic provider's own settings say."""
    kind = str(traffic.get("type", ""))
    timeout = plan.call_timeout
    try:
        if kind == "sim":
            text, level = "instant (the simulator moves traffic at once)", Level.LOW
        elif plan.strategy == "rolling":
            text, level = _rolling_estimate(plan, traffic), Level.MEDIUM
        elif kind == "haproxy":
            from relconsole.providers.haproxy import parse_settings as haproxy_settings

            hs = haproxy_settings(traffic, strategy=plan.strategy, call_timeout=timeout)
            text = (f"seconds: one HAProxy runtime-API command, then read back (each call "
                    f"≤{hs.timeout:g}s)")
            if hs.blue_green:
                text += f"; the losing side drains for up to {hs.drain_timeout:g}s"
            level = Level.LOW
        elif kind == "argo-rollouts":
            from relconsole.providers.argo.provider import parse_settings as argo_settings

            a = argo_settings(traffic, call_timeout=timeout)
            text = (f"up to {span(a.verify_timeout)}: an Argo Rollouts abort, verified once "
                    f"the controller has set and applied weight 0 (verify_timeout)")
            level = Level.MEDIUM
        elif kind == "command":
            from relconsole.providers.command import parse_settings as command_settings

            c = command_settings(traffic, call_timeout=timeout)
            hook = "rollback" if "rollback" in c.hooks else "set_weight 0"
            text = (f"up to {span(c.timeout)}: the command provider's {hook} hook, within "
                    f"its timeout, then read back with its status hook")
            level = Level.MEDIUM
        else:
            text = (f"unknown: the {kind or '?'} adapter does not say; bounded by "
                    f"release.call_timeout ({span(timeout)}) a try")
            level = Level.MEDIUM
    except ProviderError as exc:
        text, level = f"unknown ({exc})", Level.MEDIUM
    if plan.kill_flags_on_rollback and plan.release_flags:
        text = (f"instant for the flagged code (the release's flags are killed first: "
                f"{', '.join(plan.release_flags)}); traffic: {text}")
    return Rollback(text, level)


def weights(plan: ReleasePlan, facts: LiveFacts) -> list[int]:
    """The canary's weight at each step: the config's, or the Rollout's own."""
    if plan.steps:
        return [s.weight for s in plan.steps]
    c = facts.controller
    if c is None:
        return []
    out: list[int] = []
    for step in c.plan:
        if step.weight and (not out or step.weight != out[-1]):
            out.append(step.weight)
    if out and out[-1] != 100:
        out.append(100)  # a Rollout's last step is full promotion, whether written or not
    return out


def blast_radius(plan: ReleasePlan, facts: LiveFacts) -> tuple[Factor, str]:
    """The factor, and the line 'who and how much is exposed at each step'."""
    shares = weights(plan, facts)
    who = "production traffic" if plan.production else f"{plan.environment} traffic"
    now = facts.traffic_now
    if not shares:
        why = facts.controller_why or "the Rollout was not read"
        line = f"unknown: the steps are the Rollout's own ({why})"
        return Factor("Blast radius", Level.MEDIUM, line), line
    parts = []
    for w in shares:
        part = f"{w} %"
        if now is not None:
            part += f" (≈{rate(now * w / 100)})"
        parts.append(part)
    line = f"{' → '.join(parts)} of {who}"
    line += f", at {rate(now)} now" if now is not None else (
        f"; requests per second unknown ({facts.traffic_why})")
    breaking = plan.changes.breaking
    if breaking:
        line += (f"; dependents: every consumer of {', '.join(c.name for c in breaking)} "
                 "meets the breaking change from the first step")
    first = shares[0]
    if not plan.production:
        level, why = Level.LOW, f"{plan.environment} is not production"
    elif first <= 5:
        level, why = Level.LOW, f"the first step exposes {first} % of production traffic"
    elif first <= 25:
        level, why = Level.MEDIUM, f"the first step exposes {first} % of production traffic"
    else:
        level, why = Level.HIGH, f"the first step exposes {first} % of production traffic"
    if now is not None:
        why += f" (≈{rate(now * first / 100)} of {rate(now)})"
    if breaking:
        why += "; consumers of the breaking API change are exposed from it"
    return Factor("Blast radius", level, why), line


def scope(plan: ReleasePlan) -> Factor:
    changes = plan.changes
    breaking = changes.breaking
    said: list[str] = []
    level = Level.LOW
    if breaking:
        level = Level.HIGH
        said.append("breaking API change" + ("s" if len(breaking) > 1 else "") + ": "
                    + ", ".join(c.name for c in breaking))
    other = [c.name for c in changes.api if not c.breaking]
    if other:
        said.append(f"{len(other)} compatible API change{'s' if len(other) > 1 else ''}")
    if changes.infrastructure:
        level = max(level, Level.MEDIUM)
        said.append("infrastructure: " + "; ".join(changes.infrastructure))
    if changes.dependencies:
        level = max(level, Level.MEDIUM)
        said.append("needs already deployed: " + ", ".join(
            d.name + (f" {d.version}" if d.version else "") for d in changes.dependencies))
    expand = [m.name for m in plan.migrations if m.phase == "expand"]
    contract = [m.name for m in plan.migrations if m.phase == "contract"]
    if expand:
        level = max(level, Level.MEDIUM)
        said.append("schema expanded before the first step: " + ", ".join(expand))
    if contract:
        # A contract migration cannot be undone by a traffic rollback.
        level = Level.HIGH
        said.append("schema contracted after promotion (irreversible): " + ", ".join(contract))
    if not said:
        return Factor("Scope", Level.LOW,
                      "code only: no API, infrastructure, dependency or schema changes "
                      "listed (release.changes, release.migrations)")
    return Factor("Scope", level, "; ".join(said))


def reversibility(plan: ReleasePlan, back: Rollback) -> Factor:
    level = back.level
    text = f"traffic goes back: {back.text}" if back.level is Level.LOW else (
        f"rollback is not instant: {back.text}")
    if plan.changes.infrastructure:
        level = max(level, Level.MEDIUM)
        text += ("; a traffic rollback does not undo the infrastructure changes ("
                 + "; ".join(plan.changes.infrastructure) + ")")
    if plan.changes.breaking:
        text += "; clients that adopted the breaking API change break again on rollback"
        level = max(level, Level.MEDIUM)
    return Factor("Reversibility", level, text)


def timing(plan: ReleasePlan, facts: LiveFacts, now: float | None = None) -> Factor:
    level = Level.LOW
    schedule = plan.schedule
    if not schedule.configured:
        parts = ["no deployment window configured"]
    else:
        closed = schedule.closed(time.time() if now is None else now)
        if closed is None:
            parts = [f"inside its deployment window ({schedule.describe()})"]
        else:
            parts = [f"{closed} (it will not start before then without --override-window)"]
            level = Level.HIGH
    now, peak = facts.traffic_now, facts.traffic_peak
    if now is not None and peak is not None and peak > 0:
        share = now / peak
        parts.append(f"traffic {rate(now)} is {share:.0%} of its usual peak "
                     f"{rate(peak)} (highest hour of the last 7 days)")
        if share >= 0.8:
            level = max(level, Level.HIGH)
            parts[-1] += ": near its peak"
        elif share >= 0.5:
            level = max(level, Level.MEDIUM)
    else:
        why = facts.peak_why if peak is None else facts.traffic_why
        parts.append(f"traffic against its usual peak: unknown ({why or 'no data'})")
    paged = [o for o in plan.owners if o.pager]
    if paged:
        parts.append("on call: " + ", ".join(f"{o.name} (pager {o.pager})" for o in paged))
    elif plan.owners:
        level = max(level, Level.MEDIUM)
        parts.append("no owner has a pager: nobody is paged if it goes wrong")
    else:
        level = max(level, Level.MEDIUM)
        parts.append("no owners listed (release.owners): nobody is named to answer")
    return Factor("Timing", level, "; ".join(parts))


def assess(plan: ReleasePlan, traffic: dict[str, Any], facts: LiveFacts) -> Risk:
    """The risk level and its factors; the level is the highest factor's."""
    back = rollback_estimate(plan, traffic)
    blast, exposure = blast_radius(plan, facts)
    factors = (scope(plan), blast, reversibility(plan, back), timing(plan, facts))
    return Risk(max(f.level for f in factors), back.text, exposure, factors)
