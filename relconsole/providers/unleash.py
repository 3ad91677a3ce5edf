"""Unleash flags through the Admin API (tested against a real unleash-server).

```yaml
providers:
  flags:
    type: unleash
    url: https://unleash.example.com     # the server, without /api
    token: env:UNLEASH_ADMIN_TOKEN        # an admin (or personal access) token
    project: default
    environment: production               # default: release.environment
    owner_tag: owner                      # tag type that names a flag's owner
```

A flag's state is its state in one environment; "kill" turns the flag off there, which
makes every SDK serve the off path at once. The rollout is the `rollout` parameter of
the flag's first `flexibleRollout` strategy in that environment. Changing it keeps the
strategy's `groupId` and `stickiness`, so users already in the rollout stay in it as the
percentage grows (Unleash hashes groupId + stickiness value).

A cohort (`target`) is a strategy of its own beside the rollout: `flexibleRollout` at
100 % with one constraint `{contextName: ATTR, operator: IN, values: [...]}` and the
title "relconsole cohort: ATTR" (user ids: contextName `userId`). Unleash serves a flag
to a context when any strategy holds, so the cohort is on whatever the percentage, and
the rollout strategy (its groupId, stickiness, percentage) is never touched. Targeting
the same attribute again replaces the constraint's values; `untarget` deletes exactly
that strategy. Reading back, the live strategies of exactly that shape and title are the
flag's cohorts (`Flag.segments`) and never its rollout. A flag that is off with no
strategy may get a cohort first (turned on, it serves only the cohort); one that is on
with no other strategy is refused either way, as SDKs differ on what that serves.

Endpoints used (Unleash Admin API, https://docs.getunleash.io/reference/api/unleash):
- GET  /api/admin/search/features?project=IS:{p}            "Search and filter features"
- GET  /api/admin/projects/{p}/features/{f}/environments/{e}  "Get a feature environment"
- POST /api/admin/projects/{p}/features/{f}/environments/{e}/on|off  "Enable/Disable a
  feature toggle in an environment"
- POST /api/admin/projects/{p}/features/{f}/environments/{e}/strategies  "Add a strategy"
- PATCH …/strategies/{id} (RFC 6902 JSON patch)              "Patch a strategy"
- PUT / DELETE …/strategies/{id}                              "Update / Delete a strategy"
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from relconsole.model import Flag, FlagKind, Segment
from relconsole.providers._http import (
    HttpApi,
    as_dict,
    as_list,
    iso_time,
    parse_settings,
    percentage,
    whole_number,
)
from relconsole.providers._http import (
    path_segment as _p,
)
from relconsole.providers.base import BuildContext, ProviderError

PAGE = 100
MAX_PAGES = 100  # 10 000 flags; a paging loop must end even if a server misbehaves
DETAIL_CONCURRENCY = 8
COHORT_TITLE = "relconsole cohort: "  # + the attribute: marks the strategies `target` owns


def cohort_of(strategy: dict[str, Any]) -> Segment | None:
    """The cohort a strategy `target` wrote serves; None for any other strategy."""
    title = strategy.get("title")
    if (strategy.get("name") != "flexibleRollout" or strategy.get("disabled")
            or not isinstance(title, str) or not title.startswith(COHORT_TITLE)):
        return None
    constraints = as_list(strategy.get("constraints"))
    if len(constraints) != 1 or not isinstance(constraints[0], dict):
        return None
    rule = constraints[0]
    values = as_list(rule.get("values"))
    name = rule.get("contextName")
    if (rule.get("operator") != "IN" or rule.get("inverted") or not isinstance(name, str)
            or title != COHORT_TITLE + name or not values
            or not all(isinstance(v, str) for v in values)):
        return None
    if whole_number(as_dict(strategy.get("parameters")).get("rollout")) != 100:
        return None
    return Segment(name, tuple(values))


def cohort_strategy(key: str, segment: Segment) -> dict[str, Any]:
    """The strategy that serves `key` to `segment`, as POST/PUT take it."""
    return {
        "name": "flexibleRollout",
        "title": COHORT_TITLE + segment.attribute,
        "constraints": [{"contextName": segment.attribute, "operator": "IN",
                         "values": list(segment.values), "caseInsensitive": False,
                         "inverted": False}],
        "parameters": {"rollout": "100", "stickiness": "default", "groupId": key},
    }


class UnleashFlags:
    name = "unleash"
    supports_rollout = True
    segments_supported = True

    def __init__(
        self,
        settings: dict[str, Any],
        ctx: BuildContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        http = parse_settings(
            "unleash", settings, default_url=None,
            allowed={"project", "environment", "owner_tag"},
        )
        self.project = str(settings.get("project", "default"))
        self.environment = str(settings.get("environment") or ctx.plan.environment)
        self.owner_tag = str(settings.get("owner_tag", "owner"))
        self.api = HttpApi(
            "unleash",
            http,
            # Unleash takes the raw token, no "Bearer" prefix.
            {"Authorization": http.token, "Accept": "application/json"},
            describe=self._describe,
            transport=transport,
        )

    def _describe(self, status: int, message: str, what: str) -> str | None:
        if status == 401:
            return (f"{what}: the API token was rejected (HTTP 401: {message or 'unauthorized'})"
                    "; check providers.flags.token")
        if status == 403:
            return (f"{what}: the token may not do this (HTTP 403: {message}); an admin "
                    f"token or a role with update rights on project {self.project} is needed")
        if status == 409:
            return f"{what}: refused by Unleash (HTTP 409: {message})"
        return None

    def _feature_path(self, key: str) -> str:
        return (f"/api/admin/projects/{_p(self.project)}/features/{_p(key)}"
                f"/environments/{_p(self.environment)}")

    async def _search(self) -> list[dict[str, Any]]:
        features: list[dict[str, Any]] = []
        offset = 0
        # Bounded: a server that keeps answering the same page with a large `total`
        # would otherwise be asked for ever, and the console would never show a thing.
        for _ in range(MAX_PAGES):
            page = await self.api.json(
                "GET", "/api/admin/search/features", "list flags",
                params={"project": f"IS:{self.project}", "limit": PAGE, "offset": offset},
            )
            batch = page.get("features") if isinstance(page, dict) else None
            if not isinstance(batch, list):
                raise ProviderError("unleash: list flags: unexpected answer (no 'features')")
            features.extend(f for f in batch if isinstance(f, dict))
            total = page.get("total")
            offset += len(batch)
            if not batch or not isinstance(total, int) or offset >= total:
                break
        return features

    async def _environment(self, key: str) -> tuple[bool, list[dict[str, Any]]]:
        """Whether the flag is on in the environment, and its strategies there."""
        env = as_dict(await self.api.json("GET", self._feature_path(key), f"read {key}"))
        return (env.get("enabled") is True,
                [s for s in as_list(env.get("strategies")) if isinstance(s, dict)])

    async def _strategies(self, key: str) -> list[dict[str, Any]]:
        return (await self._environment(key))[1]

    @staticmethod
    def _rollout_strategy(strategies: list[dict[str, Any]]) -> dict[str, Any] | None:
        live = [s for s in strategies if s.get("name") == "flexibleRollout"
                and not s.get("disabled") and cohort_of(s) is None]
        # sortOrder is a number; anything else sorts first rather than failing the sort.
        live.sort(key=lambda s: whole_number(s.get("sortOrder")) or 0)
        return live[0] if live else None

    async def list_flags(self) -> list[Flag]:
        features = await self._search()
        gate = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def rollout(feature: dict[str, Any], env: dict[str, Any] | None
                          ) -> tuple[int | None, tuple[Segment, ...]]:
            # Only flags with strategies in this environment can have a rollout or a
            # cohort; the others cost no extra request.
            if env is None or not env.get("hasStrategies", True):
                return None, ()
            async with gate:
                strategies = await self._strategies(str(feature.get("name")))
            segments = tuple(c for c in map(cohort_of, strategies) if c is not None)
            chosen = self._rollout_strategy(strategies)
            if chosen is None:
                return None, segments
            rollout = whole_number(as_dict(chosen.get("parameters")).get("rollout"))
            return percentage(rollout), segments

        envs = [self._env(f) for f in features]
        rollouts = await asyncio.gather(*(rollout(f, e) for f, e in zip(features, envs,
                                                                          strict=True)))
        flags = []
        for feature, env, (percent, segments) in zip(features, envs, rollouts, strict=True):
            owner = next(
                (str(t.get("value", "")) for t in as_list(feature.get("tags"))
                 if isinstance(t, dict) and t.get("type") == self.owner_tag),
                "",
            )
            flags.append(Flag(
                key=str(feature.get("name", "")),
                kind=FlagKind.parse(feature.get("type")),
                enabled=bool(env and env.get("enabled")),
                rollout=percent,
                segments=segments,
                owner=owner,
                description=str(feature.get("description") or ""),
                created=iso_time(feature.get("createdAt")),
                environment=self.environment,
                stale=bool(feature.get("stale")),
            ))
        return flags

    def _env(self, feature: dict[str, Any]) -> dict[str, Any] | None:
        for env in as_list(feature.get("environments")):
            if isinstance(env, dict) and env.get("name") == self.environment:
                return env
        return None

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None:
        action = "on" if enabled else "off"
        await self.api.request(
            "POST", f"{self._feature_path(key)}/{action}",
            f"turn {key} {action} in {self.environment}", ok=(200, 202, 204),
        )

    async def set_rollout(self, key: str, percent: int, *, reason: str) -> None:
        if not 0 <= percent <= 100:
            raise ProviderError(f"unleash: rollout {percent} outside 0..100")
        strategies = await self._strategies(key)
        chosen = self._rollout_strategy(strategies)
        what = f"set {key} rollout to {percent}% in {self.environment}"
        if chosen is None:
            blanket = [s for s in strategies if s.get("name") == "default"
                       and not s.get("disabled") and not s.get("constraints")]
            if blanket:
                raise ProviderError(
                    f"unleash: {what}: the flag has a 'default' (everyone) strategy, so a "
                    "percentage would change nothing; replace it with a gradual rollout in "
                    "Unleash first"
                )
            await self.api.request(
                "POST", f"{self._feature_path(key)}/strategies", what, ok=(200, 201),
                json={
                    "name": "flexibleRollout",
                    "constraints": [],
                    # groupId = flag key is Unleash's own default: the same users stay in
                    # as the percentage grows.
                    "parameters": {"rollout": str(percent), "stickiness": "default",
                                   "groupId": key},
                },
            )
            return
        # Only `rollout` changes: groupId and stickiness stay, so nobody is reshuffled.
        await self.api.request(
            "PATCH", f"{self._feature_path(key)}/strategies/{_p(str(chosen.get('id')))}",
            what, ok=(200, 204),
            json=[{"op": "replace", "path": "/parameters/rollout", "value": str(percent)}],
        )

    async def target(self, key: str, segment: Segment, *, reason: str) -> None:
        enabled, strategies = await self._environment(key)
        what = f"serve {key} to {segment.text()} in {self.environment}"
        mine = next((s for s in strategies if (c := cohort_of(s)) is not None
                     and c.attribute == segment.attribute), None)
        if mine is not None:
            # The same attribute again: its values change, the strategy (and its id) stay.
            await self.api.request(
                "PUT", f"{self._feature_path(key)}/strategies/{_p(str(mine.get('id')))}",
                what, ok=(200, 204), json=cohort_strategy(key, segment))
            return
        others = [s for s in strategies if not s.get("disabled") and cohort_of(s) is None]
        if enabled and not others:
            # SDKs differ on a flag that is on with no strategy (the older ones serve it
            # to everyone): a cohort must not be what decides that for the rest.
            raise ProviderError(
                f"unleash: {what}: the flag is on in {self.environment} with no strategy, "
                "which some SDKs serve to everyone; give it a rollout first (relconsole "
                f"flag set {key} 0) or a strategy in Unleash"
            )
        await self.api.request("POST", f"{self._feature_path(key)}/strategies", what,
                               ok=(200, 201), json=cohort_strategy(key, segment))

    async def untarget(self, key: str, attribute: str, *, reason: str) -> None:
        enabled, strategies = await self._environment(key)
        what = f"stop serving {key} to its {attribute} cohort in {self.environment}"
        mine = [s for s in strategies if (c := cohort_of(s)) is not None
                and c.attribute == attribute]
        if not mine:
            raise ProviderError(f"unleash: {what}: it has no cohort on {attribute}")
        if enabled and not [s for s in strategies if not s.get("disabled") and s not in mine]:
            # On with no strategy left, some SDKs would serve the flag to everyone.
            raise ProviderError(
                f"unleash: {what}: it is the flag's only strategy, and on with no strategy "
                "some SDKs serve the flag to everyone; give it a rollout first (relconsole "
                f"flag set {key} 0) or kill the flag first")
        for strategy in mine:
            await self.api.request(
                "DELETE", f"{self._feature_path(key)}/strategies/{_p(str(strategy.get('id')))}",
                what, ok=(200, 202, 204))

    async def close(self) -> None:
        await self.api.close()


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> UnleashFlags:
    return UnleashFlags(settings, ctx)
