"""Find a provider adapter by its `type:` name.

Built-in adapters are named here as import paths, so a release that does not use
Prometheus never imports prometheus-api-client. Other packages add adapters through the
`relconsole.providers` entry-point group: an entry point named `<kind>.<type>` (for example
`traffic.mydeploy`) pointing at a factory `(settings: dict, ctx: BuildContext) -> provider`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from relconsole.providers.base import BuildContext, ProviderError

Factory = Callable[[dict[str, Any], BuildContext], Any]

KINDS = ("metrics", "traffic", "flags", "notify")

BUILTIN: dict[tuple[str, str], str] = {
    ("metrics", "sim"): "relconsole.providers.sim:build_metrics",
    ("traffic", "sim"): "relconsole.providers.sim:build_traffic",
    ("flags", "sim"): "relconsole.providers.sim:build_flags",
    ("metrics", "prometheus"): "relconsole.providers.prometheus:build_metrics",
    ("traffic", "haproxy"): "relconsole.providers.haproxy:build_traffic",
    ("traffic", "command"): "relconsole.providers.command:build_traffic",
    ("flags", "flagd"): "relconsole.providers.flagd:build_flags",
    ("flags", "unleash"): "relconsole.providers.unleash:build_flags",
    ("flags", "launchdarkly"): "relconsole.providers.launchdarkly:build_flags",
    ("flags", "split"): "relconsole.providers.split:build_flags",
    ("flags", "flagsmith"): "relconsole.providers.flagsmith:build_flags",
}

ENTRY_POINT_GROUP = "relconsole.providers"


class UnknownProviderError(ProviderError):
    pass


def _plugins() -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
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
        return getattr(importlib.import_module(module_name), attr)
    ep = _plugins().get((kind, type_name))
    if ep is not None:
        loaded = ep.load()
        if not callable(loaded):
            raise ProviderError(f"plugin {ep.name} ({ep.value}) is not a provider factory")
        return loaded
    known = ", ".join(available(kind)) or "none"
    raise UnknownProviderError(f"unknown {kind} provider type {type_name!r} (known: {known})")


def build(kind: str, settings: dict[str, Any], ctx: BuildContext) -> Any:
    type_name = settings.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise ProviderError(f"providers.{kind} needs a 'type'")
    return factory(kind, type_name)(settings, ctx)
