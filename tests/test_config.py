"""Configuration: the example file, durations, one clear error per bad file, secrets."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from keyring.backend import KeyringBackend

from relconsole.config import (
    ApiChangeModel,
    ChangesModel,
    CohortModel,
    ConfigError,
    ContactModel,
    DependencyModel,
    FreezeModel,
    GateModel,
    GatesFromModel,
    MetricModel,
    MigrationModel,
    NotifyModel,
    ProvidersModel,
    ReleaseModel,
    RollbackModel,
    RollingModel,
    RootModel,
    Secret,
    StateModel,
    StepModel,
    UIModel,
    VersionsModel,
    WindowModel,
    load_config,
    parse_duration,
    resolve_secret,
)
from relconsole.model import GateSpec, MetricSpec, Step

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.yaml"

SECRET_VALUE = "s3cr3t-Hunter2-do-not-print"

# A small valid file; tests append to it or write their own.
MINIMAL = """\
release:
  service: api
  version: 1.0.0
  environment: staging
  steps:
    - {weight: 10, bake: 1m}
    - {weight: 100}
providers:
  traffic: {type: sim}
"""


def write(tmp_path: Path, text: str, name: str = "relconsole.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(path: Path, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)
    return info.value


# --------------------------------------------------------------------------- the example


def test_example_file_loads_with_the_documented_plan() -> None:
    cfg = load_config(EXAMPLE)
    plan = cfg.plan
    assert (plan.service, plan.version, plan.environment) == ("checkout-api", "2.3.0", "production")
    assert plan.strategy == "canary"
    assert plan.steps == (
        Step(weight=1, bake=30.0),
        Step(weight=10, bake=120.0),
        Step(weight=50, bake=300.0),
        Step(weight=100, bake=0.0),
    )
    assert plan.poll_interval == 5.0
    assert plan.auto_advance is False
    assert plan.auto_rollback is True
    assert plan.production is True
    assert plan.baseline_version == "2.2.1"
    assert cfg.versions == {"canary": "2.3.0", "baseline": "2.2.1"}
    assert plan.release_flags == ("checkout-new-pricing-release", "checkout-pricing-killswitch")
    assert [(m.name, m.unit) for m in plan.metrics] == [
        ("error_rate", "ratio"),
        ("latency_p50", "seconds"),
        ("latency_p95", "seconds"),
        ("latency_p99", "seconds"),
    ]
    for metric in plan.metrics:
        assert "{{version}}" in metric.query
    assert "histogram_quantile(0.99" in plan.metrics[3].query
    assert plan.gates == (
        GateSpec(metric="error_rate", max=0.01, max_increase=0.005, failure_limit=2),
        GateSpec(metric="latency_p99", max_ratio=1.3, failure_limit=2),
    )
    assert cfg.providers == {
        "metrics": {"type": "sim", "scenario": "healthy", "seed": 7},
        "traffic": {"type": "sim"},
        "flags": {"type": "sim"},
    }
    assert cfg.theme is None
    assert cfg.state_dir is None


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    models = (
        RootModel,
        ReleaseModel,
        StepModel,
        CohortModel,
        RollingModel,
        RollbackModel,
        ProvidersModel,
        VersionsModel,
        MetricModel,
        GateModel,
        GatesFromModel,
        WindowModel,
        FreezeModel,
        UIModel,
        StateModel,
        ContactModel,
        ChangesModel,
        ApiChangeModel,
        DependencyModel,
        NotifyModel,
        MigrationModel,
    )
    undocumented = [
        f"{model.__name__}.{name}"
        for model in models
        for name in (info.alias or key for key, info in model.model_fields.items())
        if not re.search(rf"#.*\b{name}\b", text)
    ]
    assert undocumented == []
    for form in ("env:", "keyring:", "type: prometheus", "type: haproxy", "type: flagd"):
        assert form in text
    for theme in ("dark", "light", "high-contrast", "ansi"):
        assert theme in text


def _uncomment(text: str, prefix: str) -> str:
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    assert len(hits) == 1, f"expected one line starting {prefix!r} in config.example.yaml"
    line = lines[hits[0]]
    indent = len(line) - len(line.lstrip())
    lines[hits[0]] = line[:indent] + line[indent + 2 :]  # drop "# "
    return "".join(lines)


def test_example_commented_settings_are_valid_when_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    for prefix in (
        "  # stale_after:",
        "  # call_timeout:",
        "  # production:",
        "  # rollback:",
        "  #   retry_max:",
        "  #   give_up:",
        "# ui:",
        "#   theme:",
        "# state:",
        "#   dir:",
    ):
        text = _uncomment(text, prefix)
    cfg = load_config(write(tmp_path, text))
    assert cfg.plan.stale_after == 15.0
    assert cfg.plan.rollback_retry_max == 30.0
    assert cfg.plan.rollback_give_up == 600.0
    assert cfg.theme == "dark"
    assert cfg.state_dir == tmp_path / ".relconsole"


@pytest.mark.parametrize(
    ("kind", "provider_type"),
    [
        ("metrics", "prometheus"),
        ("traffic", "haproxy"),
        ("flags", "flagd"),
    ],
)
def test_example_commented_provider_blocks_are_valid(
    tmp_path: Path, kind: str, provider_type: str
) -> None:
    text = EXAMPLE.read_text()
    commented = re.search(rf"^  # ({kind}: \{{type: {provider_type}\b.*)$", text, re.M)
    assert commented, f"no commented {kind}: {{type: {provider_type}}} example"
    active = re.search(rf"^  {kind}: .*$", text, re.M)
    if active:
        text = text.replace(active.group(0), "  " + commented.group(1), 1)
    else:
        text = text.replace(
            "  traffic: {type: sim}\n", "  traffic: {type: sim}\n  " + commented.group(1) + "\n", 1
        )
    cfg = load_config(write(tmp_path, text), resolve_secrets=False)
    assert cfg.providers[kind]["type"] == provider_type


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("1.5m", 90.0),
        ("1m30s", 90.0),
        ("1d", 86400.0),
        (" 10s ", 10.0),
        ("45", 45.0),
        (90, 90.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "5 minutes", "abc", "s", "10x", "30m1h", "1h1h", "-5s", -1, True, float("nan"), "1h30"],
)
def test_parse_duration_rejects_bad_text_with_a_clear_message(text: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)  # type: ignore[arg-type]
    message = str(info.value)
    assert message
    assert "Traceback" not in message
    # The message either shows how to write one or says what is wrong with the sign.
    assert "30s" in message or "1h30m" in message or "0 or more" in message


# --------------------------------------------------------------------------- bad files
#
# Each case is (id, file text, key, fragments of the message). The offending line is marked
# with "# <-" in the file itself; files whose problem has no line mark nothing.

BAD_FILES = [
    (
        "unknown-key",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          stratgy: canary  # <-
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim}
        """,
        "release.stratgy",
        ["unknown key 'stratgy'", "Did you mean 'strategy'?"],
    ),
    (
        "unknown-section",
        MINIMAL + "gate:  # <-\n  - {metric: error_rate, max: 0.01}\n",
        "gate",
        ["unknown key 'gate'", "Did you mean 'gates'?"],
    ),
    (
        "wrong-type",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps:
            - {weight: ten, bake: 1m}  # <-
            - {weight: 100}
        providers:
          traffic: {type: sim}
        """,
        "release.steps[0].weight",
        ["must be a whole number", "'ten'"],
    ),
    (
        "boolean-where-number",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps:
            - weight: true  # <-
            - weight: 100
        providers:
          traffic: {type: sim}
        """,
        "release.steps[0].weight",
        ["must be a number, not true/false"],
    ),
    (
        "weight-out-of-range",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps:
            - {weight: 10}
            - {weight: 150}  # <-
        providers:
          traffic: {type: sim}
        """,
        "release.steps[1].weight",
        ["between 0 and 100", "150"],
    ),
    (
        "missing-required-key",
        """\
        release:  # <-
          version: 1.0.0
          environment: staging
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim}
        """,
        "release.service",
        ["required key 'service' is missing", "service: checkout-api"],
    ),
    (
        "duplicate-key",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          version: 1.0.1  # <-
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim}
        """,
        "release.version",
        ["duplicate key 'version'", "first at line 3"],
    ),
    (
        "bad-duration",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps:
            - {weight: 10, bake: 5 minutes}  # <-
            - {weight: 100}
        providers:
          traffic: {type: sim}
        """,
        "release.steps[0].bake",
        ["'5 minutes' is not a duration", "30s"],
    ),
    (
        "zero-poll-interval",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          poll_interval: 0s  # <-
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim}
        """,
        "release.poll_interval",
        ["greater than 0"],
    ),
    (
        "weights-not-increasing",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps:
            - {weight: 10}
            - {weight: 50}
            - {weight: 50}  # <-
            - {weight: 100}
        providers:
          traffic: {type: sim}
        """,
        "release.steps[2].weight",
        ["weights must increase (50 after 50)", "larger than the one before"],
    ),
    (
        "last-weight-not-100",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps:
            - {weight: 10}
            - {weight: 90}  # <-
        providers:
          traffic: {type: sim}
        """,
        "release.steps[1].weight",
        ["last step", "100", "(it is 90)"],
    ),
    (
        "no-steps",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps: []  # <-
        providers:
          traffic: {type: sim}
        """,
        "release.steps",
        ["no steps", "weight: 100"],
    ),
    (
        "steps-not-a-list",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps: fast  # <-
        providers:
          traffic: {type: sim}
        """,
        "release.steps",
        ["must be a list", "'fast'"],
    ),
    (
        "unknown-strategy",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          strategy: blue_green  # <-
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim}
        """,
        "release.strategy",
        ["'blue_green' is not allowed", "Did you mean 'blue-green'?", "canary"],
    ),
    (
        "gate-unknown-metric",
        MINIMAL
        + "  metrics: {type: sim}\n"
        + "metrics:\n"
        + "  error_rate: {unit: ratio}\n"
        + "  latency_p99: {unit: seconds}\n"
        + "gates:\n"
        + "  - {metric: error_rate, max: 0.01}\n"
        + "  - {metric: latency_p95, max: 0.5}  # <-\n",
        "gates[1].metric",
        ["unknown metric 'latency_p95'", "Known metrics: error_rate, latency_p99"],
    ),
    (
        "gate-without-threshold",
        MINIMAL
        + "  metrics: {type: sim}\n"
        + "metrics:\n"
        + "  error_rate: {unit: ratio}\n"
        + "gates:\n"
        + "  - metric: error_rate  # <-\n"
        + "    failure_limit: 2\n",
        "gates[0]",
        ["has no threshold", "max, min, max_increase, max_ratio"],
    ),
    (
        "gate-min-above-max",
        MINIMAL
        + "  metrics: {type: sim}\n"
        + "metrics:\n"
        + "  error_rate: {unit: ratio}\n"
        + "gates:\n"
        + "  - metric: error_rate\n"
        + "    max: 0.01\n"
        + "    min: 0.5  # <-\n",
        "gates[0].min",
        ["min (0.5) is above max (0.01)"],
    ),
    (
        "gates-without-metrics-provider",
        MINIMAL
        + "metrics:\n"
        + "  error_rate: {unit: ratio}\n"
        + "gates:  # <-\n"
        + "  - {metric: error_rate, max: 0.01}\n",
        "gates",
        ["no metrics provider", "providers.metrics"],
    ),
    (
        "missing-traffic-provider",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps: [{weight: 100}]
        providers:  # <-
          metrics: {type: sim}
        """,
        "providers.traffic",
        ["required key 'traffic' is missing", "traffic: {type: sim}"],
    ),
    (
        "unknown-provider-kind",
        MINIMAL + "  metric: {type: sim}  # <-\n",
        "providers.metric",
        ["unknown key 'metric'", "Did you mean 'metrics'?"],
    ),
    (
        "provider-without-type",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps: [{weight: 100}]
        providers:
          traffic:  # <-
            socket: /run/haproxy/admin.sock
        """,
        "providers.traffic.type",
        ["required key 'type' is missing", "type: sim"],
    ),
    (
        "env-secret-unset",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim}
          metrics:
            type: prometheus
            url: http://127.0.0.1:9090
            token: env:RELCONSOLE_TEST_SURELY_UNSET  # <-
        """,
        "providers.metrics.token",
        ["RELCONSOLE_TEST_SURELY_UNSET is not set", "Export RELCONSOLE_TEST_SURELY_UNSET"],
    ),
    (
        "unknown-secret-scheme",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim}
          metrics:
            type: prometheus
            headers:
              Authorization: "vault:secret/prometheus"  # <-
        """,
        "providers.metrics.headers.Authorization",
        ["unknown secret scheme 'vault:'", "env:VAR", "keyring:SERVICE/NAME"],
    ),
    (
        "invalid-yaml",
        """\
        release:
          service: api
          version: [1.0.0
          environment: staging  # <-
        providers:
          traffic: {type: sim}
        """,
        "",
        ["invalid YAML", "expected ',' or ']'"],
    ),
    (
        "tab-indentation",
        "release:\n\tservice: api  # <-\n",
        "",
        ["invalid YAML", "tab", "spaces"],
    ),
    (
        "top-level-not-a-mapping",
        """\
        - release  # <-
        - providers
        """,
        "",
        ["top level must be a mapping", "not a list"],
    ),
    (
        "missing-section",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps: [{weight: 100}]
        """,
        "providers",
        ["required section 'providers' is missing", "traffic: {type: sim}"],
    ),
    (
        "stale-shorter-than-poll",
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          poll_interval: 10s
          stale_after: 5s  # <-
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim}
        """,
        "release.stale_after",
        ["shorter than poll_interval"],
    ),
    (
        "empty-file",
        "# nothing here yet\n",
        "",
        ["the file is empty", "config.example.yaml"],
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "fragments"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_file_gives_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str, fragments: list[str]
) -> None:
    monkeypatch.delenv("RELCONSOLE_TEST_SURELY_UNSET", raising=False)
    text = textwrap.dedent(text)
    marked = [n for n, line in enumerate(text.splitlines(), start=1) if "# <-" in line]
    expected_line = marked[0] if marked else None
    path = write(tmp_path, text, name="release-42.yaml")

    err = load_error(path)

    assert err.path == path
    assert err.line == expected_line
    assert err.key == key
    message = str(err)
    location = f"{path}:{expected_line}: " if expected_line else f"{path}: "
    assert message.startswith(location + (f"{key}: " if key else ""))
    assert "release-42.yaml" in message
    for fragment in fragments:
        assert fragment in message
    assert err.problem and err.hint
    assert "\n" not in message
    # never a pydantic dump or a Python traceback
    for leak in ("validation error", "errors.pydantic.dev", "Input should", "Traceback", "type="):
        assert leak not in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    err = load_error(path)
    assert err.line is None
    assert str(err).startswith(f"{path}: file not found.")
    assert "-c" in err.hint


def test_first_error_by_line_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          auto_advance: maybe
          steps:
            - {weight: 10, bake: forever}
            - {weight: 100}
        providers:
          traffic: {type: sim}
        """,
    )
    err = load_error(path)
    assert (err.line, err.key) == (5, "release.auto_advance")
    assert "must be true or false" in err.problem


def test_error_format_is_one_line_with_file_line_key_problem_and_hint() -> None:
    err = ConfigError(
        Path("relconsole.yaml"),
        14,
        "release.steps[2].weight",
        "weights must increase (50 after 50)",
        "Make each step's weight larger than the one before.",
    )
    assert str(err) == (
        "relconsole.yaml:14: release.steps[2].weight: weights must increase (50 after 50). "
        "Make each step's weight larger than the one before."
    )


# --------------------------------------------------------------------------- values and defaults


def test_defaults_and_derived_values(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    plan = cfg.plan
    assert plan.strategy == "canary"
    assert plan.production is False  # environment is "staging"
    assert plan.stale_after is None and plan.effective_stale_after == 15.0
    assert plan.call_timeout == 5.0
    assert (plan.rollback_retry_max, plan.rollback_give_up) == (30.0, 600.0)
    assert plan.metrics == () and plan.gates == () and plan.release_flags == ()
    assert cfg.versions == {"canary": "1.0.0", "baseline": ""}
    assert cfg.providers == {"traffic": {"type": "sim"}}


def test_values_yaml_would_misread_keep_their_text(tmp_path: Path) -> None:
    text = MINIMAL.replace("version: 1.0.0", "version: 2.10") + "versions: {baseline: 2.9}\n"
    cfg = load_config(write(tmp_path, text))
    assert cfg.plan.version == "2.10"  # not the float 2.1
    assert cfg.versions == {"canary": "2.10", "baseline": "2.9"}


def test_production_flag(tmp_path: Path) -> None:
    prod = MINIMAL.replace("environment: staging", "environment: prod")
    assert load_config(write(tmp_path, prod, "a.yaml")).plan.production is True
    override = prod.replace("environment: prod\n", "environment: prod\n  production: false\n")
    assert load_config(write(tmp_path, override, "b.yaml")).plan.production is False


def test_durations_bare_numbers_and_empty_sections(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace("bake: 1m", "bake: 90")
        + "  metrics: {type: sim}\nmetrics:\n  error_rate:\n  latency_p99:\ngates:\nui:\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.plan.steps[0] == Step(weight=10, bake=90.0)
    assert cfg.plan.metrics == (MetricSpec("error_rate"), MetricSpec("latency_p99"))
    assert cfg.plan.gates == ()


def test_state_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    cfg = load_config(write(sub, MINIMAL + "state: {dir: run/state}\n"))
    assert cfg.state_dir == sub / "run" / "state"


def test_line_of_and_error_for_adapters() -> None:
    cfg = load_config(EXAMPLE)
    lines = EXAMPLE.read_text().splitlines()
    weight_line = cfg.line_of("release", "steps", 2, "weight")
    assert weight_line is not None and "{weight: 50" in lines[weight_line - 1]
    metrics_line = cfg.line_of("providers", "metrics")
    assert metrics_line is not None and lines[metrics_line - 1].startswith("  metrics: {type: sim")
    assert cfg.line_of("providers", "metrics", "url") is None

    # An adapter reports its own setting; a missing key points at its parent.
    err = cfg.error(("providers", "metrics", "url"), "url is required", "Add url: http://...")
    assert isinstance(err, ConfigError)
    assert str(err) == (
        f"{EXAMPLE}:{metrics_line}: providers.metrics.url: url is required. Add url: http://..."
    )


# --------------------------------------------------------------------------- secrets


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring. It has no `priority`, so keyring never picks it by itself."""

    def __init__(self, entries: dict[tuple[str, str], str] | None = None) -> None:
        super().__init__()
        self.entries = dict(entries or {})

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


class HangingKeyring(MemoryKeyring):
    """Like a locked Secret Service waiting for a prompt nobody will answer."""

    def get_password(self, service: str, username: str) -> str | None:
        time.sleep(30)
        return SECRET_VALUE


@pytest.fixture
def restore_keyring():
    before = keyring.get_keyring()
    yield
    keyring.set_keyring(before)


PROMETHEUS_WITH = """\
release:
  service: api
  version: 1.0.0
  environment: staging
  steps: [{{weight: 100}}]
providers:
  traffic: {{type: sim}}
  metrics:
    type: prometheus
    url: http://127.0.0.1:9090
    token: "{ref}"
"""
TOKEN_LINE = 11


def assert_no_secret(*objects: object) -> None:
    for obj in objects:
        assert SECRET_VALUE not in str(obj)
        assert SECRET_VALUE not in repr(obj)


def test_env_secret_resolves_and_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELCONSOLE_TEST_TOKEN", SECRET_VALUE)
    text = PROMETHEUS_WITH.format(ref="env:RELCONSOLE_TEST_TOKEN")
    text += "    headers: {Authorization: 'env:RELCONSOLE_TEST_TOKEN'}\n"
    cfg = load_config(write(tmp_path, text))

    token = cfg.providers["metrics"]["token"]
    assert isinstance(token, Secret)
    assert token.reveal() == SECRET_VALUE
    assert token.source == "env:RELCONSOLE_TEST_TOKEN"
    assert str(token) == repr(token) == f"{token}" == f"{token:>40}".strip() == "***"
    assert cfg.providers["metrics"]["headers"]["Authorization"].reveal() == SECRET_VALUE
    assert cfg.providers["metrics"]["url"] == "http://127.0.0.1:9090"
    assert_no_secret(cfg.providers, cfg, f"{cfg.providers}")
    # an adapter's later complaint about a setting does not carry the value either
    assert_no_secret(cfg.error(("providers", "metrics", "token"), "rejected", "Check it"))


def test_a_later_secret_error_does_not_show_an_earlier_resolved_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELCONSOLE_TEST_TOKEN", SECRET_VALUE)
    monkeypatch.delenv("RELCONSOLE_TEST_MISSING", raising=False)
    text = PROMETHEUS_WITH.format(ref="env:RELCONSOLE_TEST_TOKEN")
    text += "notify: [{type: slack, url: 'env:RELCONSOLE_TEST_MISSING'}]\n"
    err = load_error(write(tmp_path, text))
    assert err.key == "notify[0].url"
    assert "RELCONSOLE_TEST_MISSING" in str(err)
    assert_no_secret(err, err.args, err.__context__, err.__cause__)


@pytest.mark.parametrize(
    "providers",
    [
        f"  traffic: '{SECRET_VALUE}'\n",  # wrong type: pydantic's own error would quote it
        f"  traffic: {{type: sim, token: !vault {SECRET_VALUE}}}\n",  # YAML error quotes the line
    ],
    ids=["wrong-type", "yaml-tag"],
)
def test_errors_do_not_quote_values_under_providers(tmp_path: Path, providers: str) -> None:
    text = MINIMAL.replace("  traffic: {type: sim}\n", providers)
    err = load_error(write(tmp_path, text))
    assert err.line == 9
    assert err.key.startswith("providers.traffic")
    assert_no_secret(err, err.__context__, err.__cause__)


def test_unresolved_secrets_stay_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELCONSOLE_TEST_MISSING", raising=False)
    path = write(tmp_path, PROMETHEUS_WITH.format(ref="env:RELCONSOLE_TEST_MISSING"))
    cfg = load_config(path, resolve_secrets=False)
    assert cfg.providers["metrics"]["token"] == "env:RELCONSOLE_TEST_MISSING"


def test_keyring_without_backend_points_to_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_keyring: None
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.set_keyring(keyring.backends.fail.Keyring())
    path = write(tmp_path, PROMETHEUS_WITH.format(ref="keyring:relconsole/prometheus"))
    err = load_error(path)
    assert (err.line, err.key) == (TOKEN_LINE, "providers.metrics.token")
    assert "no keyring backend" in err.problem
    assert "env:RELCONSOLE_PROMETHEUS_TOKEN" in err.hint


def test_keyring_without_the_entry_points_to_env(tmp_path: Path, restore_keyring: None) -> None:
    keyring.set_keyring(MemoryKeyring())
    err = load_error(write(tmp_path, PROMETHEUS_WITH.format(ref="keyring:relconsole/prometheus")))
    assert (err.line, err.key) == (TOKEN_LINE, "providers.metrics.token")
    assert "no password for service 'relconsole', name 'prometheus'" in err.problem
    assert "keyring set relconsole prometheus" in err.hint
    assert "env:RELCONSOLE_PROMETHEUS_TOKEN" in err.hint


def test_keyring_secret_resolves(tmp_path: Path, restore_keyring: None) -> None:
    keyring.set_keyring(MemoryKeyring({("relconsole", "prometheus"): SECRET_VALUE}))
    cfg = load_config(write(tmp_path, PROMETHEUS_WITH.format(ref="keyring:relconsole/prometheus")))
    token = cfg.providers["metrics"]["token"]
    assert token.reveal() == SECRET_VALUE
    assert token.source == "keyring:relconsole/prometheus"
    assert_no_secret(cfg.providers, cfg)


def test_hanging_keyring_fails_within_the_timeout(tmp_path: Path, restore_keyring: None) -> None:
    keyring.set_keyring(HangingKeyring())
    path = write(tmp_path, PROMETHEUS_WITH.format(ref="keyring:relconsole/prometheus"))
    started = time.monotonic()
    err = load_error(path, secret_timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3.0
    assert "did not answer within 0.5s" in err.problem
    assert "env:RELCONSOLE_PROMETHEUS_TOKEN" in err.hint
    assert_no_secret(err)


def test_resolve_secret_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELCONSOLE_TEST_TOKEN", SECRET_VALUE)
    secret = resolve_secret("env:RELCONSOLE_TEST_TOKEN")
    assert secret.reveal() == SECRET_VALUE
    assert_no_secret(secret, [secret], {"token": secret})

    with pytest.raises(ConfigError, match="unknown secret scheme 'vault:'"):
        resolve_secret("vault:secret/x")
    with pytest.raises(ConfigError, match="keyring:SERVICE/NAME"):
        resolve_secret("keyring:no-slash")
    monkeypatch.delenv("RELCONSOLE_TEST_TOKEN")
    with pytest.raises(ConfigError, match="RELCONSOLE_TEST_TOKEN is not set"):
        resolve_secret("env:RELCONSOLE_TEST_TOKEN")


def test_urls_and_addresses_are_not_taken_for_secrets(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "traffic: {type: sim}",
        "traffic: {type: haproxy, url: 'http://lb:8404', socket: 'unix:/run/h.sock', "
        "addr: 'envoy:8080'}",
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.providers["traffic"] == {
        "type": "haproxy",
        "url": "http://lb:8404",
        "socket": "unix:/run/h.sock",
        "addr": "envoy:8080",
    }
