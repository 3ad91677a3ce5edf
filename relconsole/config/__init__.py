"""Typed configuration: read one YAML file, validate it, resolve its secrets.

Every problem with a file becomes one `ConfigError` naming the file, the line, the
dotted key, what is wrong and what to do about it — never a traceback and never a
pydantic dump. `load_config(path, collect=True)` reports every problem at once.

The package, by job: `yaml_lines` (YAML with the line of every key), `schema` (the
pydantic models), `explain` (their errors in words), `rules` (checks between
fields), `provider_blocks` (secrets and type names under providers:), `errors` and
`load`. Secrets and durations live outside it, in `relconsole.secrets` and
`relconsole.durations`, so that providers can use them without pydantic or YAML.

No I/O here beyond reading the file and resolving secrets.
"""

from __future__ import annotations

from relconsole.config.errors import ConfigError, ConfigProblems, KeyPath, format_key
from relconsole.config.load import LoadedConfig, load_config, to_plan
from relconsole.config.provider_blocks import resolve_secret
from relconsole.config.schema import (
    PRODUCTION_NAMES,
    PROVIDER_KINDS,
    STRATEGIES,
    THRESHOLDS,
    ApiChangeModel,
    ChangesModel,
    CohortModel,
    ContactModel,
    DependencyModel,
    FlagsAuditModel,
    FreezeModel,
    GateModel,
    GatesFromModel,
    MetricModel,
    MigrationModel,
    NotifyModel,
    ProviderModel,
    ProvidersModel,
    ReleaseModel,
    RollbackModel,
    RollingModel,
    RootModel,
    StateModel,
    StepModel,
    UIModel,
    VersionsModel,
    WindowModel,
)
from relconsole.durations import DurationError, parse_duration
from relconsole.secrets import Secret

__all__ = [
    "PRODUCTION_NAMES",
    "PROVIDER_KINDS",
    "STRATEGIES",
    "THRESHOLDS",
    "ApiChangeModel",
    "ChangesModel",
    "CohortModel",
    "ConfigError",
    "ConfigProblems",
    "ContactModel",
    "DependencyModel",
    "DurationError",
    "FlagsAuditModel",
    "FreezeModel",
    "GateModel",
    "GatesFromModel",
    "KeyPath",
    "LoadedConfig",
    "MetricModel",
    "MigrationModel",
    "NotifyModel",
    "ProviderModel",
    "ProvidersModel",
    "ReleaseModel",
    "RollbackModel",
    "RollingModel",
    "RootModel",
    "Secret",
    "StateModel",
    "StepModel",
    "UIModel",
    "VersionsModel",
    "WindowModel",
    "format_key",
    "load_config",
    "parse_duration",
    "resolve_secret",
    "to_plan",
]
