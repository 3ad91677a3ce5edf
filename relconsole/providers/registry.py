"""Find a provider adapter by its `type:` name.

Built-in adapters are named here as import paths, so a release that does not use
Prometheus never imports prometheus-api-client. Other packages add adapters through the
`relconsole.providers` entry-point group: an entry point named `<kind>.<type>` (for example
`traffic.mydeploy`) pointing at a factory `(settings: dict, ctx: BuildContext) -> provider`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from relconsole.providers.base import (
    BuildContext,
    FlagProvider,
    MetricsProvider,
    ProviderError,
    TrafficProvider,
)

# A factory returns an adapter of its kind; `build_*` check which (a plugin may be wrong).
Factory = Callable[[dict[str, Any], BuildContext], object]

KINDS = ("metrics", "traffic", "flags")
PROTOCOLS: dict[str, type[Any]] = {
    "metrics": MetricsProvider,
    "traffic": TrafficProvider,
    "flags": FlagProvider,
}

BUILTIN: dict[tuple[str, str], str] = {
    ("metrics", "sim"): "relconsole.providers.sim:build_metrics",
    ("traffic", "sim"): "relconsole.providers.sim:build_traffic",
    ("flags", "sim"): "relconsole.providers.sim:build_flags",
    ("metrics", "prometheus"): "relconsole.providers.prometheus:build_metrics",
    ("traffic", "haproxy"): "relconsole.providers.haproxy:build_traffic",
    ("traffic", "command"): "relconsole.providers.command:build_traffic",
    ("traffic", "argo-rollouts"): "relconsole.providers.argo.provider:build_traffic",
    ("flags", "flagd"): "relconsole.providers.flagd:build_flags",
    ("flags", "unleash"): "relconsole.providers.unleash:build_flags",
    ("flags", "launchdarkly"): "relconsole.providers.launchdarkly:build_flags",
    ("flags", "split"): "relconsole.providers.split:build_flags",
    ("flags", "flagsmith"): "relconsole.providers.flagsmith:build_flags",
}

ENTRY_POINT_GROUP = "relconsole.providers"


class UnknownProviderError(ProviderError):
    pass


def _plugins() -> dict[tuple[str, str], EntryPoint]:
    found: dict[tuple[str, str], EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        kind, _, type_name = ep.name.partition(".")
        if kind in KINDS and type_name:
            found[(kind, type_name)] = ep
    return found


def available(kind: str) -> list[str]:
    names = {t for (k, t) in BUILTIN if k == kind} | {t for (k, t) in _plugins() if k == kind}
    return sorted(names)


def factory(kind: str, type_name: str) -> Factory:
    target = BUILTIN.get((kind, type_name))
    if target is not None:
        module_name, _, attr = target.partition(":")
        built_in: Factory = getattr(importlib.import_module(module_name), attr)
        return built_in
    ep = _plugins().get((kind, type_name))
    if ep is not None:
        loaded = ep.load()
        if not callable(loaded):
            raise ProviderError(f"plugin {ep.name} ({ep.value}) is not a provider factory")
        plugin: Factory = loaded
        return plugin
    known = ", ".join(available(kind)) or "none"
    raise UnknownProviderError(f"unknown {kind} provider type {type_name!r} (known: {known})")


def _make(kind: str, settings: dict[str, Any], ctx: BuildContext) -> object:
    type_name = settings.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise ProviderError(f"providers.{kind} needs a 'type'")
    return factory(kind, type_name)(settings, ctx)


def _not_a(kind: str, settings: dict[str, Any], provider: object) -> ProviderError:
    return ProviderError(
        f"{kind} provider {settings.get('type')!r} built a {type(provider).__name__}, "
        f"which is not a {PROTOCOLS[kind].__name__}"
    )


def build_metrics(settings: dict[str, Any], ctx: BuildContext) -> MetricsProvider:
    provider = _make("metrics", settings, ctx)
    if not isinstance(provider, MetricsProvider):
        raise _not_a("metrics", settings, provider)
    return provider


def build_traffic(settings: dict[str, Any], ctx: BuildContext) -> TrafficProvider:
    provider = _make("traffic", settings, ctx)
    if not isinstance(provider, TrafficProvider):
        raise _not_a("traffic", settings, provider)
    return provider


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> FlagProvider:
    provider = _make("flags", settings, ctx)
    if not isinstance(provider, FlagProvider):
        raise _not_a("flags", settings, provider)
    return provider


def build(kind: str, settings: dict[str, Any], ctx: BuildContext) -> object:
    """Any kind's adapter, checked against that kind's Protocol."""
    if kind not in PROTOCOLS:
        raise ProviderError(f"unknown provider kind {kind!r} (known: {', '.join(KINDS)})")
    builders: dict[str, Callable[[dict[str, Any], BuildContext], object]] = {
        "metrics": build_metrics, "traffic": build_traffic, "flags": build_flags,
    }
    return builders[kind](settings, ctx)
