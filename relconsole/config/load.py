"""Read one configuration file, check it, resolve its secrets, build the release plan.

The checks run in stages: the YAML, the schema, the rules between fields, the
secrets, and (for `relconsole check`) the provider type names. By default the first
problem stops the load and is raised as a ConfigError. With collect=True every stage
runs as far as the file allows, and all problems are raised together as
ConfigProblems, because a user would rather learn of three typos at once than of
one, three times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from relconsole.config.analysis_template import TemplateError
from relconsole.config.counts import judged_on
from relconsole.config.errors import (
    ConfigError,
    ConfigProblems,
    KeyPath,
    by_line,
    format_key,
    line_near,
)
from relconsole.config.explain import validation_errors
from relconsole.config.gates_from import GatesFrom, apply, read_template_file
from relconsole.config.notify import notify_settings, refuse_providers_notify
from relconsole.config.provider_blocks import check_secrets, check_types
from relconsole.config.rules import Parts, check_all
from relconsole.config.schema import (
    MAY_BE_EMPTY,
    PRODUCTION_NAMES,
    PROVIDER_KINDS,
    TEXT_PATHS,
    ChangesModel,
    CohortModel,
    ContactModel,
    FlagsAuditModel,
    GateModel,
    MetricModel,
    ReleaseModel,
    RollingModel,
    RootModel,
    matches,
    parse_min_up,
)
from relconsole.config.yaml_lines import Composer, compose
from relconsole.model import (
    ApiChange,
    Cohort,
    Contact,
    Dependency,
    FlagAuditPolicy,
    FlagKind,
    GateSpec,
    MetricSpec,
    Migration,
    ReleaseChanges,
    ReleasePlan,
    Route,
    Step,
)
from relconsole.schedule import Freeze, Schedule, Window, parse_clock, parse_days


@dataclass
class LoadedConfig:
    path: Path
    plan: ReleasePlan
    providers: dict[str, dict[str, Any]]
    versions: dict[str, str]
    theme: str | None
    state_dir: Path | None
    lines: dict[KeyPath, int] = field(default_factory=dict, repr=False, compare=False)
    # A template still to be read from the cluster (a `file:` one is in `plan` already).
    gates_from: GatesFrom | None = None
    # The notify: entries (config/notify.py), secrets resolved as in `providers`.
    notify: list[dict[str, Any]] = field(default_factory=list)

    def line_of(self, *path: str | int) -> int | None:
        """The 1-based line a key path was written on, or None when it is not in the file."""
        return self.lines.get(tuple(path))

    def error(self, key_path: tuple[str | int, ...], problem: str, hint: str) -> ConfigError:
        """A ConfigError for a key path; a key that is not in the file gets its parent's line."""
        return ConfigError(
            self.path, line_near(self.lines, key_path), format_key(key_path), problem, hint
        )


class _Problems:
    """Where problems go: the first raised at once, or (collect=True) all kept to the end."""

    def __init__(self, collect: bool) -> None:
        self.collect = collect
        self.found: list[ConfigError] = []

    def add(self, errors: Iterable[ConfigError]) -> None:
        errors = list(errors)
        if errors and not self.collect:
            raise by_line(errors)[0]
        self.found.extend(errors)

    def stop(self, error: ConfigError) -> NoReturn:
        """A problem after which nothing more of the file can be read."""
        if self.collect:
            raise ConfigProblems([*self.found, error])
        raise error

    def finish(self) -> None:
        if self.found:
            raise ConfigProblems(self.found)


def load_config(
    path: str | Path,
    *,
    resolve_secrets: bool = True,
    secret_timeout: float = 3.0,
    collect: bool = False,
    provider_types: Mapping[str, Sequence[str]] | None = None,
) -> LoadedConfig:
    """Read, validate and (by default) resolve the secrets of one configuration file.

    Raises ConfigError — exactly one, the first problem by line — for anything wrong;
    with collect=True, ConfigProblems holding every problem found, sorted by line.
    With resolve_secrets=False, secret references stay as their "env:…"/"keyring:…" text.
    `provider_types` (kind -> the adapter names that exist) also checks every `type:`.
    """
    path = Path(path)
    problems = _Problems(collect)
    data, composer = _compose(path, _read(path), problems)
    lines = composer.lines

    def fail(key: KeyPath, problem: str, hint: str) -> ConfigError:
        return ConfigError(path, line_near(lines, key), format_key(key), problem, hint)

    data = _normalise(data, composer)
    problems.add(refuse_providers_notify(data, fail))
    model, schema_errors = _validate(path, data, lines)
    problems.add(schema_errors)
    parts = Parts.of_model(model) if model is not None else Parts.of_data(data)
    problems.add(check_all(parts, fail))

    providers = _provider_settings(model, data)
    check_secrets(
        providers,
        resolve_them=resolve_secrets,
        timeout=secret_timeout,
        fail=fail,
        report=lambda error: problems.add([error]),
    )
    notify = notify_settings(model, data, resolve_them=resolve_secrets, timeout=secret_timeout,
                             fail=fail, report=lambda error: problems.add([error]))
    if provider_types is not None:
        problems.add(check_types(providers, provider_types, fail))
    wanted = _gates_from(model, path, fail, problems) if model is not None else None
    plan = to_plan(model) if model is not None else None
    if plan is not None and wanted is not None and not wanted.from_cluster:
        assert wanted.path is not None
        try:
            plan = apply(plan, read_template_file(wanted.path), wanted)
        except TemplateError as exc:
            key: KeyPath = ("gates_from", "file")
            problems.add([fail(key, problem, "gates_from imports an Argo AnalysisTemplate's "
                               "Prometheus metrics; fix the template or leave that metric "
                               "to Argo") for problem in exc.problems])
    problems.finish()
    if model is None or plan is None:  # pragma: no cover - an invalid model left a problem
        raise AssertionError("invalid configuration without a problem")
    return LoadedConfig(
        path=path,
        plan=plan,
        providers=providers,
        versions={
            "canary": model.versions.canary or model.release.version,
            "baseline": model.versions.baseline,
        },
        theme=model.ui.theme,
        state_dir=_state_dir(path, model.state.dir),
        lines=dict(lines),
        gates_from=wanted if wanted is not None and wanted.from_cluster else None,
        notify=notify,
    )


def _schedule(release: Any) -> Schedule:
    """The windows and freezes of a valid release block (the schema has read each)."""
    windows = []
    for w in release.windows:
        start = parse_clock(w.from_)
        assert start is not None  # the schema refused a window that begins at 24:00
        windows.append(Window(parse_days(w.days), start, parse_clock(w.to)))
    return Schedule(
        windows=tuple(windows),
        freezes=tuple(Freeze(f.from_, f.to, f.reason) for f in release.freeze),
        timezone=release.timezone,
    )


def _gates_from(
    model: RootModel, path: Path, fail: Any, problems: _Problems
) -> GatesFrom | None:
    """What gates_from: asks for, or None; its own problems go to `problems`."""
    block = model.gates_from
    if block is None:
        return None
    given = [(key, value) for key, value in (
        ("analysis_template", block.analysis_template),
        ("cluster_analysis_template", block.cluster_analysis_template),
        ("file", block.file),
    ) if value is not None]
    if len(given) != 1:
        problems.add([fail(
            ("gates_from",),
            "gates_from needs exactly one of analysis_template, cluster_analysis_template "
            f"or file (it has {len(given)})",
            "Write e.g. gates_from: {analysis_template: success-rate}",
        )])
        return None
    key, name = given[0]
    if model.providers.metrics is None or model.providers.metrics.type != "prometheus":
        problems.add([fail(
            ("gates_from",),
            "gates_from imports Prometheus metrics, but providers.metrics is not "
            "type: prometheus",
            "Add providers.metrics: {type: prometheus, url: …} (the Prometheus the "
            "template's queries run on)",
        )])
    if key == "file":
        return GatesFrom("file", name, dict(block.args), path.parent / Path(name).expanduser())
    if model.providers.traffic.type != "argo-rollouts":
        problems.add([fail(
            ("gates_from", key),
            f"gates_from.{key} is read from the Rollout's cluster, but providers.traffic "
            "is not type: argo-rollouts",
            "Use gates_from.file with the template's YAML (kubectl get analysistemplate "
            "NAME -o yaml), or drive an Argo Rollout",
        )])
    kind = "AnalysisTemplate" if key == "analysis_template" else "ClusterAnalysisTemplate"
    return GatesFrom(kind, name, dict(block.args))


def to_plan(model: RootModel) -> ReleasePlan:
    """The release plan a valid file describes."""
    release = model.release
    production = release.production
    if production is None:
        production = release.environment.strip().lower() in PRODUCTION_NAMES
    return ReleasePlan(
        service=release.service,
        version=release.version,
        environment=release.environment,
        strategy=release.strategy,
        steps=plan_steps(release),
        cohorts=tuple(_cohort(name, c) for name, c in release.cohorts.items()),
        **_rolling(release.rolling),
        schedule=_schedule(release),
        auto_advance=release.auto_advance,
        auto_rollback=release.auto_rollback,
        poll_interval=release.poll_interval,
        stale_after=release.stale_after,
        call_timeout=release.call_timeout,
        metrics=tuple(_metric(n, m) for n, m in model.metrics.items()),
        gates=tuple(
            _gate_spec(g)
            for g in model.gates
        ),
        release_flags=tuple(release.flags),
        baseline_version=model.versions.baseline,
        rollback_retry_max=release.rollback.retry_max,
        rollback_give_up=release.rollback.give_up,
        production=production,
        kill_flags_on_rollback=release.rollback.kill_flags,
        flags_audit=_audit_policy(model.flags_audit),
        dashboard=release.dashboard or "",
        canary_version=model.versions.canary or "",
        owners=tuple(_contact(c) for c in release.owners),
        stakeholders=tuple(_contact(c) for c in release.stakeholders),
        changes=_changes(release.changes),
        migrations=tuple(Migration(name=m.name, phase=m.phase, up=tuple(m.up),
                                   down=tuple(m.down), check=tuple(m.check), timeout=m.timeout)
                         for m in release.migrations),
        contract_after=release.contract_after,
    )


def plan_steps(release: ReleaseModel) -> tuple[Step, ...]:
    """The engine's steps for what the file says, in the strategy's shape.

    A route is cumulative (a weight step after a cohort step keeps the cohort), so the
    plan only ever grows. Blue-green's one step becomes the switch and its end: the bake
    after the switch is a step of its own, so the release is not done the moment all
    traffic moves. Rolling's steps are its batches, built once the traffic provider has
    said how many servers it updates (`rolling_steps`).
    """
    written = release.steps or []
    if release.strategy == "blue-green":
        if len(written) != 1:
            return ()
        only = written[0]
        return (Step(weight=100, bake=only.bake, at=only.at or "", label="switch"),
                Step(weight=100, label="done"))
    out: list[Step] = []
    route = Route()
    weight = 0
    for s in written:
        if s.cohort is not None:
            route = replace(route, cohorts=(*route.cohorts, s.cohort))
            label = f"cohort {s.cohort}"
        elif s.mirror is not None:
            route = replace(route, mirror=s.mirror)
            label = f"mirror {s.mirror}%"
        else:
            assert s.weight is not None
            weight = s.weight
            label = ""
        # At 100 % everyone is on the new version: the cohorts and the mirror come off
        # with the promotion, so nothing is left routing a later release's canary.
        out.append(Step(weight=weight, bake=s.bake, at=s.at or "",
                        route=route if weight < 100 else Route(), label=label))
    return tuple(out)


def rolling_steps(batches: Sequence[int], bake: float) -> tuple[Step, ...]:
    """One step per batch (`batches`: the number of servers in each, as the traffic
    provider groups them), its weight the share of servers then on the new version."""
    total = sum(batches)
    out = []
    done = 0
    for k, size in enumerate(batches):
        done += size
        out.append(Step(weight=round(100 * done / total) if total else 100, bake=bake,
                        route=Route(batches=k + 1), label=f"batch {k + 1}"))
    return tuple(out)


def _cohort(name: str, c: CohortModel) -> Cohort:
    return Cohort(name=name, header=c.header or "", cookie=c.cookie or "",
                  values=tuple(c.values), hash=c.hash or "", percent=c.percent or 0)


def _rolling(rolling: RollingModel | None) -> dict[str, Any]:
    if rolling is None:
        return {}
    number, is_share = parse_min_up(rolling.batch)
    return {"batch": 0 if is_share else int(number), "batch_share": number if is_share else 0.0,
            "batch_bake": rolling.bake}


def _metric(name: str, metric: MetricModel) -> MetricSpec:
    """A metric, with the counters it is judged on (`config.counts`) where there are any."""
    source, why, query = judged_on(metric.query, metric.counts, metric.histogram)
    return MetricSpec(name=name, query=query, unit=metric.unit,
                      dashboard=metric.dashboard or "", counts=source, values_why=why)


HEALTH_GATE_NAME = "{role} up"  # a health gate's name on screen and in the journal


def _gate_spec(g: GateModel) -> GateSpec:
    min_up, share = parse_min_up(g.min_up) if g.min_up is not None else (None, False)
    return GateSpec(
        metric=g.metric or HEALTH_GATE_NAME.format(role=g.health or ""),
        max=g.max,
        min=g.min,
        max_increase=g.max_increase,
        max_ratio=g.max_ratio,
        failure_limit=g.failure_limit,
        inconclusive_limit=g.inconclusive_limit,
        max_decrease=g.max_decrease,
        min_ratio=g.min_ratio,
        alpha=g.alpha,
        health=g.health,
        min_up=min_up,
        min_up_share=share,
    )


def _contact(c: ContactModel) -> Contact:
    return Contact(name=c.name, slack=c.slack or "", email=c.email or "", pager=c.pager or "")


def _changes(section: ChangesModel) -> ReleaseChanges:
    return ReleaseChanges(
        api=tuple(ApiChange(a.name, a.breaking) for a in section.api),
        infrastructure=tuple(section.infrastructure),
        dependencies=tuple(Dependency(name=d.name, http=d.http or "", promql=d.promql or "",
                                      version=d.version or "")
                           for d in section.dependencies),
    )


def _audit_policy(section: FlagsAuditModel) -> FlagAuditPolicy:
    """The audit policy: the defaults, with whatever the file overrides."""
    default = FlagAuditPolicy()
    lifetimes = dict(default.lifetime_days)
    for name, days in section.lifetime_days.items():
        lifetimes[FlagKind(name)] = days
    return FlagAuditPolicy(
        lifetime_days=tuple(lifetimes.items()),
        stale_full_on_days=section.stale_full_on_days,
        naming=default.naming if section.naming is None else section.naming,
    )


def _state_dir(path: Path, configured: str | None) -> Path | None:
    if configured is None:
        return None
    state_dir = Path(configured).expanduser()
    # Relative to the file, not the working directory: the same file, the same journal.
    return state_dir if state_dir.is_absolute() else path.absolute().parent / state_dir


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path,
            None,
            "",
            "file not found",
            "Pass -c PATH, or copy config.example.yaml to relconsole.yaml",
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            path, None, "", "is a directory, not a file", "Pass the path of the YAML file with -c"
        ) from None
    except PermissionError:
        raise ConfigError(
            path, None, "", "permission denied", "Make the file readable by this user"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            path, None, "", f"is not UTF-8 text (byte {exc.start})", "Save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            path, None, "", f"cannot be read ({exc.strerror or exc})", "Check the path"
        ) from None


def _compose(path: Path, text: str, problems: _Problems) -> tuple[dict[str, Any], Composer]:
    if not problems.collect:
        return compose(path, text)
    duplicates: list[ConfigError] = []
    stopped = None
    try:
        data, composer = compose(path, text, duplicates)
    except ConfigError as exc:
        stopped = exc
    problems.add(duplicates)
    if stopped is not None:  # raised here, so the first error is not chained to the rest
        problems.stop(stopped)
    return data, composer


def _validate(
    path: Path, data: dict[str, Any], lines: dict[KeyPath, int]
) -> tuple[RootModel | None, list[ConfigError]]:
    try:
        return RootModel.model_validate(data), []
    except ValidationError as exc:
        errors = validation_errors(path, exc, lines)
    return None, errors  # returned, not raised in the `except`: pydantic's error quotes input


def _provider_settings(model: RootModel | None, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each provider block as the adapter will read it (type plus the rest, as written).

    From an invalid file, whichever blocks are mappings, so their secrets are checked too.
    """
    raw = data.get("providers")
    providers: dict[str, dict[str, Any]] = {}
    for kind in PROVIDER_KINDS:
        if model is not None:
            block = getattr(model.providers, kind)
            if block is not None:
                providers[kind] = {**data["providers"][kind], "type": block.type}
        elif isinstance(raw, dict) and isinstance(raw.get(kind), dict):
            providers[kind] = dict(raw[kind])
    return providers


def _get(data: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _normalise(data: dict[str, Any], composer: Composer) -> dict[str, Any]:
    """Drop empty optional sections and give back the source text of numbers in text fields."""
    for path in MAY_BE_EMPTY:
        parent = _get(data, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent and parent[path[-1]] is None:
            del parent[path[-1]]
    metrics = data.get("metrics")
    if isinstance(metrics, dict):
        for name, spec in metrics.items():
            if spec is None:
                metrics[name] = {}

    def walk(node: Any, path: KeyPath) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                visit(node, k, v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                visit(node, i, v, (*path, i))

    def visit(container: Any, k: Any, v: Any, path: KeyPath) -> None:
        if isinstance(v, (dict, list)):
            walk(v, path)
        elif (
            isinstance(v, (int, float, date, bool))
            and any(matches(p, path) for p in TEXT_PATHS)
            and path in composer.raw
        ):
            container[k] = composer.raw[path]

    walk(data, ())
    return data
