"""Rules between fields, which pydantic cannot express one field at a time.

Each rule is a small function over the `Parts` it needs and returns every problem it
finds. `Parts` comes from a valid model, or (when collecting every problem of a file)
from whatever parts of an invalid file are valid on their own; a part that is not
valid is None and the rules about it are skipped, since the schema already said why.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from pydantic import ValidationError

from relconsole.config.counts import check_selector, judged_on
from relconsole.config.errors import ConfigError, KeyPath, by_line
from relconsole.config.queries import check_query
from relconsole.config.schema import (
    THRESHOLDS,
    ContactModel,
    DependencyModel,
    FlagsAuditModel,
    GateModel,
    MetricModel,
    MigrationModel,
    ReleaseModel,
    RootModel,
    StepModel,
    VersionsModel,
    valid_fields,
)
from relconsole.model import FlagKind
from relconsole.providers.strategies import STRATEGIES, providers_for
from relconsole.suggest import clip, did_you_mean

Fail = Callable[[KeyPath, str, str], ConfigError]


@dataclass(frozen=True)
class Parts:
    """What the rules look at; None (or left out) where that part is not valid."""

    steps: list[StepModel] | None = None
    steps_written: bool = True  # release.steps is in the file, valid or not
    traffic_type: str | None = None  # providers.traffic.type
    poll_interval: float | None = None
    stale_after: float | None = None
    gates: tuple[tuple[int, GateModel], ...] = ()  # (index in the file, gate)
    gates_written: bool = False  # even when some of them are not valid
    metric_names: tuple[str, ...] | None = None
    metrics_provider: bool | None = None  # is providers.metrics there
    flag_kinds: tuple[str, ...] = ()  # the keys of flags_audit.lifetime_days
    naming: str | None = None
    version: str | None = None  # release.version
    canary_version: str | None = None  # versions.canary, when written
    metrics_type: str | None = None  # providers.metrics.type
    queries: tuple[tuple[str, str], ...] = ()  # (metric name, query) of valid metrics
    metric_models: tuple[tuple[str, MetricModel], ...] = ()  # valid metrics, for counts:
    # (list name "owners"/"stakeholders", index, contact) of the valid contacts
    contacts: tuple[tuple[str, int, ContactModel], ...] = ()
    dependencies: tuple[tuple[int, DependencyModel], ...] = ()  # valid ones, with their index
    migrations: tuple[tuple[int, MigrationModel], ...] = ()  # valid ones, with their index
    strategy: str | None = None  # release.strategy, when valid
    cohorts: tuple[str, ...] | None = None  # the names of release.cohorts, when valid
    cohorts_written: bool = False
    rolling_written: bool = False  # release.rolling is in the file
    baseline_version: str | None = None  # versions.baseline

    @classmethod
    def of_model(cls, model: RootModel) -> Parts:
        release = model.release
        return cls(
            steps=release.steps,
            steps_written=release.steps is not None,
            traffic_type=model.providers.traffic.type if model.providers.traffic else None,
            poll_interval=release.poll_interval,
            stale_after=release.stale_after,
            gates=tuple(enumerate(model.gates)),
            gates_written=bool(model.gates),
            metric_names=tuple(model.metrics),
            metrics_provider=model.providers.metrics is not None,
            flag_kinds=tuple(model.flags_audit.lifetime_days),
            naming=model.flags_audit.naming,
            version=release.version,
            canary_version=model.versions.canary,
            metrics_type=model.providers.metrics.type if model.providers.metrics else None,
            queries=tuple((name, m.query) for name, m in model.metrics.items()),
            metric_models=tuple(model.metrics.items()),
            contacts=tuple((kind, i, c) for kind in ("owners", "stakeholders")
                           for i, c in enumerate(getattr(release, kind))),
            dependencies=tuple(enumerate(release.changes.dependencies)),
            migrations=tuple(enumerate(release.migrations)),
            strategy=release.strategy,
            cohorts=tuple(release.cohorts),
            cohorts_written=bool(release.cohorts),
            rolling_written=release.rolling is not None,
            baseline_version=model.versions.baseline,
        )

    @classmethod
    def of_data(cls, data: dict[str, Any]) -> Parts:
        """The parts of a file that failed validation which are still valid on their own."""
        release = valid_fields(ReleaseModel, data.get("release"))
        raw_gates = data.get("gates")
        gates: list[tuple[int, GateModel]] = []
        if isinstance(raw_gates, list):
            for index, raw in enumerate(raw_gates):
                # Only a wholly valid gate: with a misspelt `maks:` it would also seem to
                # have no threshold, which is the same mistake told twice.
                with contextlib.suppress(ValidationError):
                    gates.append((index, GateModel.model_validate(raw)))
        metrics = data.get("metrics", {})
        providers = data.get("providers")
        audit = data.get("flags_audit", {})
        lifetimes = audit.get("lifetime_days", {}) if isinstance(audit, dict) else None
        versions = valid_fields(VersionsModel, data.get("versions"))
        metrics_block = providers.get("metrics") if isinstance(providers, dict) else None
        queries: list[tuple[str, str]] = []
        metric_models: list[tuple[str, MetricModel]] = []
        if isinstance(metrics, dict):
            for name, raw_metric in metrics.items():
                with contextlib.suppress(ValidationError):
                    valid = MetricModel.model_validate(raw_metric)
                    queries.append((str(name), valid.query))
                    metric_models.append((str(name), valid))
        raw_release = data.get("release")
        traffic_block = providers.get("traffic") if isinstance(providers, dict) else None
        return cls(
            steps=release.get("steps"),
            steps_written=not isinstance(raw_release, dict) or "steps" in raw_release,
            traffic_type=(
                str(traffic_block.get("type")) if isinstance(traffic_block, dict) else None
            ),
            poll_interval=release.get("poll_interval"),
            stale_after=release.get("stale_after"),
            gates=tuple(gates),
            gates_written=isinstance(raw_gates, list) and bool(raw_gates),
            metric_names=tuple(metrics) if isinstance(metrics, dict) else None,
            metrics_provider=(
                providers.get("metrics") is not None if isinstance(providers, dict) else None
            ),
            flag_kinds=tuple(lifetimes) if isinstance(lifetimes, dict) else (),
            naming=valid_fields(FlagsAuditModel, audit).get("naming"),
            version=release.get("version"),
            canary_version=versions.get("canary"),
            metrics_type=(
                str(metrics_block.get("type")) if isinstance(metrics_block, dict) else None
            ),
            queries=tuple(queries),
            metric_models=tuple(metric_models),
            contacts=_valid_contacts(raw_release),
            dependencies=_valid_dependencies(raw_release),
            migrations=tuple(_valid_items(raw_release.get("migrations"), MigrationModel))
            if isinstance(raw_release, dict) else (),
            strategy=release.get("strategy"),
            cohorts=tuple(release["cohorts"]) if "cohorts" in release else None,
            cohorts_written=isinstance(raw_release, dict) and bool(raw_release.get("cohorts")),
            rolling_written=isinstance(raw_release, dict) and "rolling" in raw_release,
            baseline_version=versions.get("baseline"),
        )


def _valid_items(raw: Any, model: type[Any]) -> list[tuple[int, Any]]:
    """The entries of a list in a file that are valid on their own, with their index."""
    found = []
    if isinstance(raw, list):
        for index, item in enumerate(raw):
            with contextlib.suppress(ValidationError):
                found.append((index, model.model_validate(item)))
    return found


def _valid_contacts(release: Any) -> tuple[tuple[str, int, ContactModel], ...]:
    if not isinstance(release, dict):
        return ()
    return tuple((kind, i, c) for kind in ("owners", "stakeholders")
                 for i, c in _valid_items(release.get(kind), ContactModel))


def _valid_dependencies(release: Any) -> tuple[tuple[int, DependencyModel], ...]:
    changes = release.get("changes") if isinstance(release, dict) else None
    if not isinstance(changes, dict):
        return ()
    return tuple(_valid_items(changes.get("dependencies"), DependencyModel))


# Traffic providers whose controller owns the step plan: release.steps may be left out.
PLAN_OWNERS = ("argo-rollouts",)


def check_steps(parts: Parts, fail: Fail) -> list[ConfigError]:
    steps = parts.steps
    strategy = parts.strategy or "canary"
    if strategy == "rolling":
        return _rolling_steps(parts, fail)
    if steps is None:
        if parts.steps_written or parts.traffic_type in PLAN_OWNERS:
            return []
        return [
            fail(
                ("release",),
                "no release.steps",
                "Add steps, e.g. steps: [{weight: 10, bake: 2m}, {weight: 100}] (only a "
                "traffic provider whose controller owns the plan, type: argo-rollouts, "
                "needs none)",
            )
        ]
    if not steps:
        return [
            fail(
                ("release", "steps"),
                "no steps",
                "Add at least one step, e.g. steps: [{weight: 10, bake: 2m}, {weight: 100}]",
            )
        ]
    if strategy == "blue-green":
        return _blue_green_steps(steps, fail)
    problems = _route_steps(steps, strategy, parts, fail)
    weighted = [(i, st) for i, st in enumerate(steps) if st.weight is not None]
    if not weighted:
        return [*problems, fail(
            ("release", "steps"),
            "no step sends users to the canary by weight, so the release never ends",
            "End the steps with weights, e.g. - {weight: 10, bake: 2m} and - {weight: 100}")]
    first_i, first = weighted[0]
    if first.weight == 0:
        problems.append(
            fail(
                ("release", "steps", first_i, "weight"),
                "the first step sends no traffic to the canary (weight 0), so no gate can "
                "judge it and the release would bake blind",
                "Start with a small weight, e.g. - {weight: 1, bake: 1m}",
            )
        )
    for (_, before), (i, step) in pairwise(weighted):
        assert before.weight is not None and step.weight is not None
        if step.weight <= before.weight:
            problems.append(
                fail(
                    ("release", "steps", i, "weight"),
                    f"weights must increase ({step.weight} after {before.weight})",
                    "Make each step's weight larger than the one before",
                )
            )
            break  # one step out of order makes every later one look wrong too
    last_i, last = weighted[-1]
    if last.weight != 100 or last_i != len(steps) - 1:
        problems.append(
            fail(
                ("release", "steps", len(steps) - 1,
                 "weight" if steps[-1].weight is not None else "cohort"
                 if steps[-1].cohort is not None else "mirror"),
                f"the last step must send 100% of traffic to the canary (it is "
                f"{_target(steps[-1])})",
                "End the steps with - {weight: 100}",
            )
        )
    return problems


def _target(step: StepModel) -> str:
    if step.cohort is not None:
        return f"cohort {step.cohort}"
    if step.mirror is not None:
        return f"a {step.mirror}% mirror"
    return str(step.weight)


def _rolling_steps(parts: Parts, fail: Fail) -> list[ConfigError]:
    problems = []
    if parts.steps_written:
        problems.append(fail(
            ("release", "steps"),
            "strategy rolling takes no release.steps: its steps are the batches of servers",
            "Remove release.steps and write release.rolling: {batch: 1, bake: 1m}"))
    if not parts.rolling_written:
        problems.append(fail(
            ("release", "strategy"),
            "strategy rolling needs release.rolling (how many servers per batch, and the "
            "bake after each)",
            "Add release.rolling: {batch: 1, bake: 1m} (or batch: 25%)"))
    return problems


def _blue_green_steps(steps: list[StepModel], fail: Fail) -> list[ConfigError]:
    if len(steps) == 1 and steps[0].weight == 100:
        return []
    return [fail(
        ("release", "steps"),
        "blue-green switches all traffic at once, so it has one step: the switch to 100% "
        f"and the bake after it (this file has {len(steps)} step(s), the first "
        f"{_target(steps[0])})",
        "Write steps: [{weight: 100, bake: 10m}]; for a share at a time use strategy canary")]


def _route_steps(steps: list[StepModel], strategy: str, parts: Parts,
                 fail: Fail) -> list[ConfigError]:
    """Cohort (ab) and mirror (shadow) steps: only with their strategy, before every
    weight, each cohort known and once, mirrors growing."""
    problems: list[ConfigError] = []
    seen_weight = False
    cohorts: list[str] = []
    mirrors: list[int] = []
    for i, step in enumerate(steps):
        if step.weight is not None:
            seen_weight = True
            continue
        key, needs = ("cohort", "ab") if step.cohort is not None else ("mirror", "shadow")
        where = ("release", "steps", i, key)
        if strategy != needs:
            problems.append(fail(
                where, f"a {key} step needs strategy {needs} (release.strategy is {strategy})",
                f"Set release.strategy: {needs}, or write this step as - {{weight: …}}"))
            continue
        if seen_weight:
            problems.append(fail(
                where, f"{key} steps come before the weight steps (a {key} step after a "
                "weight would route fewer users than the step before it)",
                f"Move the {key} steps to the start of release.steps"))
        if step.cohort is not None:
            known = parts.cohorts
            if known is not None and step.cohort not in known:
                guess = did_you_mean(step.cohort, list(known))
                problems.append(fail(
                    where, f"no cohort named {clip(step.cohort)} in release.cohorts",
                    guess or "Define it under release.cohorts, e.g. beta-users: "
                    "{header: X-User-Group, values: [beta]}"))
            elif step.cohort in cohorts:
                problems.append(fail(
                    where, f"cohort {clip(step.cohort)} is already routed by an earlier step",
                    "List each cohort once"))
            cohorts.append(step.cohort)
        if step.mirror is not None:
            if mirrors and step.mirror <= mirrors[-1]:
                problems.append(fail(
                    where, f"mirror shares must increase ({step.mirror} after {mirrors[-1]})",
                    "Make each mirror step's share larger than the one before"))
            mirrors.append(step.mirror)
    if strategy == "ab" and not cohorts:
        problems.append(fail(
            ("release", "steps"),
            "strategy ab, but no step routes a cohort: it would run as a plain canary",
            "Start with - {cohort: NAME, bake: …} (a release.cohorts name), or use "
            "strategy canary"))
    if strategy == "shadow" and not mirrors:
        problems.append(fail(
            ("release", "steps"),
            "strategy shadow, but no step mirrors traffic: it would run as a plain canary",
            "Start with - {mirror: 20, bake: …}, or use strategy canary"))
    return problems


def check_strategy(parts: Parts, fail: Fail) -> list[ConfigError]:
    """Every key a strategy reads is only given with that strategy, and the traffic
    provider can do the strategy at all (a setting accepted and ignored would shield no
    one while the operator believes it does)."""
    strategy = parts.strategy or "canary"
    problems = []
    if parts.cohorts_written and strategy != "ab":
        problems.append(fail(
            ("release", "cohorts"),
            f"release.cohorts is only read by strategy ab (release.strategy is {strategy})",
            "Set release.strategy: ab and route them with - {cohort: NAME} steps, or "
            "remove release.cohorts"))
    if parts.rolling_written and strategy != "rolling":
        problems.append(fail(
            ("release", "rolling"),
            f"release.rolling is only read by strategy rolling (release.strategy is "
            f"{strategy})",
            "Set release.strategy: rolling, or remove release.rolling"))
    if strategy == "rolling" and parts.baseline_version == "":
        problems.append(fail(
            ("versions",),
            "strategy rolling re-deploys the old version on rollback, so versions.baseline "
            "must name it",
            "Add versions: {baseline: 1.4.2} (the version the servers run now)"))
    kind = parts.traffic_type
    if kind in STRATEGIES and strategy not in STRATEGIES[kind]:
        can = providers_for(strategy)
        problems.append(fail(
            ("release", "strategy"),
            f"traffic provider {kind} cannot do strategy {strategy} (it does "
            f"{', '.join(STRATEGIES[kind])})",
            (f"Traffic providers that can: {', '.join(can)}" if can else
             "No built-in traffic provider can") + "; or choose a strategy it does"))
    return problems


def check_timing(parts: Parts, fail: Fail) -> list[ConfigError]:
    stale, poll = parts.stale_after, parts.poll_interval
    if stale is None or poll is None or stale >= poll:
        return []
    return [
        fail(
            ("release", "stale_after"),
            f"stale_after ({stale:g}s) is shorter than poll_interval "
            f"({poll:g}s), so every reading would be stale",
            "Make stale_after at least poll_interval, or leave it out (3x poll_interval)",
        )
    ]


def check_gates(parts: Parts, fail: Fail) -> list[ConfigError]:
    problems = []
    only_health = bool(parts.gates) and all(g.health is not None for _, g in parts.gates)
    if parts.gates_written and parts.metrics_provider is False and not only_health:
        problems.append(
            fail(
                ("gates",),
                "gates are defined but there is no metrics provider, so no gate could ever pass",
                "Add providers.metrics (e.g. {type: sim} or {type: prometheus, url: ...}), "
                "or remove the gates",
            )
        )
    known = parts.metric_names
    for i, gate in parts.gates:
        if gate.health is not None or gate.min_up is not None or gate.metric is None:
            problems.extend(_health_gate(i, gate, fail))
            continue
        if known is not None and gate.metric not in known:
            if known:
                hint = _sentences(
                    did_you_mean(gate.metric, known), f"Known metrics: {', '.join(known)}"
                )
            else:
                hint = "No metrics are defined; add a metrics: section that defines it"
            problems.append(
                fail(("gates", i, "metric"), f"gate names unknown metric '{clip(gate.metric)}'",
                     hint)
            )
        if all(getattr(gate, t) is None for t in THRESHOLDS):
            problems.append(
                fail(
                    ("gates", i),
                    f"gate on '{clip(gate.metric)}' has no threshold",
                    f"Give it at least one of {', '.join(THRESHOLDS)}",
                )
            )
        problems.extend(_alpha_on_values(i, gate, parts, fail))
        if gate.min is not None and gate.max is not None and gate.min > gate.max:
            problems.append(
                fail(
                    ("gates", i, "min"),
                    f"min ({gate.min:g}) is above max ({gate.max:g}), so no value could pass",
                    "Make min smaller than max",
                )
            )
    return problems


def _alpha_on_values(i: int, gate: GateModel, parts: Parts, fail: Fail) -> list[ConfigError]:
    """`alpha` is the confidence of the evidence judge; on a metric judged on values it
    would be accepted and then ignored, which hides that the gate is not what was meant."""
    if "alpha" not in gate.model_fields_set:
        return []
    metric = dict(parts.metric_models).get(gate.metric or "")
    if metric is None:
        return []
    source, why, _query = judged_on(metric.query, metric.counts, metric.histogram)
    absolute = [k for k in ("max", "min", "max_increase", "max_decrease")
                if getattr(gate, k) is not None]
    if source is not None and source.histogram and absolute:
        # A histogram's counts are shares of slow requests; a limit in seconds is judged
        # on values (engine/gates.py `values_why`), where alpha means nothing.
        why = f"{'/'.join(absolute)} on a histogram is in seconds; use max_ratio for counts"
        source = None
    if source is not None:
        return []
    because = f" ({why})" if why else ""
    return [fail(("gates", i, "alpha"),
                 f"alpha is for gates judged on counts, and '{clip(gate.metric or '')}' is "
                 f"judged on values{because}",
                 "Give the metric counts: {events: ..., total: ...} (or histogram:), write "
                 "its query as a ratio of summed rates of counters, or remove alpha")]


def _health_gate(i: int, gate: GateModel, fail: Fail) -> list[ConfigError]:
    """A health gate ({health: canary, min_up: 2}) counts servers: it has no metric and
    no metric threshold; `min_up` means nothing without `health`."""
    if gate.health is None:
        if gate.min_up is not None:
            return [fail(("gates", i, "min_up"), "min_up is only for a health gate",
                         "Write {health: canary, min_up: 2} as a gate of its own")]
        return [fail(("gates", i), "gate has no metric",
                     "Give it metric: NAME (one of the metrics: section), or make it a "
                     "health gate: {health: canary, min_up: 2}")]
    problems = []
    if gate.metric is not None:
        problems.append(fail(
            ("gates", i, "metric"),
            "a health gate counts servers, it takes no metric",
            "Write the health gate and the metric's gate as two gates"))
    for t in THRESHOLDS:
        if getattr(gate, t) is not None:
            problems.append(fail(
                ("gates", i, t), f"{t} is a metric's limit; a health gate has min_up",
                "Put metric limits in a gate with metric: NAME"))
    if gate.min_up is None:
        problems.append(fail(("gates", i), "health gate has no min_up",
                             "Say how many canary servers must be up: min_up: 2, or "
                             "min_up: 66%"))
    if "alpha" in gate.model_fields_set:
        problems.append(fail(("gates", i, "alpha"),
                             "alpha is for gates judged on counts; a health gate counts "
                             "servers", "Remove alpha from the health gate"))
    return problems


def check_flags_audit(parts: Parts, fail: Fail) -> list[ConfigError]:
    problems = []
    kinds = [k.value for k in FlagKind]
    for name in parts.flag_kinds:
        if name not in kinds:
            problems.append(
                fail(
                    ("flags_audit", "lifetime_days", name),
                    f"unknown flag type '{clip(name)}'",
                    _sentences(did_you_mean(name, kinds), f"Flag types: {', '.join(kinds)}"),
                )
            )
    if parts.naming is not None:
        try:
            re.compile(parts.naming)
        except re.error as exc:
            problems.append(
                fail(
                    ("flags_audit", "naming"),
                    f"is not a regular expression ({exc})",
                    "Write a Python regular expression, quoted in single quotes, "
                    "e.g. '^[a-z0-9]+-[a-z0-9-]+-(release|ops)$'",
                )
            )
    return problems


def check_versions(parts: Parts, fail: Fail) -> list[ConfigError]:
    canary, version = parts.canary_version, parts.version
    if canary is None or version is None or canary == version:
        return []
    return [
        fail(
            ("versions", "canary"),
            f"versions.canary ({clip(canary)}) is not release.version ({clip(version)}): the "
            "console would name one version while the gates judge another",
            "Make them the same, or leave versions.canary out (it defaults to "
            "release.version)",
        )
    ]


def check_queries(parts: Parts, fail: Fail) -> list[ConfigError]:
    """PromQL read with a parser (only for Prometheus; the simulator ignores queries)."""
    if parts.metrics_type != "prometheus":
        return []
    problems = []
    for name, query in parts.queries:
        if not query.strip():
            continue  # the Prometheus adapter says that a query is needed
        found = check_query(query)
        if found is not None:
            problems.append(fail(("metrics", name, "query"), found.problem, found.hint))
    return problems


def check_counts(parts: Parts, fail: Fail) -> list[ConfigError]:
    """The counter selectors of `counts:` and `histogram:`, read with a PromQL parser."""
    problems = []
    for name, metric in parts.metric_models:
        if metric.counts is not None and metric.histogram is not None:
            problems.append(fail(
                ("metrics", name, "histogram"),
                "has both counts: and histogram:, so it is not clear what the gate judges",
                "Keep counts: for events among requests, or histogram: for latency"))
            continue
        selectors: list[tuple[KeyPath, str, bool]] = []
        if metric.counts is not None:
            selectors += [(("metrics", name, "counts", "events"), metric.counts.events, False),
                          (("metrics", name, "counts", "total"), metric.counts.total, False)]
        if metric.histogram is not None:
            selectors.append(
                (("metrics", name, "histogram", "buckets"), metric.histogram.buckets, True))
        for key, text, histogram in selectors:
            found = check_selector(text, histogram=histogram)
            if found is not None:
                problems.append(fail(key, found.problem, found.hint))
    return problems


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def check_contacts(parts: Parts, fail: Fail) -> list[ConfigError]:
    """Owners and stakeholders are listed to be reached: each needs a way to reach them,
    written so a person (or a notifier) can use it."""
    problems = []
    for kind, i, contact in parts.contacts:
        key: KeyPath = ("release", kind, i)
        if not (contact.slack or contact.email or contact.pager):
            problems.append(fail(key, f"{clip(contact.name)} has no way to be reached",
                                 "Give at least one of slack: '#channel' or '@handle', "
                                 "email: name@example.com, pager: ROTATION"))
        if contact.slack is not None and not contact.slack.startswith(("#", "@")):
            problems.append(fail((*key, "slack"),
                                 f"'{clip(contact.slack)}' is neither a channel nor a handle",
                                 "Write a channel as '#payments-oncall' or a person as "
                                 "'@alice' (quoted: YAML reads # as a comment)"))
        if contact.email is not None and not _EMAIL.fullmatch(contact.email):
            problems.append(fail((*key, "email"),
                                 f"'{clip(contact.email)}' is not an email address",
                                 "Write it as name@example.com"))
    return problems


def check_dependencies(parts: Parts, fail: Fail) -> list[ConfigError]:
    """Each dependency has exactly one health probe, and it is one that can be run."""
    problems = []
    for i, dep in parts.dependencies:
        key: KeyPath = ("release", "changes", "dependencies", i)
        given = [k for k in ("http", "promql") if getattr(dep, k) is not None]
        if len(given) != 1:
            problems.append(fail(
                key, f"dependency {clip(dep.name)} needs exactly one health probe, http or "
                     f"promql (it has {len(given)})",
                "Write http: 'https://inventory.internal/healthz' (answers 2xx when healthy) "
                "or promql: 'sum(up{job=\"inventory\"})' (non-zero when healthy)"))
            continue
        if dep.promql is None:
            continue
        if parts.metrics_type != "prometheus":
            problems.append(fail(
                (*key, "promql"),
                "a PromQL probe is sent to Prometheus, but providers.metrics is not "
                "type: prometheus",
                "Add providers.metrics: {type: prometheus, url: …}, or probe the "
                "dependency with http: URL"))
        placeholder = "{{version}}" in dep.promql
        if dep.version is not None and not placeholder:
            problems.append(fail(
                (*key, "version"),
                f"version {clip(dep.version)} is given, but the promql probe does not use "
                "{{version}}, so the version would never be checked",
                "Put {{version}} in the expression, e.g. "
                "'sum(up{job=\"inventory\",version=\"{{version}}\"})', or drop version"))
        if placeholder and dep.version is None:
            problems.append(fail(
                (*key, "promql"), "the probe uses {{version}} but the dependency has no version",
                "Add version: the version that must be deployed, e.g. version: 4.1.0"))
        found = check_query(dep.promql)
        if found is not None:
            problems.append(fail((*key, "promql"), found.problem, found.hint))
    return problems


def _sentences(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def check_migrations(parts: Parts, fail: Fail) -> list[ConfigError]:
    """Names are unique (the journal and `migrate down NAME` know a migration by it), and
    the list runs in its written order: every expand migration before every contract one.

    A contract migration runs only after promotion and `release.contract_after`, when the
    new code is at 100 %; an expand listed after it would wait for it, so code that needs
    the expanded schema would take traffic first — or the contract would be read as due
    before its code is at 100 %. Either way the list says something that cannot happen,
    and it is refused rather than reordered.
    """
    problems = []
    seen: set[str] = set()
    first_contract: MigrationModel | None = None
    for i, m in parts.migrations:
        key: KeyPath = ("release", "migrations", i)
        if m.name in seen:
            problems.append(fail((*key, "name"), f"migration {clip(m.name)} is listed twice",
                                 "Give each migration its own name"))
        seen.add(m.name)
        if m.phase == "contract":
            first_contract = first_contract or m
        elif first_contract is not None:
            problems.append(fail(
                (*key, "phase"),
                f"expand migration {clip(m.name)} is listed after contract migration "
                f"{clip(first_contract.name)}: a contract runs only once the code is at 100 % "
                "(after promotion and release.contract_after), so nothing listed after it "
                "can run before the first traffic step",
                "List every expand migration before the first contract one"))
    return problems


RULES: tuple[Callable[[Parts, Fail], list[ConfigError]], ...] = (
    check_steps,
    check_strategy,
    check_timing,
    check_gates,
    check_flags_audit,
    check_versions,
    check_queries,
    check_counts,
    check_contacts,
    check_dependencies,
    check_migrations,
)


def check_all(parts: Parts, fail: Fail) -> list[ConfigError]:
    """Every rule's problems, sorted by line."""
    return by_line(problem for rule in RULES for problem in rule(parts, fail))
