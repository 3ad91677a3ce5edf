"""A/B cohorts on HAProxy (`release.strategy: ab`): users picked by who they are, routed to
the canary through runtime-API maps that a `use-server` rule reads.

One map file per cohort (`maps: {beta-users: /etc/haproxy/beta-users.map}` in the
traffic provider's settings), and once in haproxy.cfg, in the release's backend, an ACL
that looks the request up in it and a rule that sends a match to the canary server:

    backend app
        acl rc_beta_users req.hdr(X-User-Group),map(/etc/haproxy/beta-users.map) -m found
        acl rc_by_cookie req.cook(rc_cohort),map(/etc/haproxy/by-cookie.map) -m found
        acl rc_sticky_10 req.hdr(X-User-Id),crc32,mod(100),map(/etc/haproxy/sticky-10.map) -m found
        use-server canary if rc_beta_users || rc_by_cookie || rc_sticky_10
        server stable 10.0.0.1:8080 weight 100 check
        server canary 10.0.0.2:8080 weight 0 check

Each map file must exist (empty) when HAProxy starts, and `maps:` must name it exactly as
haproxy.cfg does: the runtime API knows a map by that spelling. `cohort_config_lines`
writes these lines for a cohort; a missing `maps:` entry, and a map HAProxy does
not have (`check` reaches it), are refused with them quoted.

What relconsole writes, one entry per key, each with the value `canary`:

- header or cookie cohort (`header: X-User-Group, values: [beta]`): one entry per value.
- sticky hash (`hash: X-User-Id, percent: 10`): HAProxy hashes the header's value into
  100 buckets in the ACL (`crc32,mod(100)`: CRC-32 as zlib computes it, so
  `zlib.crc32(user_id.encode()) % 100` says where a user lands), and relconsole writes
  the buckets 0..percent-1. The same user always lands in the same bucket, so always sees
  the same version; a larger percent is a superset (sticky-25 holds sticky-10's buckets),
  so growing it keeps every user already in. A request without the header matches none.

Entries go in with `add map` (only keys not there yet: HAProxy keeps duplicates), out
with `del map` — exactly the entries of the cohorts being turned off, never anything
else — and are read back with `show map <file>`. Map and weight commands go on one
command line, so HAProxy applies a step in one go; the weights are the canary's own
(`haproxy.split_weights`). Rollback (`set_route(0, Route())`) removes every entry
relconsole wrote and sets the canary's weight to 0.

What HAProxy does, checked on 2.6: `use-server` sends a cohort to the canary at weight 0
(cohort steps come before any weight) and while it drains; a canary that is down or in
maintenance is skipped, and its cohort falls back to the weights. Map entries added at
runtime live in HAProxy's memory only: a reload or restart loads the (empty) files again
and drops them. A read that finds entries gone which this provider had added, entries
it did not write (a key no cohort has, another value), or a cohort half there, raises
a `ProviderError` saying which, so a release never reads as routed when it is not (and
a rollback is never verified while a foreign entry still sends users to the canary).

Several canary servers: `use-server` names one server, so send the cohort to a second
backend holding the canary servers instead, from the frontend (`acl …` as above, then
`use_backend app_canary if rc_beta_users`); the weights stay on the release's backend.

Gates compare the canary's metrics with the stable's as in a canary release: the
canary's series carry its version label whichever route brought the request.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relconsole.model import Cohort, Route, TrafficState
from relconsole.providers._settings import Settings, kind_of
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.providers.haproxy import (
    NAME,
    HAProxySettings,
    HAProxyTraffic,
    explain_reply,
    parse_settings,
    parse_weights,
    split_answers,
    split_weights,
)
from relconsole.suggest import did_you_mean

VALUE = "canary"  # what every entry relconsole writes maps its key to
BUCKETS = 100  # the ACL's `mod(100)`
HASH_CONVERTERS = f"crc32,mod({BUCKETS})"
# Keys and paths travel as words of a runtime-API command line: no whitespace (the CLI
# splits on it), no `;` (the command separator), no backslash (its escape), no `#`
# first (a comment in a map file); printable ASCII, which every header value is.
_WORD = re.compile(r"[!-~]{1,200}\Z")
_BAD = re.compile(r"[;\\]")
_UNKNOWN_MAP = "Unknown map identifier"
_OWN = ("socket", "address", "backend", "stable", "canary", "timeout", "maps")
# Not this strategy's, but haproxy.parse_settings says why in its own words.
_THEIRS = ("preview", "preview_headers")


def _err(message: str) -> ProviderError:
    return ProviderError(f"{NAME}: {message}")


def _clip(text: str, limit: int = 120) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _word(text: str) -> bool:
    return bool(_WORD.match(text)) and not _BAD.search(text) and not text.startswith("#")


def acl_name(cohort: str) -> str:
    return "rc_" + re.sub(r"[^A-Za-z0-9_]", "_", cohort)


def sample(cohort: Cohort) -> str:
    """The HAProxy sample expression the cohort's ACL looks up in its map."""
    if cohort.hash:
        return f"req.hdr({cohort.hash}),{HASH_CONVERTERS}"
    if cohort.cookie:
        return f"req.cook({cohort.cookie})"
    return f"req.hdr({cohort.header})"


def cohort_config_lines(cohort: Cohort, path: str, canary: str = "canary") -> list[str]:
    """The one-time haproxy.cfg lines, in the backend, that route `cohort` by `path`."""
    acl = acl_name(cohort.name)
    return [f"acl {acl} {sample(cohort)},map({path}) -m found",
            f"use-server {canary} if {acl}"]


def expected_keys(cohort: Cohort) -> tuple[str, ...]:
    """The map keys relconsole writes for a cohort (each mapped to `canary`)."""
    if cohort.hash:
        return tuple(str(bucket) for bucket in range(cohort.percent))
    return cohort.values


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class CohortMap:
    cohort: Cohort
    path: str

    @property
    def keys(self) -> tuple[str, ...]:
        return expected_keys(self.cohort)


@dataclass(frozen=True)
class CohortSettings:
    haproxy: HAProxySettings
    maps: tuple[CohortMap, ...]  # in the order of release.cohorts


def _snippet(cohort: Cohort, path: str, backend: str, canary: str) -> str:
    lines = " and ".join(f"`{line}`" for line in cohort_config_lines(cohort, path, canary))
    return f"in backend {backend}: {lines}"


def parse_cohort_settings(raw: dict[str, Any], ctx: BuildContext) -> CohortSettings:
    plan = ctx.plan
    if "drain_timeout" in raw:
        raise _err("'drain_timeout' is for release.strategy: blue-green only (cohorts and "
                   "weights drain nothing); remove it")
    unknown = sorted(set(raw) - {"type", *_OWN, *_THEIRS})
    if unknown:
        hint = did_you_mean(unknown[0], _OWN, inline=True)
        raise _err(f"unknown setting '{_clip(unknown[0], 40)}'{hint}; known settings for "
                   f"release.strategy ab: {', '.join(_OWN)}")
    s = Settings(NAME, raw, _OWN + _THEIRS)
    base = parse_settings({k: v for k, v in raw.items() if k != "maps"}, strategy="ab",
                          call_timeout=plan.call_timeout)
    canary = base.canary[0]
    maps_raw = raw.get("maps")
    if maps_raw is None:
        maps_raw = {}
    if not isinstance(maps_raw, dict):
        raise s.error(f"'maps' must be a mapping of cohort names to the map files "
                      f"haproxy.cfg reads, such as {{beta-users: /etc/haproxy/"
                      f"beta-users.map}}, not {kind_of(maps_raw)}")
    known = [c.name for c in plan.cohorts]
    paths: dict[str, str] = {}
    for name, path in maps_raw.items():
        if plan.cohort(str(name)) is None:
            hint = did_you_mean(str(name), known, inline=True)
            listed = ", ".join(known) or "none"
            raise s.error(f"maps: '{_clip(str(name), 40)}'{hint} is not a cohort of "
                          f"release.cohorts (cohorts: {listed})")
        if not isinstance(path, str) or not _word(path.strip()):
            raise s.error(f"maps: the map file of cohort {name} must be a path without "
                          f"spaces, ';' or '\\', as haproxy.cfg names it, not {kind_of(path)}")
        path = path.strip()
        if path in paths.values():
            other = next(n for n, p in paths.items() if p == path)
            raise s.error(f"maps: cohorts {other} and {name} both use {path}; each cohort "
                          "needs its own map file (its own ACL)")
        paths[str(name)] = path
    used = [name for step in plan.steps for name in step.route.cohorts]
    for name in dict.fromkeys(used):
        cohort = plan.cohort(name)
        if cohort is None:
            raise s.error(f"a step routes cohort '{name}', which release.cohorts does not "
                          "define")
        if name not in paths:
            path = f"/etc/haproxy/rc-{name}.map"
            raise s.error(
                f"cohort {name} ({cohort.describe()}) has no map file: add `maps: "
                f"{{{name}: {path}}}` to providers.traffic, create that file empty, and add "
                f"once to haproxy.cfg {_snippet(cohort, path, base.backend, canary)}")
    maps: list[CohortMap] = []
    for cohort in plan.cohorts:
        if cohort.name not in paths:
            continue
        _check_cohort(s, cohort)
        maps.append(CohortMap(cohort, paths[cohort.name]))
    return CohortSettings(haproxy=base, maps=tuple(maps))


def _check_cohort(s: Settings, cohort: Cohort) -> None:
    if cohort.hash:
        if not 0 < cohort.percent <= BUCKETS:
            raise s.error(f"cohort {cohort.name}: percent must be 1..100, not {cohort.percent}")
        return
    if not cohort.values:
        raise s.error(f"cohort {cohort.name}: no values to route")
    for value in cohort.values:
        if not _word(value):
            raise s.error(f"cohort {cohort.name}: the value {kind_of(value)} cannot be a "
                          "HAProxy map key (printable, without spaces, ';' or '\\', and not "
                          "starting with '#')")


# ----------------------------------------------------------------------------- replies


def parse_map(reply: str, path: str) -> list[tuple[str, str, str]]:
    """`show map <file>` -> [(ref, key, value)] in HAProxy's order, duplicates kept.

    Each entry is `0x<ref> <key> <value>`; an empty map answers nothing.
    """
    out: list[tuple[str, str, str]] = []
    for line in reply.splitlines():
        if not line.strip():
            continue
        words = line.split(None, 2)
        if len(words) < 2 or not words[0].startswith("0x"):
            raise explain_map(f"show map {path}", line, path)
        out.append((words[0], words[1], words[2].strip() if len(words) > 2 else ""))
    return out


def explain_map(command: str, reply: str, path: str, entry: CohortMap | None = None,
                where: HAProxySettings | None = None) -> ProviderError:
    first = next((line.strip() for line in reply.splitlines() if line.strip()), "")
    if first.startswith(_UNKNOWN_MAP):
        if entry is None or where is None:
            return _err(f"HAProxy has no map {path}: haproxy.cfg must read it in an ACL, "
                        "with the path spelled as in maps:")
        return _err(f"HAProxy has no map {path} (cohort {entry.cohort.name}): haproxy.cfg "
                    f"must read it, with the path spelled as in maps:; add once "
                    f"{_snippet(entry.cohort, path, where.backend, where.canary[0])}, create "
                    "the file empty, and reload HAProxy")
    return explain_reply(command, reply, "")


@dataclass(frozen=True)
class MapState:
    """One cohort's map as read: which of its entries are there, and what else is."""

    entry: CohortMap
    ours: tuple[tuple[str, str], ...]  # (ref, key) of its keys mapped to `canary`
    strays: tuple[tuple[str, str, str], ...]  # (ref, key, value) it did not write

    @property
    def present(self) -> frozenset[str]:
        return frozenset(key for _, key in self.ours)

    @property
    def full(self) -> bool:
        return self.present == set(self.entry.keys)

    @property
    def empty(self) -> bool:
        return not self.ours

    def deletions(self) -> list[str]:
        """`del map` commands for its entries, and for nothing else."""
        path = self.entry.path
        shared = {key for _, key, _ in self.strays}
        by_key = sorted({key for _, key in self.ours if key not in shared}, key=_bucket_order)
        # `del map <file> <key>` removes every entry of the key; where a stray shares it,
        # only ours go, by reference.
        return ([f"del map {path} {key}" for key in by_key]
                + [f"del map {path} #{ref}" for ref, key in self.ours if key in shared])


def map_state(entry: CohortMap, entries: Sequence[tuple[str, str, str]]) -> MapState:
    wanted = set(entry.keys)
    ours = tuple((ref, key) for ref, key, value in entries if key in wanted and value == VALUE)
    strays = tuple(e for e in entries if e[1] not in wanted or e[2] != VALUE)
    return MapState(entry, ours, strays)


def _bucket_order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (BUCKETS + 1, key)


def stray_problems(states: dict[str, MapState]) -> list[str]:
    out = []
    for name, st in states.items():
        if st.strays:
            path = st.entry.path
            shown = ", ".join("'" + f"{key} {value}".strip() + "'"
                              for _, key, value in st.strays[:3])
            more = f" and {len(st.strays) - 3} more" if len(st.strays) > 3 else ""
            out.append(f"map {path} (cohort {name}) holds entries relconsole did not write: "
                       f"{shown}{more} (remove them with `del map {path} <key>` if they "
                       "should not send users to the canary)")
    return out


# ----------------------------------------------------------------------------- the provider


class HAProxyCohorts:
    """`RouteTraffic` for strategy ab: cohorts by map entries, then the canary's weights."""

    name = NAME

    def __init__(self, settings: CohortSettings) -> None:
        self.settings = settings
        self.weights_provider = HAProxyTraffic(settings.haproxy)
        self.api = self.weights_provider.api
        # The route this provider last applied and verified; None until it has moved
        # (after a restart, what the maps hold is all there is to go by).
        self.applied: Route | None = None

    @property
    def _servers(self) -> tuple[str, ...]:
        h = self.settings.haproxy
        return h.canary + h.stable

    async def _snapshot(self) -> tuple[dict[str, int], dict[str, MapState]]:
        """Weights and every cohort map, read with one command line."""
        h = self.settings.haproxy
        maps = self.settings.maps
        commands = ([f"get weight {h.backend}/{x}" for x in self._servers]
                    + [f"show map {m.path}" for m in maps])
        reply = await self.api.call("; ".join(commands))
        answers = split_answers(reply, len(commands))
        n = len(self._servers)
        weights = parse_weights("\n".join(answers[:n]) + "\n", self._servers, h.backend)
        if len(answers) < len(commands):
            raise _err(f"unexpected answer to `show map {maps[0].path}`: "
                       f"{_clip(reply) or '(empty)'}")
        states: dict[str, MapState] = {}
        for entry, answer in zip(maps, answers[n:], strict=True):
            if answer.strip().startswith(_UNKNOWN_MAP):
                raise explain_map(f"show map {entry.path}", answer, entry.path, entry, h)
            states[entry.cohort.name] = map_state(entry, parse_map(answer, entry.path))
        return weights, states

    def _problems(self, states: dict[str, MapState]) -> list[str]:
        """What the maps hold that no route of this release explains."""
        out = stray_problems(states)
        for name, st in states.items():
            path = st.entry.path
            if not st.full and not st.empty:
                missing = sorted(set(st.entry.keys) - st.present, key=_bucket_order)
                out.append(f"cohort {name} is half there: {len(missing)} of "
                           f"{len(set(st.entry.keys))} entries missing from {path} "
                           f"({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''})")
            elif self.applied is not None:
                on = name in self.applied.cohorts
                if on and st.empty:
                    out.append(f"cohort {name}: the entries relconsole added to {path} are "
                               "gone — runtime map entries are lost when HAProxy reloads or "
                               "restarts, so its users now get stable; apply the step again "
                               "(advance) or roll back")
                elif not on and st.full:
                    out.append(f"cohort {name} is routed to the canary ({path} holds its "
                               "entries) but relconsole did not put them there")
        return out

    async def read(self) -> TrafficState:
        base, (_, states) = await asyncio.gather(self.weights_provider.read(),
                                                 self._snapshot())
        problems = self._problems(states)
        if problems:
            raise _err("; ".join(problems))
        route = _route(states)
        note = ""
        if route.cohorts:
            entries = sum(len(st.present) for st in states.values())
            note = (f"{entries} map entr{'y' if entries == 1 else 'ies'} route "
                    f"{route.text()} to the canary (runtime only: a HAProxy reload drops "
                    "them, and relconsole says so)")
        return TrafficState(canary_weight=base.canary_weight, servers=base.servers,
                            route=route, note=note)

    async def set_weight(self, weight: int, *, reason: str) -> None:
        """A weight with the cohorts kept as they are."""
        _, states = await self._snapshot()
        route = self.applied if self.applied is not None else _route(states)
        await self.set_route(weight, route, reason=reason)

    async def set_route(self, weight: int, route: Route, *, reason: str) -> None:
        h = self.settings.haproxy
        if not 0 <= weight <= 100:
            raise _err(f"weight {weight} is outside 0..100")
        if route.mirror or route.batches:
            raise _err("strategy ab routes cohorts and weights only (no mirror, no batches)")
        known = {m.cohort.name for m in self.settings.maps}
        unknown = [c for c in route.cohorts if c not in known]
        if unknown:
            raise _err(f"cohort {unknown[0]} has no map file in providers.traffic.maps")
        wc, ws = split_weights(weight, len(h.stable), len(h.canary))
        rollback = weight == 0 and not route
        # Unknown servers and maps fail here, by name, before anything changes.
        _, states = await self._snapshot()
        strays = stray_problems(states)
        if strays and not rollback:
            # Moving on would leave users routed by entries nobody planned.
            raise _err("nothing changed: " + "; ".join(strays))
        wanted = set(route.cohorts)
        commands: list[str] = []
        for name, st in states.items():
            if name in wanted:
                # Only keys not there yet: `add map` of a key present adds a duplicate.
                commands += [f"add map {st.entry.path} {key} {VALUE}" for key in st.entry.keys
                             if key not in st.present]
            else:
                commands += st.deletions()
        target = {**{c: wc for c in h.canary}, **{s: ws for s in h.stable}}
        commands += [f"set weight {h.backend}/{x} {w}" for x, w in target.items()]
        await self._send(commands)
        got, after = await self._snapshot()
        wrong = [f"{x} reports {got[x]}, asked {w}" for x, w in target.items() if got[x] != w]
        for name, st in after.items():
            if name in wanted and not st.full:
                keys = len(set(st.entry.keys))
                wrong.append(f"cohort {name}: {keys - len(st.present)} of {keys} entries "
                             f"missing from {st.entry.path} after `add map`")
            if name not in wanted and not st.empty:
                wrong.append(f"cohort {name}: {len(st.ours)} entr"
                             f"{'y' if len(st.ours) == 1 else 'ies'} still in "
                             f"{st.entry.path} after `del map`")
        if wrong:
            raise _err(f"route not applied on backend {h.backend}: {'; '.join(wrong)}")
        self.applied = Route(cohorts=tuple(n for n in after if n in wanted))
        strays = stray_problems(after)
        if strays:
            done = "rolled back" if rollback else "applied"
            # What is left is not relconsole's to delete, and still routes users.
            raise _err(f"{done} what relconsole writes, but not verified: "
                       + "; ".join(strays))

    async def _send(self, commands: list[str]) -> None:
        """Commands that answer nothing on success, on one line (HAProxy applies it whole)."""
        if not commands:
            return
        reply = await self.api.call("; ".join(commands))
        if not reply.strip():
            return
        for command, answer in zip(commands, split_answers(reply, len(commands)),
                                   strict=False):
            text = answer.strip()
            # A `del map` of an entry someone removed meanwhile: it is gone, as asked.
            if not text or (command.startswith("del map ") and text == "Key not found."):
                continue
            if command.split()[1] == "map":
                path = command.split()[2]
                entry = next((m for m in self.settings.maps if m.path == path), None)
                raise explain_map(command, text, path, entry, self.settings.haproxy)
            raise explain_reply(command, text, self.settings.haproxy.backend)

    async def close(self) -> None:
        await self.weights_provider.close()


def _route(states: dict[str, MapState]) -> Route:
    return Route(cohorts=tuple(n for n, st in states.items() if st.full))


def build_cohort_traffic(settings: dict[str, Any], ctx: BuildContext) -> HAProxyCohorts:
    return HAProxyCohorts(parse_cohort_settings(settings, ctx))
