"""Command traffic provider (type `command`): argv hooks for teams whose deploy tool is a
script — helm, kubectl, terraform or an internal CLI.

Each intent maps to an argv list in the config; `{weight}`, `{version}`, `{reason}`,
`{service}` and `{environment}` are filled in per argument, and the program is started
with `asyncio.create_subprocess_exec` — never through a shell, so a reason such as
`"; rm -rf / $(reboot)` reaches the program as one literal argument.

`status` is the read-back: it must print JSON with the live weight,
`{"canary_weight": 10}`, optionally with `"servers": [{"name": …, "role": "canary" |
"stable", "up": true, "detail": "…"}]`. Every run's exit code, duration and (truncated)
output are kept in `last_run`; a failing run raises a `ProviderError` that carries them,
so the journal records what the tool said.

Shadow traffic (release.strategy shadow): the `set_mirror` hook, with `{percent}`, has the
proxy copy that share of live requests to the canary and drop its answers; `status` then
also prints the live share, `{"canary_weight": 0, "mirror": 20}`. The engine moves such a
release with `set_route` (mirror, then weight, each only when it differs from the live
one, both read back); a rollback is `set_route(0, Route())`: mirror 0, then weight 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relconsole.commands import run_argv
from relconsole.model import Role, Route, ServerHealth, TrafficState
from relconsole.providers._settings import Settings, kind_of
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.secrets import Secret

NAME = "command"
INTENTS = ("set_weight", "status", "promote", "rollback", "set_mirror")
PLACEHOLDERS = ("weight", "version", "reason", "service", "environment", "percent")
# Placeholders that only exist for a change, not for the read-back.
CHANGE_ONLY = ("weight", "reason", "percent")
# Placeholders only one hook is given: {percent} is the mirror share set_mirror sets.
HOOK_ONLY = {"percent": "set_mirror"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MESSAGE_OUTPUT = 300  # characters of output quoted in an error message


@dataclass(frozen=True)
class CommandRun:
    """What one hook run did, for the journal and the operator."""

    intent: str
    argv: tuple[str, ...]  # as shown: secrets are ***
    exit_code: int | None  # None: killed on timeout, or never started
    duration: float
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False

    def summary(self) -> str:
        if self.timed_out:
            head = f"{self.intent} timed out after {self.duration:.1f}s (killed)"
        elif self.exit_code is None:
            head = f"{self.intent} did not start"
        else:
            head = f"{self.intent} exited {self.exit_code} after {self.duration:.1f}s"
        tail = _tail(self.stderr) or _tail(self.stdout)
        return f"{head}: {tail}" if tail else head


def _tail(text: str, limit: int = MESSAGE_OUTPUT) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else "…" + one[-(limit - 1):]


Arg = str | Secret


@dataclass(frozen=True)
class CommandSettings:
    hooks: dict[str, tuple[Arg, ...]]
    timeout: float
    cwd: str | None = None
    env: dict[str, Arg] = field(default_factory=dict)


def _argv(s: Settings, key: str) -> tuple[Arg, ...] | None:
    value = s.raw.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise s.error(f"'{key}' must be a non-empty list of arguments, e.g. "
                      f"[helm, upgrade, …], not {kind_of(value)} (no shell is used, so a "
                      "command line in one string cannot work)")
    out: list[Arg] = []
    for i, item in enumerate(value):
        if isinstance(item, Secret):
            out.append(item)
        elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
            out.append(str(item))
        else:
            raise s.error(f"{key}[{i}] must be text, not {kind_of(item)}")
    if isinstance(out[0], Secret) or not str(out[0]).strip():
        raise s.error(f"{key}[0] must name the program to run")
    for i, item in enumerate(out):
        if isinstance(item, Secret):
            continue
        for name in _PLACEHOLDER.findall(item):
            if name not in PLACEHOLDERS:
                known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                raise s.error(f"{key}[{i}]: unknown placeholder {{{name}}} (known: {known})")
            if key == "status" and name in CHANGE_ONLY:
                raise s.error(f"status[{i}]: {{{name}}} is only known when changing traffic")
            if HOOK_ONLY.get(name, key) != key:
                raise s.error(f"{key}[{i}]: {{{name}}} is only known in "
                              f"{HOOK_ONLY[name]} (the mirror share it sets)")
    return tuple(out)


def _program_exists(program: str, cwd: str | None) -> bool:
    if os.sep in program:
        path = Path(program)
        if not path.is_absolute() and cwd:
            path = Path(cwd) / path
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(program) is not None


def parse_settings(raw: dict[str, Any], *, call_timeout: float,
                   strategy: str | None = None) -> CommandSettings:
    """The hooks, checked. With `strategy` (release.strategy) the hooks must fit it:
    shadow needs `set_mirror`, which nothing else uses; None skips that check."""
    s = Settings(NAME, raw, (*INTENTS, "timeout", "cwd", "env"))
    hooks: dict[str, tuple[Arg, ...]] = {}
    for key in INTENTS:
        argv = _argv(s, key)
        if argv is not None:
            hooks[key] = argv
    for key in ("set_weight", "status"):
        if key not in hooks:
            raise s.error(f"'{key}' is required (an argv list)"
                          + (": a command that prints {\"canary_weight\": N}"
                             if key == "status" else ""))
    if strategy == "shadow" and "set_mirror" not in hooks:
        raise s.error("'set_mirror' is required with release.strategy shadow: an argv "
                      "list that has the proxy mirror {percent}% of live requests to the "
                      "canary (and status must print \"mirror\": N)")
    if strategy is not None and strategy != "shadow" and "set_mirror" in hooks:
        # Accepted and never run would be worse than refused: nothing would mirror.
        raise s.error(f"'set_mirror' is only used with release.strategy shadow (this "
                      f"release is {strategy}); remove it or use strategy shadow")
    cwd = s.text("cwd")
    if cwd is not None and not Path(cwd).is_dir():
        raise s.error(f"cwd {cwd} is not a directory")
    for key, argv in hooks.items():
        program = str(argv[0])
        if not _program_exists(program, cwd):
            raise s.error(f"{key}: program '{program}' not found"
                          + ("" if os.sep in program else " on PATH"))
    env: dict[str, Arg] = {}
    raw_env = raw.get("env")
    if raw_env is not None:
        if not isinstance(raw_env, dict):
            raise s.error(f"'env' must be a mapping of NAME: value, not {kind_of(raw_env)}")
        for name, value in raw_env.items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise s.error(f"env: '{str(name)[:40]}' is not an environment variable name")
            if isinstance(value, Secret):
                env[name] = value
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                env[name] = str(value)
            else:
                raise s.error(f"env.{name} must be text or a secret, not {kind_of(value)}")
    timeout = s.duration("timeout", None)
    if timeout is None:
        timeout = max(0.5, call_timeout * 0.9)
    elif timeout >= call_timeout:
        # The engine would abandon the call first and report a bare "timed out"; the
        # tool's own exit code and output would be lost.
        raise s.error(f"timeout {timeout:g}s must be shorter than release.call_timeout "
                      f"({call_timeout:g}s); raise release.call_timeout for slow deploys")
    return CommandSettings(hooks=hooks, timeout=timeout, cwd=cwd, env=env)


def fill(argv: Sequence[Arg], values: dict[str, str]) -> list[Arg]:
    """Substitute placeholders in each argument; one argument stays one argument.

    A single regex pass, so a value that itself contains `{weight}` is not expanded again.
    """
    out: list[Arg] = []
    for arg in argv:
        if isinstance(arg, Secret):
            out.append(arg)
            continue
        out.append(_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), arg))
    return out


def _percent(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ProviderError(f"{NAME}: status {key} must be a whole number 0..100, "
                            f"got {str(value)[:30]!r}")
    return value


def parse_status(stdout: str, *, mirror: bool = False) -> TrafficState:
    """The JSON a status hook prints -> TrafficState; anything else is a clear error.

    `mirror`: the release mirrors traffic (set_mirror), so the share must be read back:
    a status without `"mirror"` is an error, not 0, or a mirror left on would go unseen.
    """
    text = stdout.strip()
    doc: Any = None
    candidates = [text] + [line for line in reversed(text.splitlines()) if line.strip()]
    for candidate in candidates:
        with contextlib.suppress(ValueError):
            doc = json.loads(candidate)
            break
    if not isinstance(doc, dict):
        raise ProviderError(f"{NAME}: status printed no JSON object with canary_weight "
                            f"(got: {_tail(text, 120) or 'nothing'})")
    weight = _percent(doc, "canary_weight")
    route = Route()
    if "mirror" in doc:
        route = Route(mirror=_percent(doc, "mirror"))
    elif mirror:
        raise ProviderError(f"{NAME}: status printed no \"mirror\": N (the share of live "
                            "requests copied to the canary), which a shadow release reads "
                            "back after set_mirror")
    servers: list[ServerHealth] = []
    for item in doc.get("servers") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ProviderError(f"{NAME}: status servers[] entries need a name")
        role = Role.CANARY if item.get("role") == "canary" else Role.BASELINE
        servers.append(ServerHealth(item["name"], role, up=bool(item.get("up", False)),
                                    detail=str(item.get("detail", ""))[:80]))
    return TrafficState(canary_weight=weight, servers=tuple(servers), route=route)


class CommandTraffic:
    """`TrafficProvider` that runs the team's own deploy commands."""

    name = NAME

    def __init__(self, settings: CommandSettings, values: dict[str, str]) -> None:
        self.settings = settings
        self.values = values  # version, service, environment
        self.last_run: CommandRun | None = None
        self.runs = 0

    def _secrets(self) -> list[str]:
        found = [a.reveal() for argv in self.settings.hooks.values() for a in argv
                 if isinstance(a, Secret)]
        found += [v.reveal() for v in self.settings.env.values() if isinstance(v, Secret)]
        return [x for x in found if x]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    async def run(self, intent: str, extra: dict[str, str]) -> CommandRun:
        argv = fill(self.settings.hooks[intent], {**self.values, **extra})
        real = [a.reveal() if isinstance(a, Secret) else a for a in argv]
        shown = tuple("***" if isinstance(a, Secret) else self._scrub(a) for a in argv)
        env = dict(os.environ)
        env.update({k: v.reveal() if isinstance(v, Secret) else v
                    for k, v in self.settings.env.items()})
        env.update({f"RELCONSOLE_{k.upper()}": v for k, v in {**self.values, **extra}.items()})
        self.runs += 1
        started = time.monotonic()
        try:
            done = await run_argv(real, timeout=self.settings.timeout, cwd=self.settings.cwd,
                                  env=env)
        except OSError as exc:
            run = CommandRun(intent, shown, None, time.monotonic() - started,
                             stderr=f"cannot run {shown[0]}: {exc.strerror or exc}")
            self.last_run = run
            raise ProviderError(f"{NAME}: {run.summary()}") from None
        run = CommandRun(
            intent, shown, done.exit_code, done.duration, self._scrub(done.stdout),
            self._scrub(done.stderr), done.timed_out,
        )
        self.last_run = run
        if done.timed_out or done.exit_code != 0:
            raise ProviderError(f"{NAME}: {run.summary()}")
        return run

    @property
    def mirrors(self) -> bool:
        """Whether this provider can mirror traffic (a `set_mirror` hook)."""
        return "set_mirror" in self.settings.hooks

    async def read(self) -> TrafficState:
        run = await self.run("status", {})
        return parse_status(run.stdout, mirror=self.mirrors)

    async def set_weight(self, weight: int, *, reason: str) -> None:
        if not 0 <= weight <= 100:
            raise ProviderError(f"{NAME}: weight {weight} is outside 0..100")
        await self._weight(weight, reason)

    async def _weight(self, weight: int, reason: str) -> None:
        intent = "set_weight"
        if weight == 100 and "promote" in self.settings.hooks:
            intent = "promote"
        elif weight == 0 and "rollback" in self.settings.hooks:
            intent = "rollback"
        await self.run(intent, {"weight": str(weight), "reason": reason})

    async def set_route(self, weight: int, route: Route, *, reason: str) -> None:
        """`RouteTraffic`: the mirror share first, then the weight, each only where it
        differs from what status reads now; returns once status reads both back.

        Mirror before weight: on the way up the canary is judged on copies before it
        answers anyone, and a rollback (weight 0, `Route()`) turns the copies off even if
        the weight hook then fails. Cohorts and batches are not this provider's to route.
        """
        if route.cohorts or route.batches:
            raise ProviderError(f"{NAME}: cannot route {route.text()}: the command "
                                "provider mirrors (set_mirror) and weights (set_weight) only")
        if not 0 <= weight <= 100:
            raise ProviderError(f"{NAME}: weight {weight} is outside 0..100")
        if not 0 <= route.mirror <= 100:
            raise ProviderError(f"{NAME}: mirror {route.mirror}% is outside 0..100")
        if route.mirror and not self.mirrors:
            raise ProviderError(f"{NAME}: no set_mirror hook, so nothing can mirror "
                                f"{route.mirror}% of traffic (add set_mirror: [argv …])")
        try:
            live: TrafficState | None = await self.read()
        except ProviderError:
            # Unknown is not "already there": a rollback must still run both hooks.
            live = None
        if self.mirrors and (live is None or live.route.mirror != route.mirror):
            await self.run("set_mirror", {"percent": str(route.mirror),
                                          "weight": str(weight), "reason": reason})
        if live is None or live.canary_weight != weight:
            await self._weight(weight, reason)
        after = await self.read()
        if after.route.mirror != route.mirror or after.canary_weight != weight:
            raise ProviderError(
                f"{NAME}: asked for mirror {route.mirror}% and weight {weight}%, but status "
                f"reads mirror {after.route.mirror}% and weight {after.canary_weight}%")

    async def close(self) -> None:
        return None


def build_traffic(settings: dict[str, Any], ctx: BuildContext) -> object:
    if ctx.plan.strategy == "rolling":
        from relconsole.providers.rolling import build_command_rolling
        return build_command_rolling(settings, ctx)
    parsed = parse_settings(settings, call_timeout=ctx.plan.call_timeout,
                            strategy=ctx.plan.strategy)
    values = {
        "version": ctx.versions.get("canary") or ctx.plan.version,
        "service": ctx.plan.service,
        "environment": ctx.plan.environment,
    }
    return CommandTraffic(parsed, values)
