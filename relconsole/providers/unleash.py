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

Endpoints used (Unleash Admin API, https://docs.getunleash.io/reference/api/unleash):
- GET  /api/admin/search/features?project=IS:{p}            "Search and filter features"
- GET  /api/admin/projects/{p}/features/{f}/environments/{e}  "Get a feature environment"
- POST /api/admin/projects/{p}/features/{f}/environments/{e}/on|off  "Enable/Disable a
  feature toggle in an environment"
- POST /api/admin/projects/{p}/features/{f}/environments/{e}/strategies  "Add a strategy"
- PATCH …/strategies/{id} (RFC 6902 JSON patch)              "Patch a strategy"
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from relconsole.model import Flag, FlagKind
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


class UnleashFlags:
    name = "unleash"
    supports_rollout = True

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

    async def _strategies(self, key: str) -> list[dict[str, Any]]:
        env = await self.api.json("GET", self._feature_path(key), f"read {key}")
        return [s for s in as_list(as_dict(env).get("strategies")) if isinstance(s, dict)]

    @staticmethod
    def _rollout_strategy(strategies: list[dict[str, Any]]) -> dict[str, Any] | None:
        live = [s for s in strategies if s.get("name") == "flexibleRollout"
                and not s.get("disabled")]
        # sortOrder is a number; anything else sorts first rather than failing the sort.
        live.sort(key=lambda s: whole_number(s.get("sortOrder")) or 0)
        return live[0] if live else None

    async def list_flags(self) -> list[Flag]:
        features = await self._search()
        gate = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def rollout(feature: dict[str, Any], env: dict[str, Any] | None) -> int | None:
            # Only flags with strategies in this environment can have a rollout; the
            # others cost no extra request.
            if env is None or not env.get("hasStrategies", True):
                return None
            async with gate:
                strategies = await self._strategies(str(feature.get("name")))
            chosen = self._rollout_strategy(strategies)
            if chosen is None:
                return None
            rollout = whole_number(as_dict(chosen.get("parameters")).get("rollout"))
            return percentage(rollout)

        envs = [self._env(f) for f in features]
        rollouts = await asyncio.gather(*(rollout(f, e) for f, e in zip(features, envs,
                                                                          strict=True)))
        flags = []
        for feature, env, percent in zip(features, envs, rollouts, strict=True):
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

    async def close(self) -> None:
        await self.api.close()


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> UnleashFlags:
    return UnleashFlags(settings, ctx)
