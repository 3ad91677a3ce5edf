"""`relconsole check --preflight`: is everything ready for this release, now?

One line per check, ✓ or ✗, and on ✗ what to do. The rules, as decided:

- baseline healthy: every gate's absolute limits (max, min) hold for the stable
  version's value now. No value is a ✗ (no data is never good data); a metric that only
  measures the canary (imported from an Argo AnalysisTemplate) is named and left out.
- canary up: the traffic provider reports the canary's servers and they are up — all
  of them, or as many as the release's health gate asks (min_up). A provider that
  reports no servers is a ✗ "cannot tell": a preflight that passes must mean the canary
  was seen up, not that nobody looked.
- flags exist: every key in release.flags is in the flag provider.
- dependency NAME: its probe answers — an HTTP GET with a 2xx status within
  release.call_timeout (and, with a version, an answer naming it), or a PromQL expression
  with a non-empty, non-zero result.
- capacity: every stable server is up. On rollback the stable side takes all traffic
  back; with a server down it would take more than it did before the release began.
  Cannot tell (no servers reported) is a ✗, as for the canary.
- window: no deployment window can be configured yet; the line says so and passes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from relconsole import units
from relconsole.model import (
    Dependency,
    GateSpec,
    MetricSpec,
    ReleasePlan,
    Role,
    ServerHealth,
    TrafficState,
)
from relconsole.plan.model import BASELINE, CANARY, CAPACITY, FLAGS, WINDOW, window_line

if TYPE_CHECKING:
    from relconsole.assembly import Providers
    from relconsole.config import LoadedConfig

T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    todo: str = ""  # what to do about a ✗

    def line(self) -> str:
        text = f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"
        return f"{text} — {self.todo}" if not self.ok and self.todo else text


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


async def _timed(call: Awaitable[T], timeout: float) -> T:
    return await asyncio.wait_for(call, timeout)


def _breach(gate: GateSpec, value: float, unit: str) -> str:
    if gate.max is not None and value > gate.max:
        return f"{units.value(value, unit)} is above its limit {units.limit(gate.max, unit)}"
    if gate.min is not None and value < gate.min:
        return f"{units.value(value, unit)} is below its limit {units.limit(gate.min, unit)}"
    return ""


async def baseline(plan: ReleasePlan, providers: Providers) -> Check:
    gates = [g for g in plan.gates if not g.is_health and (g.max is not None
                                                           or g.min is not None)]
    alone = {m.name for m in plan.metrics if m.canary_only}
    judged = [g for g in gates if g.metric not in alone]
    skipped = sorted({g.metric for g in gates if g.metric in alone})
    note = (f" ({', '.join(skipped)} measures the canary only: not checked)" if skipped
            else "")
    if not judged:
        return Check(BASELINE, True, "no gate has an absolute limit (max, min) to hold the "
                                     "baseline to" + note)
    if providers.metrics is None:  # the config refuses gates without metrics; belt and braces
        return Check(BASELINE, False, "no metrics provider to read the baseline",
                     "add providers.metrics")
    wanted = [m for m in plan.metrics if m.name in {g.metric for g in judged}]
    try:
        pairs = await _timed(providers.metrics.sample(wanted), plan.call_timeout)
    except Exception as exc:
        return Check(BASELINE, False, f"metrics cannot be read: {_why(exc)}",
                     "`relconsole check` says what is wrong with the metrics provider")
    bad, good = [], []
    for gate in judged:
        unit = units.unit_of(plan.metrics, gate.metric)
        pair = pairs.get(gate.metric)
        reading = pair.baseline if pair is not None else None
        if reading is None or not reading.usable or reading.value is None:
            why = reading.problem if reading is not None else "no answer"
            bad.append(f"no value for the baseline's {gate.metric} ({why})")
            continue
        breach = _breach(gate, reading.value, unit)
        if breach:
            bad.append(f"{gate.metric} of the baseline {breach}")
        else:
            limits = GateSpec(gate.metric, max=gate.max, min=gate.min)
            good.append(f"{gate.metric} {units.value(reading.value, unit)} "
                        f"({units.threshold(limits, unit)})")
    version = plan.baseline_version or "(versions.baseline)"
    if bad:
        return Check(BASELINE, False, "; ".join(bad) + note,
                     f"the stable version {version} must hold its own gates before a canary "
                     "is judged against it: fix it (or the query, or versions.baseline) first")
    return Check(BASELINE, True, f"{version}: " + "; ".join(good) + note)


def _needed(plan: ReleasePlan, servers: int) -> tuple[int, str]:
    """How many canary servers must be up: the health gate's min_up, else all of them."""
    for gate in plan.gates:
        if gate.is_health and gate.min_up is not None:
            if gate.min_up_share:
                return math.ceil(gate.min_up * servers - 1e-9), f"min_up {gate.min_up:.0%}"
            return int(gate.min_up), f"min_up {gate.min_up:g}"
    return servers, "all of them"


def _down(group: list[ServerHealth]) -> str:
    return ", ".join(f"{s.name}{f' ({s.detail})' if s.detail else ''}"
                     for s in group if not s.up)


def canary(plan: ReleasePlan, kind: str, state: TrafficState | None, problem: str) -> Check:
    if state is None:
        return Check(CANARY, False, f"{kind} cannot be read: {problem}",
                     "`relconsole check` says what is wrong with the traffic provider")
    group = [s for s in state.servers if s.role is Role.CANARY]
    if not group:
        return Check(CANARY, False, f"cannot tell: {kind} reports no canary servers",
                     f"make sure {plan.canary} is deployed and up by other means, or have "
                     "the provider report its servers (the command provider's status hook: "
                     "servers[])")
    up = sum(s.up for s in group)
    needed, rule = _needed(plan, len(group))
    text = f"{plan.canary}: canary {up}/{len(group)} up (needs {rule})"
    if up >= needed and up > 0:
        return Check(CANARY, True, text)
    down = _down(group)
    return Check(CANARY, False, text + (f"; down: {down}" if down else ""),
                 f"deploy {plan.canary} and bring its instances up before the first step")


def capacity(kind: str, state: TrafficState | None, problem: str) -> Check:
    if state is None:
        return Check(CAPACITY, False, f"{kind} cannot be read: {problem}",
                     "`relconsole check` says what is wrong with the traffic provider")
    group = [s for s in state.servers if s.role is Role.BASELINE]
    if not group:
        return Check(CAPACITY, False, f"cannot tell: {kind} reports no stable servers",
                     "make sure the stable side can take all traffic back by other means")
    up = sum(s.up for s in group)
    text = f"stable {up}/{len(group)} up"
    if up == len(group):
        return Check(CAPACITY, True, text + ": all of them take the traffic back on rollback")
    return Check(CAPACITY, False, f"{text}; down: {_down(group)}",
                 "bring them up first: on rollback the stable side takes all traffic back, "
                 "with fewer servers than it had")


async def flags(plan: ReleasePlan, kind: str, providers: Providers) -> Check:
    if not plan.release_flags:
        return Check(FLAGS, True, "no release flags listed (release.flags)")
    if providers.flags is None:
        return Check(FLAGS, False, f"release.flags lists {', '.join(plan.release_flags)} "
                                   "but there is no flag provider", "add providers.flags")
    try:
        listed = await _timed(providers.flags.list_flags(), plan.call_timeout)
    except Exception as exc:
        return Check(FLAGS, False, f"{kind} cannot be read: {_why(exc)}",
                     "`relconsole check` says what is wrong with the flag provider")
    keys = {f.key for f in listed}
    missing = [k for k in plan.release_flags if k not in keys]
    if missing:
        return Check(FLAGS, False, f"not in {kind}: {', '.join(missing)}",
                     f"create them in {kind}, or take them out of release.flags")
    return Check(FLAGS, True, f"{len(plan.release_flags)} in {kind}: "
                              f"{', '.join(plan.release_flags)}")


async def _http(dep: Dependency, timeout: float) -> tuple[bool, str]:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(dep.http)
    except httpx.TimeoutException:
        return False, f"GET {dep.http}: no answer within {timeout:g}s"
    except httpx.HTTPError as exc:
        return False, f"GET {dep.http}: {_http_problem(exc)}"
    said = f"GET {dep.http}: {response.status_code}"
    if not response.is_success:
        return False, f"{said} (not 2xx)"
    if dep.version and dep.version not in response.text:
        return False, f"{said}, but the answer does not name version {dep.version}"
    return True, said + (f", version {dep.version}" if dep.version else "")


def _http_problem(exc: BaseException) -> str:
    # httpx says "All connection attempts failed"; the OS error under it says why.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        lowered = str(seen).lower()
        if "name or service not known" in lowered or "nodename nor servname" in lowered:
            return "unknown host"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


async def _promql(dep: Dependency, providers: Providers, timeout: float) -> tuple[bool, str]:
    if providers.metrics is None:
        return False, "no metrics provider to send the PromQL to"
    spec = MetricSpec(f"dependency {dep.name}", query=dep.query)
    try:
        pairs = await _timed(providers.metrics.sample([spec]), timeout)
    except Exception as exc:
        return False, f"PromQL {dep.query}: {_why(exc)}"
    reading = pairs[spec.name].canary
    if not reading.usable or reading.value is None:
        return False, f"PromQL {dep.query}: {reading.problem or 'no data'}"
    if reading.value == 0:
        return False, f"PromQL {dep.query} = 0"
    return True, f"PromQL {dep.query} = {reading.value:g}"


async def dependency(dep: Dependency, plan: ReleasePlan, providers: Providers) -> Check:
    name = f"dependency {dep.name}"
    if dep.http:
        ok, detail = await _http(dep, plan.call_timeout)
    else:
        ok, detail = await _promql(dep, providers, plan.call_timeout)
    return Check(name, ok, detail,
                 f"deploy {dep.name}{f' {dep.version}' if dep.version else ''} (or fix it) "
                 "before this release: it must already be running")


async def run_checks(cfg: LoadedConfig, providers: Providers) -> list[Check]:
    """Every preflight check, in the order the plan's checklist lists them."""
    plan = cfg.plan
    kind = {k: str(v.get("type", k)) for k, v in cfg.providers.items()}
    traffic_kind = kind.get("traffic", "traffic")
    state: TrafficState | None = None
    problem = ""
    try:
        state = await _timed(providers.traffic.read(), plan.call_timeout)
    except Exception as exc:
        problem = _why(exc)
    base, listed, *deps = await asyncio.gather(
        baseline(plan, providers),
        flags(plan, kind.get("flags", "the flag provider"), providers),
        *(dependency(dep, plan, providers) for dep in plan.changes.dependencies),
    )
    return [base, canary(plan, traffic_kind, state, problem), listed, *deps,
            capacity(traffic_kind, state, problem),
            window_check(plan, time.time())]


def window_check(plan: ReleasePlan, now: float) -> Check:
    ok, text = window_line(plan, now)
    if not ok:
        text += " — wait for it, or start with --override-window --reason TEXT (journalled)"
    return Check(WINDOW, ok, text)


async def preflight(cfg: LoadedConfig, providers: Providers) -> int:
    """Print one line per check; the number of checks that failed."""
    checks = await run_checks(cfg, providers)
    for check in checks:
        print(check.line())
    return sum(not c.ok for c in checks)
