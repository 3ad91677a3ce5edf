"""Rolling batches (`release.strategy: rolling`): the servers of one pool are updated in
place, a batch at a time, on HAProxy plus command hooks or on command hooks alone.

The pool is `servers:` in the order they are updated; `release.rolling.batch` (a count,
or a share of the pool) cuts it into consecutive batches. Moving to `Route(batches=k)`
makes the pool be "the first k batches on the new version, the rest on the old one,
every server in rotation": each server that does not match is taken through the
sequence below, the servers of one batch together, so a batch is how many servers are
out of rotation at once.

- HAProxy: `state drain`, its sessions waited down to 0 (at most `drain_timeout`),
  `state maint`, the `deploy` hook, the `running` hook read back, then `state drain`
  with `health down` (no users yet; HAProxy's own check must pass `rise` times against
  what now runs there, at most `health_timeout`), then `state ready`. One that never
  comes up is put back in maintenance and the move fails, naming it and what HAProxy
  says.
- Command alone: the `drain` hook, `deploy`, `running` read back, the `health` hook
  polled until it exits 0 (at most `health_timeout`), then `ready`. One that never
  passes is left drained.

Rollback is `set_route(0, Route())`: the batches that hold new-version servers are
re-run newest first with the old version (`release.versions.baseline`); a server
already on the old version is left alone. What each server runs always comes from the
`running` hook, never from what this module remembers deploying.

Every hook is an argv list run without a shell (`commands.run_argv`), with `{server}`,
`{version}`, `{service}` and `{environment}` filled in per argument (and in the
environment as RELCONSOLE_SERVER, RELCONSOLE_VERSION, …).

On HAProxy the move is declarative: a server of the pool found out of rotation (drained
or in maintenance) on the version it should run is returned to it once its health check
passes, so a move cut short (relconsole killed mid-batch) is finished by the next one.
Hooks alone cannot say whether a server serves; there a server on its version is left
as it is.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relconsole.commands import run_argv
from relconsole.model import ReleasePlan, Role, Route, ServerHealth, TrafficState
from relconsole.providers._settings import Settings, kind_of
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.providers.command import Arg, CommandRun, fill
from relconsole.providers.haproxy import (
    HAProxySettings,
    RuntimeAPI,
    explain_reply,
    health,
    parse_address,
    parse_servers_state,
    parse_stat,
    split_answers,
)
from relconsole.secrets import Secret

PLACEHOLDERS = ("server", "version", "service", "environment")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")  # HAProxy's rule for server names
DEFAULT_DEPLOY_TIMEOUT = 120.0
DEFAULT_DRAIN_TIMEOUT = 30.0
DEFAULT_HEALTH_TIMEOUT = 60.0
MAX_VERSION = 100  # characters of a `running` answer taken as a version
# Calls besides the hooks' own bounds in one batch: drain, maint, ready, a few stat
# reads and the read-back, each bounded by `timeout`.
CALLS_PER_BATCH = 8


def _clip(text: str, limit: int = 160) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


# ----------------------------------------------------------------------------- the batches


@dataclass(frozen=True)
class Batches:
    """The pool in update order cut into batches, and the two versions."""

    servers: tuple[str, ...]
    size: int  # servers per batch (the last may be smaller)
    new: str
    old: str

    @property
    def groups(self) -> list[tuple[str, ...]]:
        return [self.servers[i:i + self.size] for i in range(0, len(self.servers), self.size)]

    @property
    def count(self) -> int:
        return len(self.groups)

    def updated(self, batches: int) -> int:
        """Servers on the new version once `batches` batches are done."""
        return min(len(self.servers), max(0, batches) * self.size)

    def wanted(self, batches: int) -> dict[str, str]:
        """What every server should run with `batches` batches done."""
        n = self.updated(batches)
        return {s: self.new if i < n else self.old for i, s in enumerate(self.servers)}

    def weight(self, batches: int) -> int:
        """The canary weight a plan step of `batches` batches carries (equal weights)."""
        return round(100 * self.updated(batches) / len(self.servers))

    def done(self, finished: Mapping[str, bool]) -> int:
        """Leading whole batches whose every server is finished on the new version."""
        k = 0
        for group in self.groups:
            if not all(finished.get(s, False) for s in group):
                break
            k += 1
        return k

    def for_weight(self, weight: int) -> int:
        """The batch count a plain weight stands for; ProviderError between batches."""
        if not 0 <= weight <= 100:
            raise ProviderError(f"rolling: weight {weight} is outside 0..100")
        for k in range(self.count + 1):
            if self.weight(k) == weight:
                return k
        shown = ", ".join(str(self.weight(k)) for k in range(self.count + 1))
        raise ProviderError(f"rolling: {weight}% is not a whole number of batches; a rolling "
                            f"release moves in batches ({shown}%)")


def batch_size(plan: ReleasePlan, n: int, adapter: str) -> int:
    """Servers per batch from release.rolling (a count or a share), one by default.

    A share rounds down (at least one server), as "at most this many out at once" does;
    a batch that would take the whole pool out of rotation at once is refused.
    """
    if plan.batch > 0:
        size = plan.batch
        said = f"batch {plan.batch}"
    elif plan.batch_share > 0:
        size = max(1, math.floor(plan.batch_share * n + 1e-9))
        said = f"batch {plan.batch_share * 100:g}% ({size} of {n})"
    else:
        return 1
    if size >= n:
        raise ProviderError(
            f"{adapter}: release.rolling {said} would take all {n} servers out of rotation "
            f"at once; use a batch smaller than the pool (at most {n - 1}"
            + (f", or {math.floor(100 * (n - 1) / n)}%)" if n > 1 else ")"))
    return size


def versions_of(ctx: BuildContext, adapter: str) -> tuple[str, str]:
    new = ctx.versions.get("canary") or ctx.plan.version
    old = ctx.plan.baseline_version or ctx.versions.get("baseline", "")
    if not old:
        raise ProviderError(f"{adapter}: a rolling release needs versions.baseline (the "
                            "version the servers run now): a rollback re-deploys it")
    if old == new:
        raise ProviderError(f"{adapter}: versions.baseline and the new version are both "
                            f"'{new}'; a rolling release replaces one with the other")
    return new, old


# ----------------------------------------------------------------------------- hooks


@dataclass(frozen=True)
class Hooks:
    """The argv hooks of one provider block, and how they are run."""

    adapter: str
    argv: Mapping[str, tuple[Arg, ...]]
    values: Mapping[str, str]  # service, environment
    cwd: str | None = None

    def _secrets(self) -> list[str]:
        return [a.reveal() for argv in self.argv.values() for a in argv
                if isinstance(a, Secret) and a.reveal()]

    def scrub(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    async def run(self, hook: str, extra: Mapping[str, str], timeout: float) -> CommandRun:
        """Run one hook; a failure, a timeout or a program that will not start raises."""
        values = {**self.values, **extra}
        argv = fill(self.argv[hook], values)
        real = [a.reveal() if isinstance(a, Secret) else a for a in argv]
        shown = tuple("***" if isinstance(a, Secret) else self.scrub(a) for a in argv)
        env = dict(os.environ)
        env.update({f"RELCONSOLE_{k.upper()}": v for k, v in values.items()})
        started = time.monotonic()
        try:
            done = await run_argv(real, timeout=timeout, cwd=self.cwd, env=env)
        except OSError as exc:
            run = CommandRun(hook, shown, None, time.monotonic() - started,
                             stderr=f"cannot run {shown[0]}: {exc.strerror or exc}")
            raise ProviderError(self._say(extra, run)) from None
        run = CommandRun(hook, shown, done.exit_code, done.duration, self.scrub(done.stdout),
                         self.scrub(done.stderr), done.timed_out)
        if done.timed_out or done.exit_code != 0:
            raise ProviderError(self._say(extra, run))
        return run

    def _say(self, extra: Mapping[str, str], run: CommandRun) -> str:
        where = f" for {extra['server']}" if "server" in extra else ""
        return f"{self.adapter}: {run.intent}{where}: {run.summary()}"

    async def running(self, server: str, timeout: float) -> str:
        """The version `server` runs now, as its `running` hook prints it."""
        run = await self.run("running", {"server": server}, timeout)
        lines = [line.strip() for line in run.stdout.splitlines() if line.strip()]
        if not lines:
            raise ProviderError(f"{self.adapter}: running for {server} printed nothing; it "
                                "must print the version the server runs")
        version = lines[-1]
        if len(version) > MAX_VERSION or " " in version:
            raise ProviderError(f"{self.adapter}: running for {server} printed "
                                f"'{_clip(version, 60)}', which is not a version")
        return version


def _program_exists(program: str, cwd: str | None) -> bool:
    if os.sep in program:
        path = Path(program)
        if not path.is_absolute() and cwd:
            path = Path(cwd) / path
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(program) is not None


def _argv(s: Settings, key: str, *, required: bool, allowed: Sequence[str]
          ) -> tuple[Arg, ...] | None:
    value = s.raw.get(key)
    if value is None:
        if required:
            raise s.error(f"'{key}' is required for a rolling release: an argv list such as "
                          + HOOK_EXAMPLES.get(key, "[program, '{server}']"))
        return None
    if not isinstance(value, list) or not value:
        raise s.error(f"'{key}' must be a non-empty list of arguments, not {kind_of(value)} "
                      "(no shell is used, so a command line in one string cannot work)")
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
            if name not in allowed:
                known = ", ".join(f"{{{p}}}" for p in allowed)
                why = (" (running tells the version; it is not given one)"
                       if name == "version" else "")
                raise s.error(f"{key}[{i}]: unknown placeholder {{{name}}}{why} "
                              f"(known: {known})")
    return tuple(out)


HOOK_EXAMPLES = {
    "deploy": "[./deploy.sh, '{server}', '{version}']",
    "running": "[./version-of.sh, '{server}'] that prints the version the server runs",
    "drain": "[./lb.sh, drain, '{server}']",
    "ready": "[./lb.sh, enable, '{server}']",
    "health": "[./healthy.sh, '{server}'] that exits 0 when the server is healthy",
}


def _hooks(s: Settings, names: Iterable[str], ctx: BuildContext) -> Hooks:
    cwd = s.text("cwd")
    if cwd is not None and not Path(cwd).is_dir():
        raise s.error(f"cwd {cwd} is not a directory")
    found: dict[str, tuple[Arg, ...]] = {}
    for name in names:
        allowed = [p for p in PLACEHOLDERS if not (name == "running" and p == "version")]
        argv = _argv(s, name, required=True, allowed=allowed)
        assert argv is not None
        program = str(argv[0])
        if not _program_exists(program, cwd):
            raise s.error(f"{name}: program '{program}' not found"
                          + ("" if os.sep in program else " on PATH"))
        found[name] = argv
    values = {"service": ctx.plan.service, "environment": ctx.plan.environment}
    return Hooks(s.adapter, found, values, cwd)


def _servers(s: Settings) -> tuple[str, ...]:
    value = s.raw.get("servers")
    if value is None:
        raise s.error("'servers' is required for a rolling release: the pool's server "
                      "names in the order they are updated, e.g. [app1, app2, app3]")
    if not isinstance(value, list) or len(value) < 2:
        raise s.error("'servers' must list at least two servers (one batch at a time leaves "
                      f"the others serving), not {kind_of(value)}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _NAME.match(item):
            raise s.error(f"servers: {kind_of(item)} is not a server name "
                          "(letters, digits, '_', '.', ':' and '-')")
        if item in out:
            raise s.error(f"servers: '{item}' is listed twice")
        out.append(item)
    return tuple(out)


@dataclass(frozen=True)
class Bounds:
    timeout: float  # one runtime-API call or quick hook (running, drain/ready/health once)
    deploy: float
    drain: float
    health: float

    def per_batch(self, quick_hooks: int) -> float:
        return self.drain + self.deploy + self.health + (CALLS_PER_BATCH + quick_hooks) * (
            self.timeout)


def _bounds(s: Settings, plan: ReleasePlan) -> Bounds:
    call = plan.call_timeout
    timeout = s.duration("timeout", None)
    if timeout is None:
        timeout = min(10.0, call * 0.8)
    elif timeout >= call:
        # A read runs its calls side by side within release.call_timeout.
        raise s.error(f"timeout {timeout:g}s must be shorter than release.call_timeout "
                      f"({call:g}s): the read-back (`running`) runs within it")
    deploy = s.duration("deploy_timeout", DEFAULT_DEPLOY_TIMEOUT)
    drain = s.duration("drain_timeout", DEFAULT_DRAIN_TIMEOUT)
    health_timeout = s.duration("health_timeout", DEFAULT_HEALTH_TIMEOUT)
    assert deploy is not None and drain is not None and health_timeout is not None
    return Bounds(timeout=timeout, deploy=deploy, drain=drain, health=health_timeout)


# ----------------------------------------------------------------------------- the provider


class Rolling:
    """What both pools share: the plan of batches, set_route's order, the read-back."""

    name = ""
    poll = 0.5  # seconds between looks while waiting for drain or health

    def __init__(self, batches: Batches, hooks: Hooks, bounds: Bounds, quick_hooks: int
                 ) -> None:
        self.batches = batches
        self.hooks = hooks
        self.bounds = bounds
        self.servers = batches.servers
        self.groups = tuple(batches.groups)  # the batches in order, for the step plan
        # Rollback is one call that re-runs every batch holding new servers, so one move
        # is bounded by the whole pool; each step inside has its own, shorter, bound.
        self.action_timeout = batches.count * bounds.per_batch(quick_hooks) + 2 * bounds.timeout
        self.note = ""
        self._lock = asyncio.Lock()

    def _err(self, message: str) -> ProviderError:
        return ProviderError(f"{self.name}: {message}")

    # -- what each pool does

    async def _in_rotation(self) -> dict[str, bool]:
        raise NotImplementedError

    async def _update(self, todo: Sequence[str], wanted: Mapping[str, str],
                      deploy: set[str]) -> list[str]:
        """Take `todo` through the sequence; the problems, one per server ([] when done)."""
        raise NotImplementedError

    async def _check(self) -> None:
        """Refuse, before anything changes, a pool that cannot be rolled."""

    # -- reading

    async def _versions(self, *, strict: bool) -> dict[str, str | None]:
        """What each server runs (the `running` hooks, side by side)."""
        got = await asyncio.gather(
            *(self.hooks.running(s, self.bounds.timeout) for s in self.servers),
            return_exceptions=True)
        out: dict[str, str | None] = {}
        for server, value in zip(self.servers, got, strict=True):
            if isinstance(value, BaseException):
                if not isinstance(value, ProviderError) or strict:
                    raise value
                out[server] = None
            else:
                out[server] = value
        return out

    def _role(self, version: str | None) -> Role:
        return Role.CANARY if version == self.batches.new else Role.BASELINE

    def _says(self, version: str | None) -> str:
        if version == self.batches.new:
            return f"{version} (new)"
        if version == self.batches.old:
            return f"{version} (old)"
        return f"{version} (neither {self.batches.new} nor {self.batches.old})"

    # -- moving

    def _target(self, weight: int, route: Route) -> int:
        if route.cohorts or route.mirror:
            raise self._err("a rolling release routes by batches only (no cohorts, no "
                            "mirror)")
        if not 0 <= weight <= 100:
            raise self._err(f"weight {weight} is outside 0..100")
        if route.batches:
            if route.batches > self.batches.count:
                raise self._err(f"{route.batches} batches asked; the pool has "
                                f"{self.batches.count}")
            return route.batches
        # No batches: the rollback's 0, or a promotion asked as a bare 100.
        return self.batches.count if weight == 100 else self.batches.for_weight(weight)

    async def set_route(self, weight: int, route: Route, *, reason: str) -> None:
        async with self._lock:
            await self._move(self._target(weight, route))

    async def set_weight(self, weight: int, *, reason: str) -> None:
        """A plain weight is taken as the batch count it stands for (0 and 100 included);
        a weight between two batches is refused, naming the ones there are."""
        async with self._lock:
            await self._move(self.batches.for_weight(weight))

    async def _move(self, target: int) -> None:
        b = self.batches
        wanted = b.wanted(target)
        await self._check()
        rotation = await self._in_rotation()  # unknown servers fail here, by name
        versions = await self._versions(strict=False)  # an unreadable server is redone
        groups = list(enumerate(b.groups))
        # Back first, newest batch first (the order a rollback undoes in), then forward.
        back = [(i, g) for i, g in reversed(groups) if i >= target]
        forward = [(i, g) for i, g in groups if i < target]
        done: list[str] = []
        problems: list[str] = []
        for plan, stop_at_first in ((back, False), (forward, True)):
            for i, group in plan:
                deploy = {s for s in group if versions[s] != wanted[s]}
                todo = [s for s in group if s in deploy or not rotation.get(s, True)]
                if not todo:
                    continue
                label = f"batch {i + 1}/{b.count}"
                found = await self._update(todo, wanted, deploy)
                if found:
                    problems += [f"{label}: {p}" for p in found]
                    if stop_at_first:
                        break
                    continue  # a rollback restores every batch it can
                how = f"on {wanted[todo[0]]}" if deploy else "back in rotation"
                done.append(f"{label} ({', '.join(todo)}) {how}")
            if problems:
                break  # never forward after a batch that could not be put back
        self.note = "; ".join(problems or done)
        if problems:
            raise self._err("; ".join(problems))

    async def close(self) -> None:
        return None


# ----------------------------------------------------------------------------- HAProxy


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _haproxy_says(row: Mapping[str, str] | None) -> str:
    if row is None:
        return "not in show stat"
    parts = [row.get("status", "").strip(), row.get("check_status", "").strip()]
    code = row.get("check_code", "").strip()
    if code:
        parts.append(code)
    said = " ".join(p for p in parts if p)
    desc = (row.get("last_chk") or row.get("check_desc") or "").strip()
    return f"{said} ({_clip(desc, 80)})" if desc else said


class HAProxyRolling(Rolling):
    """Rolling batches of one HAProxy backend's servers, deployed by a command hook."""

    name = "haproxy"

    def __init__(self, batches: Batches, hooks: Hooks, bounds: Bounds,
                 api_settings: HAProxySettings) -> None:
        super().__init__(batches, hooks, bounds, quick_hooks=1)
        self.backend = api_settings.backend
        self.api = RuntimeAPI(api_settings)

    def _path(self, server: str) -> str:
        return f"{self.backend}/{server}"

    async def _send(self, commands: list[str]) -> None:
        """Commands that answer nothing on success, as one line (HAProxy applies it whole)."""
        reply = await self.api.call("; ".join(commands))
        if reply.strip():
            for command, answer in zip(commands, split_answers(reply, len(commands)),
                                       strict=False):
                if answer.strip():
                    raise explain_reply(command, answer, self.backend)
            raise explain_reply(commands[0], reply, self.backend)

    async def admin_states(self) -> dict[str, int]:
        reply = await self.api.call(f"show servers state {self.backend}")
        states = parse_servers_state(reply, self.backend)
        missing = [s for s in self.servers if s not in states]
        if missing:
            raise self._err(f"backend {self.backend} has no server "
                            + ", ".join(f"'{s}'" for s in missing))
        return states

    async def stats(self) -> dict[str, dict[str, str]]:
        return parse_stat(await self.api.call("show stat"), self.backend)

    async def _in_rotation(self) -> dict[str, bool]:
        return {s: state == 0 for s, state in (await self.admin_states()).items()}

    async def _check(self) -> None:
        stats = await self.stats()
        unchecked = [s for s in self.servers
                     if stats.get(s, {}).get("status", "").strip() == "no check"]
        if unchecked:
            raise self._err(
                f"server {', '.join(unchecked)} of backend {self.backend} has no health "
                "check, so a batch could not wait for it to come up; add `check` to its "
                "server line in haproxy.cfg (and `option httpchk GET /healthz` or the like)")

    async def _update(self, todo: Sequence[str], wanted: Mapping[str, str],
                      deploy: set[str]) -> list[str]:
        b = self.bounds
        problems: dict[str, str] = {}
        going = [s for s in todo if s in deploy]
        if going:
            await self._send([f"set server {self._path(s)} state drain" for s in going])
            await self._drain(going)
            await self._send([f"set server {self._path(s)} state maint" for s in going])
            results = await asyncio.gather(*(self._deploy(s, wanted[s]) for s in going),
                                           return_exceptions=True)
            for server, result in zip(going, results, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, ProviderError):
                        raise result
                    problems[server] = f"{_strip(str(result), self.name)}; {server} left in " \
                                       "maintenance"
        back = [s for s in todo if s not in problems]
        if not back:
            return list(problems.values())
        # Out of maintenance into drain, with its health forced down: HAProxy checks what
        # now runs there (a result from before the deploy would read UP at once) while it
        # takes no users, and it returns to rotation only once the check passed `rise`
        # times.
        await self._send([c for s in back for c in (
            f"set server {self._path(s)} state drain", f"set server {self._path(s)} health down")])
        started = time.monotonic()
        waiting = list(back)
        rows: dict[str, dict[str, str]] = {}
        while waiting:
            rows = await self.stats()
            waiting = [s for s in waiting
                       if rows.get(s, {}).get("status", "").strip() not in ("DRAIN", "UP")]
            if not waiting or time.monotonic() - started >= b.health:
                break
            await asyncio.sleep(self.poll)
        up = [s for s in back if s not in waiting]
        if up:
            await self._send([f"set server {self._path(s)} state ready" for s in up])
        if waiting:
            # It must not take users: out of rotation until someone (the rollback) acts.
            await self._send([f"set server {self._path(s)} state maint" for s in waiting])
            for s in waiting:
                problems[s] = (f"{s} did not pass HAProxy's health check within "
                               f"{b.health:g}s on {wanted[s]}: HAProxy says "
                               f"{_haproxy_says(rows.get(s))}; {s} left in maintenance")
        return [problems[s] for s in todo if s in problems]

    async def _drain(self, servers: Sequence[str]) -> None:
        started = time.monotonic()
        while True:
            stats = await self.stats()
            if sum(_int(stats.get(s, {}).get("scur")) for s in servers) == 0:
                return
            if time.monotonic() - started >= self.bounds.drain:
                return  # the sessions left are cut by maintenance, as a deploy would
            await asyncio.sleep(self.poll)

    async def _deploy(self, server: str, version: str) -> None:
        await self.hooks.run("deploy", {"server": server, "version": version},
                             self.bounds.deploy)
        runs = await self.hooks.running(server, self.bounds.timeout)
        if runs != version:
            raise self._err(f"deploy of {version} to {server} exited 0, but {server} runs "
                            f"{runs}")

    async def read(self) -> TrafficState:
        versions, states, stats = await asyncio.gather(
            self._versions(strict=True), self.admin_states(), self.stats())
        ready = {s: states.get(s, 1) == 0 for s in self.servers}
        weight = {s: _int(stats.get(s, {}).get("weight")) if ready[s] else 0
                  for s in self.servers}
        total = sum(weight.values())
        if total == 0:
            raise self._err(f"no server of backend {self.backend} can take traffic "
                            "(all at weight 0, drained or in maintenance)")
        new = [s for s in self.servers if versions[s] == self.batches.new]
        share = round(100 * sum(weight[s] for s in new) / total)
        finished = {s: s in new and ready[s] for s in self.servers}
        servers = []
        for s in self.servers:
            seen = health(s, self._role(versions[s]), stats.get(s))
            servers.append(ServerHealth(s, seen.role, up=seen.up,
                                        detail=f"{self._says(versions[s])} · {seen.detail}"))
        return TrafficState(canary_weight=share, servers=tuple(servers),
                            route=Route(batches=self.batches.done(finished)), note=self.note)


def _strip(message: str, adapter: str) -> str:
    prefix = f"{adapter}: "
    return message[len(prefix):] if message.startswith(prefix) else message


HAPROXY_KEYS = ("socket", "address", "backend", "servers", "deploy", "running", "timeout",
                "deploy_timeout", "drain_timeout", "health_timeout", "cwd")


def _no_canary_keys(raw: Mapping[str, Any], adapter: str) -> None:
    said = [k for k in ("stable", "canary", "set_weight", "status") if k in raw]
    if said:
        raise ProviderError(f"{adapter}: '{said[0]}' belongs to a canary release; a rolling "
                            "release lists its pool as servers: [app1, app2, …] and updates "
                            "it with the deploy hook")


def build_haproxy_rolling(settings: dict[str, Any], ctx: BuildContext) -> HAProxyRolling:
    _no_canary_keys(settings, "haproxy")
    s = Settings("haproxy", settings, HAPROXY_KEYS)
    socket_path = s.text("socket")
    address_text = s.text("address")
    if (socket_path is None) == (address_text is None):
        raise s.error("give exactly one of socket: (a Unix socket path) or address: host:port "
                      "for the runtime API")
    address = parse_address(address_text) if address_text is not None else None
    backend = s.text("backend", required=True)
    assert backend is not None
    if not _NAME.match(backend):
        raise s.error(f"backend '{backend[:40]}' is not a valid HAProxy backend name")
    servers = _servers(s)
    bounds = _bounds(s, ctx.plan)
    hooks = _hooks(s, ("deploy", "running"), ctx)
    new, old = versions_of(ctx, "haproxy")
    batches = Batches(servers, batch_size(ctx.plan, len(servers), "haproxy"), new, old)
    api = HAProxySettings(backend=backend, stable=servers, canary=(), socket=socket_path,
                          address=address, timeout=bounds.timeout)
    return HAProxyRolling(batches, hooks, bounds, api)


# ----------------------------------------------------------------------------- command


class CommandRolling(Rolling):
    """Rolling batches where the team's own hooks drain, deploy, check and return servers."""

    name = "command"

    def __init__(self, batches: Batches, hooks: Hooks, bounds: Bounds) -> None:
        # drain, ready and each health poll besides running: quick hooks of one batch.
        super().__init__(batches, hooks, bounds, quick_hooks=3)

    async def _in_rotation(self) -> dict[str, bool]:
        # Hooks cannot say whether a server serves: one on its version is left as it is.
        return {}

    async def _healthy(self, server: str, version: str) -> tuple[bool, str]:
        try:
            await self.hooks.run("health", {"server": server, "version": version},
                                 self.bounds.timeout)
        except ProviderError as exc:
            return False, _strip(str(exc), self.name)
        return True, ""

    async def _one(self, server: str, version: str) -> None:
        b = self.bounds
        extra = {"server": server, "version": version}
        await self.hooks.run("drain", extra, b.drain)
        try:
            await self.hooks.run("deploy", extra, b.deploy)
            runs = await self.hooks.running(server, b.timeout)
            if runs != version:
                raise self._err(f"deploy of {version} to {server} exited 0, but {server} "
                                f"runs {runs}")
        except ProviderError as exc:
            raise self._err(f"{_strip(str(exc), self.name)}; {server} left drained") from None
        # Healthy before it is returned: an unhealthy server never takes users.
        started = time.monotonic()
        while True:
            ok, said = await self._healthy(server, version)
            if ok:
                break
            if time.monotonic() - started >= b.health:
                raise self._err(f"{server} did not pass its health check within "
                                f"{b.health:g}s on {version}: {said}; {server} left drained")
            await asyncio.sleep(self.poll)
        await self.hooks.run("ready", extra, b.timeout)

    async def _update(self, todo: Sequence[str], wanted: Mapping[str, str],
                      deploy: set[str]) -> list[str]:
        results = await asyncio.gather(*(self._one(s, wanted[s]) for s in todo),
                                       return_exceptions=True)
        problems = []
        for result in results:
            if isinstance(result, BaseException):
                if not isinstance(result, ProviderError):
                    raise result
                problems.append(_strip(str(result), self.name))
        return problems

    async def read(self) -> TrafficState:
        versions = await self._versions(strict=True)
        healthy = await asyncio.gather(
            *(self._healthy(s, versions[s] or "") for s in self.servers))
        new = [s for s in self.servers if versions[s] == self.batches.new]
        finished = {s: s in new and ok for s, (ok, _) in zip(self.servers, healthy,
                                                              strict=True)}
        servers = tuple(
            ServerHealth(s, self._role(versions[s]), up=ok,
                         detail=self._says(versions[s]) + ("" if ok else f" · {_clip(said, 60)}"))
            for s, (ok, said) in zip(self.servers, healthy, strict=True))
        return TrafficState(canary_weight=round(100 * len(new) / len(self.servers)),
                            servers=servers, route=Route(batches=self.batches.done(finished)),
                            note=self.note)


COMMAND_KEYS = ("servers", "drain", "deploy", "ready", "health", "running", "timeout",
                "deploy_timeout", "drain_timeout", "health_timeout", "cwd")


def build_command_rolling(settings: dict[str, Any], ctx: BuildContext) -> CommandRolling:
    _no_canary_keys(settings, "command")
    s = Settings("command", settings, COMMAND_KEYS)
    servers = _servers(s)
    bounds = _bounds(s, ctx.plan)
    hooks = _hooks(s, ("drain", "deploy", "running", "health", "ready"), ctx)
    new, old = versions_of(ctx, "command")
    batches = Batches(servers, batch_size(ctx.plan, len(servers), "command"), new, old)
    return CommandRolling(batches, hooks, bounds)
