"""The `providers:` blocks: secrets inside them, and (for `check`) their `type:` names.

The schema only asks a provider block for a `type:`; everything else in it is the
adapter's business, checked when the adapter is built. Two things are checked here
because they are the same for every adapter: a value written as a secret reference
must resolve, and one that looks like a misspelt reference (`Env:TOKEN`, `vault:x`)
must not pass as plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from relconsole.config.errors import ConfigError, KeyPath
from relconsole.secrets import (
    Secret,
    SecretError,
    check_ref_syntax,
    env_suggestion,
    is_secret_ref,
    resolve,
    unknown_scheme,
)
from relconsole.suggest import clip, did_you_mean

Fail = Callable[[KeyPath, str, str], ConfigError]


def resolve_secret(ref: str, *, timeout: float = 3.0) -> Secret:
    """Resolve "env:VAR" or "keyring:SERVICE/NAME"; raise ConfigError (no file) if it fails."""
    try:
        return resolve(ref, timeout=timeout)
    except SecretError as problem:
        raise ConfigError(None, None, "", problem.problem, problem.hint) from None


def check_secrets(
    providers: dict[str, dict[str, Any]],
    *,
    resolve_them: bool,
    timeout: float,
    fail: Fail,
    report: Callable[[ConfigError], None],
) -> None:
    """Check every secret reference under providers:, and resolve them in place if asked.

    Each problem goes to `report`, which either raises it (stopping at the first, as
    `load_config` does) or keeps it and lets the walk go on.
    """

    def secret(value: str, path: KeyPath, kind: str, ptype: str) -> Any:
        env_hint = env_suggestion(ptype or kind, *path[2:])
        try:
            if not resolve_them:
                check_ref_syntax(value)
                return value
            return resolve(value, timeout=timeout, env_hint=env_hint)
        except SecretError as exc:
            problem, hint = exc.problem, exc.hint
        # Reported outside the `except`, so no exception chain rides along with it.
        report(fail(path, problem, hint))
        return value

    def visit(value: Any, path: KeyPath, kind: str, ptype: str) -> Any:
        if isinstance(value, dict):
            return {k: visit(v, (*path, k), kind, ptype) for k, v in value.items()}
        if isinstance(value, list):
            return [visit(v, (*path, i), kind, ptype) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        if is_secret_ref(value):
            return secret(value, path, kind, ptype)
        scheme = unknown_scheme(value)
        if scheme is not None:
            report(
                fail(
                    path,
                    f"unknown secret scheme '{clip(scheme)}:'",
                    "Secrets are written env:VAR or keyring:SERVICE/NAME (lower case)",
                )
            )
        return value

    for kind, settings in providers.items():
        ptype = str(settings.get("type", ""))
        providers[kind] = visit(settings, ("providers", kind), kind, ptype)


def check_types(
    providers: Mapping[str, Mapping[str, Any]],
    known: Mapping[str, Sequence[str]],
    fail: Fail,
) -> list[ConfigError]:
    """A problem for every block whose `type:` names no adapter of its kind.

    `known` maps a kind to the adapter names that exist; the caller gets them from the
    provider registry, which the config layer must not import. Kinds not in it are not
    checked.
    """
    problems = []
    for kind, names in known.items():
        name = providers.get(kind, {}).get("type")
        if not isinstance(name, str) or not name or name in names:
            continue
        listing = f"Known {kind} providers: {', '.join(names)}" if names else (
            f"No {kind} providers are installed"
        )
        close = did_you_mean(name, names)
        problems.append(
            fail(
                ("providers", kind, "type"),
                f"unknown {kind} provider type '{clip(name)}'",
                f"{close} {listing}".strip(),
            )
        )
    return problems
