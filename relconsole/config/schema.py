"""The shape of a configuration file: pydantic models, and tables keyed by key path.

The models check one field at a time; rules between fields are in `rules.py`. The
tables say, for a key path, which model reads it, whether YAML may have mistaken its
text for a number, whether it may be written empty, and what a good value looks like
(for hints). "*" in a table's key path stands for any key or index.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from relconsole.config.errors import KeyPath
from relconsole.durations import DurationError, parse_duration
from relconsole.placeholders import expand_url
from relconsole.schedule import ScheduleError, check_zone, parse_at, parse_clock, parse_days

STRATEGIES = ("canary", "blue-green", "rolling", "ab", "shadow")
HEALTH_ROLES = ("canary",)  # whose servers a health gate counts
MIGRATION_PHASES = ("expand", "contract")
PROVIDER_KINDS = ("metrics", "traffic", "flags")
PRODUCTION_NAMES = frozenset({"production", "prod"})
THRESHOLDS = ("max", "min", "max_increase", "max_ratio", "max_decrease", "min_ratio")


def _duration(value: Any) -> Any:
    try:
        return parse_duration(value)
    except DurationError as exc:
        # The problem and hint travel in ctx, so explain.py can show them apart.
        raise PydanticCustomError(
            "duration", "{problem}", {"problem": exc.problem, "hint": exc.hint}
        ) from None


def _not_bool(value: Any) -> Any:
    # pydantic would read `weight: true` as 1; a boolean where a number belongs is a mistake.
    if isinstance(value, bool):
        raise PydanticCustomError(
            "bool_not_number", "{problem}", {"problem": "must be a number, not true/false"}
        )
    return value


def _dashboard(value: Any) -> Any:
    # Checked with sample versions in place: `{{version}}` may stand anywhere, even in
    # the host name, and the link must still be one a browser opens.
    if not isinstance(value, str):
        return value  # the str type says what is wrong with it
    sample = expand_url(value.strip(), "1.0.0", "0.9.0")
    parts = urlsplit(sample)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in sample:
        raise PydanticCustomError(
            "url", "{problem}",
            {"problem": "must be an http:// or https:// link",
             "hint": "Write the dashboard's full address, e.g. dashboard: "
                     "'https://grafana.example.com/d/abc?var-version={{version}}'"},
        )
    return value.strip()


def _never(value: Any) -> Any:
    # `release: never` reads better than a null for "this kind of flag does not expire".
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    return value


def _scheduled(parse: Any, example: str) -> Any:
    """A validator that reads a schedule value with `parse` (relconsole.schedule)."""

    def check(value: Any) -> Any:
        if value is None:
            return value
        try:
            parse(value if isinstance(value, list) else str(value))
        except ScheduleError as exc:
            raise PydanticCustomError(
                "schedule", "{problem}", {"problem": str(exc), "hint": f"Write e.g. {example}"}
            ) from None
        return value if isinstance(value, list) else str(value)

    return check


def _zone(value: Any) -> Any:
    try:
        check_zone(str(value))
    except ScheduleError as exc:
        raise PydanticCustomError("timezone", "{problem}", {"problem": str(exc)}) from None
    return str(value)


def _at(value: Any) -> Any:
    if value is None:
        return value
    try:
        parse_at(str(value), datetime.now(UTC))
    except ScheduleError as exc:
        raise PydanticCustomError("at", "{problem}", {"problem": str(exc)}) from None
    return str(value)


Text = Annotated[str, StringConstraints(min_length=1)]
Duration = Annotated[float, BeforeValidator(_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
Int = Annotated[int, BeforeValidator(_not_bool)]
Finite = Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False)]
Days = Annotated[Finite, Field(ge=0)]
Url = Annotated[str, BeforeValidator(_dashboard)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepModel(_Strict):
    """One step: a weight, or (strategy ab) a cohort, or (strategy shadow) a mirror share."""

    weight: Annotated[Int, Field(ge=0, le=100)] | None = None
    cohort: Text | None = None  # a release.cohorts name routed to the canary (ab)
    mirror: Annotated[Int, Field(ge=1, le=100)] | None = None  # percent copied (shadow)
    bake: Duration = 0.0
    # The step is not begun before this clock time ("14:00" in release.timezone, or a
    # date and time): held like a bake, cut short only with --skip-bake and a reason.
    at: Annotated[str | None, BeforeValidator(_at)] = None

    @model_validator(mode="after")
    def _one_target(self) -> StepModel:
        given = [k for k in ("weight", "cohort", "mirror") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "step", "{problem}",
                {"problem": ("a step needs a weight" if not given else
                             f"a step has one target, not {' and '.join(given)}"),
                 "hint": "Write - {weight: 10, bake: 2m}; with strategy ab a step may be "
                         "- {cohort: beta-users}, with strategy shadow - {mirror: 20}"})
        return self


class CohortModel(_Strict):
    """Users sent to the canary by who they are (strategy ab): one of header, cookie or
    hash; header and cookie take values, hash (a sticky hash of a user id) a percent."""

    header: Text | None = None
    cookie: Text | None = None
    values: list[Text] = Field(default_factory=list)
    hash: Text | None = None  # the header that carries the user id
    percent: Annotated[Int, Field(ge=1, le=100)] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> CohortModel:
        ways = [k for k in ("header", "cookie", "hash") if getattr(self, k) is not None]
        hint = ("Write {header: X-User-Group, values: [beta]}, {cookie: NAME, values: [v]} "
                "or {hash: X-User-Id, percent: 10}")
        if len(ways) != 1:
            problem = ("a cohort needs header:, cookie: or hash:" if not ways else
                       f"a cohort is picked one way, not by {' and '.join(ways)}")
            raise PydanticCustomError("cohort", "{problem}", {"problem": problem, "hint": hint})
        if self.hash is not None and (self.percent is None or self.values):
            raise PydanticCustomError("cohort", "{problem}", {
                "problem": "a hash cohort takes percent: (the share of users), not values:",
                "hint": hint})
        if self.hash is None and (not self.values or self.percent is not None):
            raise PydanticCustomError("cohort", "{problem}", {
                "problem": f"a {ways[0]} cohort takes values: (who is in it), not percent:",
                "hint": hint})
        return self


def _batch(value: Any) -> Any:
    try:
        parse_min_up(value)
    except ValueError as exc:
        raise PydanticCustomError(
            "batch", "{problem}",
            {"problem": str(exc),
             "hint": "Write batch: 1 (servers per batch) or batch: 25% (a share of them)"},
        ) from None
    return value


class RollingModel(_Strict):
    """Strategy rolling: servers updated in place, `batch` at a time, the gates baking
    `bake` after each batch."""

    batch: Annotated[int | str, BeforeValidator(_batch)] = 1
    bake: Duration = 0.0


class WindowModel(_Strict):
    """When releases may start and advance by themselves: days and hours."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    days: Annotated[str | list[str], BeforeValidator(_scheduled(parse_days, "days: mon-fri"))]
    from_: Annotated[str, BeforeValidator(_scheduled(parse_clock, "from: '09:00'"))] = Field(
        alias="from")
    to: Annotated[str, BeforeValidator(_scheduled(parse_clock, "to: '17:00'"))]

    @model_validator(mode="after")
    def _ends_after_it_begins(self) -> WindowModel:
        start, end = parse_clock(self.from_), parse_clock(self.to)
        if start is None or (end is not None and end <= start):
            raise PydanticCustomError(
                "window", "{problem}",
                {"problem": f"the window ends ({self.to}) before it begins ({self.from_})",
                 "hint": "Write from: before to: on one day, e.g. from: '09:00', to: "
                         "'16:00' (to: '24:00' runs to midnight)"})
        return self


class FreezeModel(_Strict):
    """Dates (inclusive) when no release starts or advances by itself, and why."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: date = Field(alias="from")
    to: date
    reason: Text

    @model_validator(mode="after")
    def _ends_after_it_begins(self) -> FreezeModel:
        if self.to < self.from_:
            raise PydanticCustomError(
                "freeze", "{problem}",
                {"problem": f"the freeze ends ({self.to}) before it begins ({self.from_})",
                 "hint": "Write from: the first frozen day and to: the last"})
        return self


class RollbackModel(_Strict):
    retry_max: PositiveDuration = 30.0
    give_up: Duration = 600.0
    kill_flags: bool = False  # kill the release's flags first, then revert traffic


def _probe_url(value: Any) -> Any:
    # A dependency's health probe is fetched by `check --preflight`: it must be a link
    # an HTTP client can GET, written out in full.
    if not isinstance(value, str):
        return value
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in value.strip():
        raise PydanticCustomError(
            "url", "{problem}",
            {"problem": "must be an http:// or https:// link",
             "hint": "Write the health endpoint's full address, e.g. "
                     "http: 'https://inventory.internal/healthz'"},
        )
    return value.strip()


ProbeUrl = Annotated[str, BeforeValidator(_probe_url)]


class ContactModel(_Strict):
    """Someone who owns or has a stake in the release, and where to reach them."""

    name: Text
    slack: Text | None = None  # a channel (#payments-oncall) or a handle (@alice)
    email: Text | None = None
    pager: Text | None = None  # the pager service or rotation that pages them


class ApiChangeModel(_Strict):
    name: Text
    breaking: bool = False


class DependencyModel(_Strict):
    """A service that must already be deployed; one health probe says it is."""

    name: Text
    http: ProbeUrl | None = None
    promql: Text | None = None
    version: Text | None = None


class ChangesModel(_Strict):
    api: list[ApiChangeModel] = Field(default_factory=list)
    infrastructure: list[Text] = Field(default_factory=list)
    dependencies: list[DependencyModel] = Field(default_factory=list)


def _argv(value: Any) -> Any:
    # No shell runs a migration: a command line in one string would be one program name.
    hint = "Write the program and its arguments as a list, e.g. [alembic, upgrade, head]"
    if isinstance(value, str):
        raise PydanticCustomError(
            "argv", "{problem}",
            {"problem": "must be a list of arguments, not one string (no shell is used)",
             "hint": hint})
    if isinstance(value, list) and not value:
        raise PydanticCustomError(
            "argv", "{problem}", {"problem": "must name the program to run", "hint": hint})
    return value


Argv = Annotated[list[Text], BeforeValidator(_argv)]


class MigrationModel(_Strict):
    """One database migration: expand (before traffic moves) or contract (after promotion
    and release.contract_after); `check` verifies `up`, `down` is offered after a rollback."""

    name: Text
    phase: Literal["expand", "contract"]
    up: Argv
    down: Argv
    check: Argv
    timeout: PositiveDuration = 300.0


class ReleaseModel(_Strict):
    service: Text
    version: Text
    environment: Text
    strategy: Literal["canary", "blue-green", "rolling", "ab", "shadow"] = "canary"
    # Left out where the traffic provider's controller owns the plan (argo-rollouts),
    # and for strategy rolling (its steps are the batches).
    steps: list[StepModel] | None = None
    cohorts: dict[str, CohortModel] = Field(default_factory=dict)  # strategy ab
    rolling: RollingModel | None = None  # strategy rolling
    timezone: Annotated[str, BeforeValidator(_zone)] = "UTC"
    windows: list[WindowModel] = Field(default_factory=list)
    freeze: list[FreezeModel] = Field(default_factory=list)
    auto_advance: bool = False
    auto_rollback: bool = True
    poll_interval: PositiveDuration = 5.0
    stale_after: PositiveDuration | None = None
    call_timeout: PositiveDuration = 5.0
    production: bool | None = None
    flags: list[Text] = Field(default_factory=list)
    rollback: RollbackModel = Field(default_factory=RollbackModel)
    dashboard: Url | None = None
    owners: list[ContactModel] = Field(default_factory=list)
    stakeholders: list[ContactModel] = Field(default_factory=list)
    changes: ChangesModel = Field(default_factory=ChangesModel)
    migrations: list[MigrationModel] = Field(default_factory=list)
    # How long after promotion a contract migration waits (a rollback stays possible).
    contract_after: PositiveDuration = 3600.0


class ProviderModel(BaseModel):
    """One providers.<kind> block: `type` plus whatever the adapter reads (checked later)."""

    model_config = ConfigDict(extra="allow")
    type: Text


class ProvidersModel(_Strict):
    traffic: ProviderModel
    metrics: ProviderModel | None = None
    flags: ProviderModel | None = None


class VersionsModel(_Strict):
    canary: Text | None = None
    baseline: str = ""


class CountsModel(_Strict):
    """A metric as counters: events among total (errors among requests, say)."""

    events: Text
    total: Text


class HistogramModel(_Strict):
    """A latency metric as a histogram's `_bucket` series and the quantile it is about."""

    buckets: Text
    quantile: Annotated[Finite, Field(gt=0, lt=1)]


class MetricModel(_Strict):
    query: str = ""
    unit: str = ""
    dashboard: Url | None = None
    counts: CountsModel | None = None
    histogram: HistogramModel | None = None


def parse_min_up(value: Any) -> tuple[float, bool]:
    """`min_up: 2` (servers) or `min_up: 66%` (a share): (number, is_share), the share
    as 0..1. Raises ValueError with the problem in words."""
    if isinstance(value, bool):
        raise ValueError("must be a count of servers or a share like 66%, not true/false")
    if isinstance(value, int):
        if value < 1:
            raise ValueError("must be at least 1 server")
        return float(value), False
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1])
        except ValueError:
            raise ValueError("must be a share like 66%") from None
        if not 0 < share <= 100:
            raise ValueError("must be a share above 0% and at most 100%")
        return share / 100, True
    raise ValueError("must be a count of servers (2) or a share (66%)")


def _min_up(value: Any) -> Any:
    try:
        parse_min_up(value)
    except ValueError as exc:
        raise PydanticCustomError(
            "min_up", "{problem}",
            {"problem": str(exc), "hint": "Write min_up: 2 (servers up) or min_up: 66%"},
        ) from None
    return value


class GateModel(_Strict):
    metric: Text | None = None
    max: Finite | None = None
    min: Finite | None = None
    max_increase: Finite | None = None
    max_ratio: Annotated[Finite, Field(gt=0)] | None = None
    max_decrease: Annotated[Finite, Field(ge=0)] | None = None
    min_ratio: Annotated[Finite, Field(gt=0)] | None = None
    alpha: Annotated[Finite, Field(gt=0, lt=0.5)] = 0.01
    health: Literal["canary"] | None = None
    min_up: Annotated[int | str, BeforeValidator(_min_up)] | None = None
    failure_limit: Int = Field(default=1, ge=1)
    inconclusive_limit: Int = Field(default=6, ge=1)


class UIModel(_Strict):
    theme: Text | None = None


class StateModel(_Strict):
    dir: Text | None = None


class FlagsAuditModel(_Strict):
    lifetime_days: dict[str, Annotated[Days | None, BeforeValidator(_never)]] = Field(
        default_factory=dict
    )
    stale_full_on_days: Days = 14.0
    naming: str | None = None


class GatesFromModel(_Strict):
    """Gates imported from an Argo Rollouts AnalysisTemplate: one of the three sources."""

    analysis_template: Text | None = None  # in the Rollout's namespace, read from the cluster
    cluster_analysis_template: Text | None = None
    file: Text | None = None  # a template's YAML, beside the config (checkable offline)
    args: dict[str, Text] = Field(default_factory=dict)  # what the Rollout passes


class NotifyModel(_Strict):
    """One notify: entry; its type, events and URL are checked in config/notify.py."""

    type: Text  # slack | webhook
    url: Text
    headers: dict[str, str] = Field(default_factory=dict)
    hmac_secret: Text | None = None
    events: list[Text] | None = None  # None: every event
    timeout: PositiveDuration = 5.0


class RootModel(_Strict):
    release: ReleaseModel
    providers: ProvidersModel
    gates_from: GatesFromModel | None = None
    versions: VersionsModel = Field(default_factory=VersionsModel)
    metrics: dict[str, MetricModel] = Field(default_factory=dict)
    gates: list[GateModel] = Field(default_factory=list)
    ui: UIModel = Field(default_factory=UIModel)
    state: StateModel = Field(default_factory=StateModel)
    flags_audit: FlagsAuditModel = Field(default_factory=FlagsAuditModel)
    notify: list[NotifyModel] = Field(default_factory=list)


# Which model a mapping at a key path is validated by.
MODELS: dict[tuple[str, ...], type[BaseModel]] = {
    (): RootModel,
    ("release",): ReleaseModel,
    ("release", "steps", "*"): StepModel,
    ("release", "windows", "*"): WindowModel,
    ("release", "freeze", "*"): FreezeModel,
    ("release", "rollback"): RollbackModel,
    ("release", "owners", "*"): ContactModel,
    ("release", "stakeholders", "*"): ContactModel,
    ("release", "changes"): ChangesModel,
    ("release", "changes", "api", "*"): ApiChangeModel,
    ("release", "changes", "dependencies", "*"): DependencyModel,
    ("release", "migrations", "*"): MigrationModel,
    ("providers",): ProvidersModel,
    ("versions",): VersionsModel,
    ("metrics", "*"): MetricModel,
    ("metrics", "*", "counts"): CountsModel,
    ("metrics", "*", "histogram"): HistogramModel,
    ("gates", "*"): GateModel,
    ("gates_from",): GatesFromModel,
    ("ui",): UIModel,
    ("state",): StateModel,
    ("flags_audit",): FlagsAuditModel,
    ("notify", "*"): NotifyModel,
}

# Text values that YAML may have read as a number, date or boolean ("2.10", 2024-05-01).
TEXT_PATHS: tuple[tuple[str, ...], ...] = (
    ("release", "windows", "*", "from"),
    ("release", "windows", "*", "to"),
    ("release", "steps", "*", "at"),
    ("release", "timezone"),
    ("release", "freeze", "*", "reason"),
    ("release", "service"),
    ("release", "version"),
    ("release", "environment"),
    ("release", "flags", "*"),
    ("providers", "*", "type"),
    ("versions", "canary"),
    ("versions", "baseline"),
    ("metrics", "*", "query"),
    ("metrics", "*", "unit"),
    ("metrics", "*", "dashboard"),
    ("metrics", "*", "counts", "events"),
    ("metrics", "*", "counts", "total"),
    ("metrics", "*", "histogram", "buckets"),
    ("release", "dashboard"),
    ("release", "owners", "*", "name"),
    ("release", "owners", "*", "pager"),
    ("release", "stakeholders", "*", "name"),
    ("release", "stakeholders", "*", "pager"),
    ("release", "changes", "api", "*", "name"),
    ("release", "changes", "infrastructure", "*"),
    ("release", "changes", "dependencies", "*", "name"),
    ("release", "changes", "dependencies", "*", "version"),
    ("release", "migrations", "*", "name"),
    ("release", "migrations", "*", "up", "*"),
    ("release", "migrations", "*", "down", "*"),
    ("release", "migrations", "*", "check", "*"),
    ("gates", "*", "metric"),
    ("gates_from", "analysis_template"),
    ("gates_from", "cluster_analysis_template"),
    ("gates_from", "file"),
    ("gates_from", "args", "*"),
    ("ui", "theme"),
    ("state", "dir"),
    ("flags_audit", "naming"),
    # Secrets among them: a number YAML read is given back as text, never quoted in an error.
    ("notify", "*", "type"),
    ("notify", "*", "url"),
    ("notify", "*", "hmac_secret"),
    ("notify", "*", "headers", "*"),
    ("notify", "*", "events", "*"),
)

# Sections and lists that may be written empty (`gates:` with every entry commented out).
MAY_BE_EMPTY: tuple[tuple[str, ...], ...] = (
    ("versions",),
    ("metrics",),
    ("gates",),
    ("ui",),
    ("state",),
    ("release", "flags"),
    ("release", "rollback"),
    ("flags_audit",),
    ("flags_audit", "lifetime_days"),
    ("notify",),
    ("release", "owners"),
    ("release", "stakeholders"),
    ("release", "changes"),
    ("release", "changes", "api"),
    ("release", "changes", "infrastructure"),
    ("release", "changes", "dependencies"),
    ("release", "migrations"),
)

# One-line examples used in hints.
EXAMPLES: dict[tuple[str, ...], str] = {
    ("release",): "release: {service: checkout-api, version: 2.3.0, environment: production, "
    "steps: [...]}",
    ("release", "service"): "service: checkout-api",
    ("release", "version"): "version: 2.3.0",
    ("release", "environment"): "environment: production",
    ("release", "steps"): "steps: [{weight: 10, bake: 2m}, {weight: 100}]",
    ("release", "steps", "*"): "- {weight: 10, bake: 2m}",
    ("release", "steps", "*", "weight"): "weight: 10",
    ("release", "windows"): "windows: [{days: mon-fri, from: '09:00', to: '16:00'}]",
    ("release", "windows", "*"): "- {days: mon-fri, from: '09:00', to: '16:00'}",
    ("release", "freeze"): "freeze: [{from: 2026-12-19, to: 2027-01-04, reason: year-end}]",
    ("release", "freeze", "*"): "- {from: 2026-12-19, to: 2027-01-04, reason: year-end}",
    ("release", "timezone"): "timezone: Europe/Berlin",
    ("release", "flags"): "flags: [checkout-new-pricing-release]",
    ("release", "rollback"): "rollback: {retry_max: 30s, give_up: 10m, kill_flags: true}",
    ("release", "owners"): "owners: [{name: Alice Chen, slack: '@alice', pager: payments-oncall}]",
    ("release", "owners", "*"): "- {name: Alice Chen, slack: '@alice', pager: payments-oncall}",
    ("release", "stakeholders"): "stakeholders: [{name: Support, slack: '#support'}]",
    ("release", "stakeholders", "*"): "- {name: Support, slack: '#support'}",
    ("release", "changes"): "changes: {api: [{name: POST /v2/quote, breaking: false}], "
    "infrastructure: [new Redis cache], dependencies: [{name: pricing-api, "
    "http: 'https://pricing.internal/healthz', version: 4.1.0}]}",
    ("release", "changes", "api", "*"): "- {name: POST /v2/quote, breaking: false}",
    ("release", "changes", "dependencies", "*"): "- {name: pricing-api, "
    "http: 'https://pricing.internal/healthz', version: 4.1.0}",
    ("release", "changes", "dependencies", "*", "http"): "http: 'https://pricing.internal/healthz'",
    ("release", "migrations"): "migrations: [{name: add-email-index, phase: expand, "
    "up: [alembic, upgrade, '+1'], down: [alembic, downgrade, '-1'], "
    "check: [./check-index.sh]}]",
    ("release", "migrations", "*"): "- {name: add-email-index, phase: expand, "
    "up: [alembic, upgrade, '+1'], down: [alembic, downgrade, '-1'], "
    "check: [./check-index.sh]}",
    ("release", "migrations", "*", "phase"): "phase: expand",
    ("release", "migrations", "*", "up"): "up: [alembic, upgrade, '+1']",
    ("release", "migrations", "*", "down"): "down: [alembic, downgrade, '-1']",
    ("release", "migrations", "*", "check"): "check: [./check-index.sh]",
    ("release", "migrations", "*", "timeout"): "timeout: 5m",
    ("release", "contract_after"): "contract_after: 1h",
    ("providers",): "providers: {traffic: {type: sim}}",
    ("providers", "*"): "{type: sim}",
    ("providers", "traffic"): "traffic: {type: sim}",
    ("providers", "*", "type"): "type: sim",
    ("versions",): "versions: {canary: 2.3.0, baseline: 2.2.1}",
    ("metrics",): "metrics: {error_rate: {query: '...', unit: ratio}}",
    ("metrics", "*"): "error_rate: {query: '...', unit: ratio}",
    ("metrics", "*", "counts"): "counts: {events: 'http_requests_total{version=\"{{version}}\","
    "code=~\"5..\"}', total: 'http_requests_total{version=\"{{version}}\"}'}",
    ("metrics", "*", "histogram"): "histogram: {buckets: 'http_request_duration_seconds_bucket"
    "{version=\"{{version}}\"}', quantile: 0.99}",
    ("metrics", "*", "histogram", "quantile"): "quantile: 0.99",
    ("gates",): "gates: [{metric: error_rate, max: 0.01}]",
    ("gates", "*"): "- {metric: error_rate, max: 0.01}",
    ("gates", "*", "metric"): "metric: error_rate",
    ("gates_from",): "gates_from: {analysis_template: success-rate}",
    ("gates_from", "file"): "file: analysis-template.yaml",
    ("gates", "*", "alpha"): "alpha: 0.01",
    ("gates", "*", "min_up"): "min_up: 2",
    ("gates", "*", "health"): "health: canary",
    ("release", "dashboard"): "dashboard: 'https://grafana.example.com/d/abc?var-version={{version}}'",
    ("metrics", "*", "dashboard"): "dashboard: 'https://grafana.example.com/d/abc?viewPanel=2'",
    ("ui",): "ui: {theme: dark}",
    ("state",): "state: {dir: ./state}",
    ("flags_audit",): "flags_audit: {lifetime_days: {release: 40}, stale_full_on_days: 14}",
    ("flags_audit", "lifetime_days"): "lifetime_days: {release: 40, operational: 7}",
    ("flags_audit", "lifetime_days", "*"): "release: 40",
    ("flags_audit", "stale_full_on_days"): "stale_full_on_days: 14",
    ("notify",): "notify: [{type: slack, url: 'env:RELCONSOLE_SLACK_WEBHOOK'}]",
    ("notify", "*"): "- {type: webhook, url: 'https://hooks.example.com/relconsole', "
    "hmac_secret: 'env:RELCONSOLE_WEBHOOK_SECRET'}",
    ("notify", "*", "type"): "type: slack",
    ("notify", "*", "url"): "url: 'env:RELCONSOLE_SLACK_WEBHOOK'",
    ("notify", "*", "headers"): "headers: {Authorization: 'env:RELCONSOLE_WEBHOOK_AUTH'}",
    ("notify", "*", "events"): "events: [rolled_back, rollback_failed, promoted]",
    ("notify", "*", "timeout"): "timeout: 5s",
}


def matches(pattern: tuple[str, ...], path: KeyPath) -> bool:
    return len(pattern) == len(path) and all(
        p == "*" or p == k for p, k in zip(pattern, path, strict=True)
    )


def lookup(table: dict[tuple[str, ...], Any], path: KeyPath) -> Any:
    """The entry of a key-path table that matches `path`, or None."""
    for pattern, value in table.items():
        if matches(pattern, path):
            return value
    return None


@cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    # The field's type with its constraints and validators, built at run time.
    field_type: Any = Annotated[info.annotation, info]
    return TypeAdapter(field_type)


def valid_fields(model: type[BaseModel], raw: object) -> dict[str, Any]:
    """The fields of `raw` that are valid on their own, plus defaults for those left out.

    A model with one bad field is not valid, but its other fields still are; the
    cross-field rules use them to find more problems in the same pass.
    """
    if not isinstance(raw, dict):
        return {}
    found: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name not in raw:
            if not info.is_required():
                found[name] = info.get_default(call_default_factory=True)
            continue
        try:
            found[name] = _field_adapter(model, name).validate_python(raw[name])
        except ValidationError:
            continue
    return found
