"""Flagsmith features through the Admin API.

```yaml
providers:
  flags:
    type: flagsmith
    token: env:FLAGSMITH_ADMIN_KEY   # an Organisation API key
    project: 12                      # project id
    environment: ser.aBcD…           # the environment's API key
    # url: https://api.flagsmith.com (default; your own host when self-hosted)
```

Kill disables the feature in the environment (its environment default feature state):
every SDK then sees it disabled. Flagsmith has no plain percentage rollout for a
feature (percentages are segment rules and multivariate weights), so `flag set` is
refused with a message rather than done half-right.

Endpoints (https://api.flagsmith.com/api/v1/docs/):
- GET   /api/v1/projects/{project}/features/?page=…           "features list"
- GET   /api/v1/projects/{project}/tags/                      "tags list" (for flag types)
- GET   /api/v1/environments/{env_key}/featurestates/?page=…  "featurestates list"
- PATCH /api/v1/environments/{env_key}/featurestates/{id}/    "featurestates partial update"
Every call carries ``Authorization: Api-Key <key>``.
"""

from __future__ import annotations

from typing import Any, TypeGuard

import httpx

from relconsole.model import Flag, FlagKind
from relconsole.providers._http import HttpApi, as_list, iso_time, parse_settings
from relconsole.providers._http import path_segment as _p
from relconsole.providers.base import BuildContext, ProviderError

PAGE = 100
MAX_PAGES = 100
KIND_TAGS = {"release", "experiment", "operational", "kill-switch", "killswitch", "permission",
             "ops"}


class FlagsmithFlags:
    name = "flagsmith"
    # Flagsmith keeps percentages in segment overrides of its own: no rollout dialog.
    supports_rollout = False

    def __init__(
        self,
        settings: dict[str, Any],
        ctx: BuildContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        http = parse_settings(
            "flagsmith", settings, default_url="https://api.flagsmith.com",
            allowed={"project", "environment"},
        )
        project = settings.get("project")
        if isinstance(project, bool) or not isinstance(project, (int, str)) or not str(project):
            raise ProviderError("flagsmith: project is required (the project id)")
        environment = settings.get("environment")
        if not isinstance(environment, str) or not environment:
            raise ProviderError("flagsmith: environment is required (the environment's API key)")
        self.project = str(project)
        self.environment = environment
        self.api = HttpApi(
            "flagsmith",
            http,
            {"Authorization": f"Api-Key {http.token}", "Accept": "application/json"},
            describe=self._describe,
            transport=transport,
        )
        self._state_ids: dict[str, int] = {}

    def _describe(self, status: int, message: str, what: str) -> str | None:
        said = f": {message}" if message else ""
        if status == 400:
            return f"{what}: Flagsmith rejected the request (HTTP 400{said})"
        if status == 409:
            return (f"{what}: Flagsmith refused the change (HTTP 409{said}); if the environment "
                    "requires change requests, raise one in Flagsmith")
        return None

    async def _paged(self, path: str, what: str) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for page_no in range(1, MAX_PAGES + 1):
            page = await self.api.json("GET", path, what,
                                       params={"page": page_no, "page_size": PAGE})
            batch = page.get("results") if isinstance(page, dict) else page
            if not isinstance(batch, list):
                raise ProviderError(f"flagsmith: {what}: unexpected answer (no 'results')")
            results.extend(r for r in batch if isinstance(r, dict))
            # Django REST framework pages: `next` is null on the last one. The link itself
            # is not followed: it names the server's public host, which may differ.
            if not isinstance(page, dict) or not page.get("next"):
                break
        return results

    def _states_path(self) -> str:
        return f"/api/v1/environments/{_p(self.environment)}/featurestates/"

    async def _states(self) -> dict[int, dict[str, Any]]:
        states = await self._paged(self._states_path(), "list feature states")
        # Only the environment default: not identity overrides, not segment overrides;
        # and only states with the ids a write needs.
        return {s["feature"]: s for s in states
                if _id(s.get("feature")) and _id(s.get("id")) and s.get("identity") is None
                and s.get("feature_segment") is None}

    async def list_flags(self) -> list[Flag]:
        features = await self._paged(f"/api/v1/projects/{_p(self.project)}/features/",
                                     "list features")
        tags = {t["id"]: str(t.get("label", ""))
                for t in await self._paged(f"/api/v1/projects/{_p(self.project)}/tags/",
                                           "list tags") if _id(t.get("id"))}
        states = await self._states()
        flags = []
        self._state_ids = {}
        for feature in features:
            if feature.get("is_archived"):
                continue
            key = str(feature.get("name", ""))
            feature_id = feature.get("id")
            state = states.get(feature_id) if _id(feature_id) else None
            if state is None:
                continue  # not in this environment
            self._state_ids[key] = state["id"]
            labels = [tags.get(t, "") for t in as_list(feature.get("tags")) if _id(t)]
            kind = next((FlagKind.parse(t) for t in labels if t.lower() in KIND_TAGS),
                        FlagKind.RELEASE)
            owners = [o.get("email") for o in as_list(feature.get("owners"))
                      if isinstance(o, dict)]
            owners += [g.get("name") for g in as_list(feature.get("group_owners"))
                       if isinstance(g, dict)]
            flags.append(Flag(
                key=key,
                kind=kind,
                enabled=bool(state.get("enabled")),
                rollout=None,
                owner=", ".join(str(o) for o in owners if o),
                description=str(feature.get("description") or ""),
                created=iso_time(feature.get("created_date")),
                last_changed=iso_time(state.get("updated_at")),
                environment=self.environment_label,
            ))
        return flags

    @property
    def environment_label(self) -> str:
        # The environment key is not secret (SDKs ship it) but is long; show its start.
        return self.environment[:12]

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None:
        state_id = self._state_ids.get(key)
        if state_id is None:
            await self.list_flags()
            state_id = self._state_ids.get(key)
        if state_id is None:
            raise ProviderError(f"flagsmith: no feature named {key!r} in this environment")
        await self.api.request(
            "PATCH", f"{self._states_path()}{state_id}/",
            f"{'enable' if enabled else 'disable'} {key}", ok=(200,),
            json={"enabled": enabled},
        )

    async def set_rollout(self, key: str, percent: int, *, reason: str) -> None:
        raise ProviderError(
            "flagsmith: percentage rollouts are segment rules in Flagsmith; relconsole can "
            "only turn a feature on or off — change the split in Flagsmith"
        )

    async def close(self) -> None:
        await self.api.close()


def _id(value: Any) -> TypeGuard[int]:
    """Flagsmith ids are integers; anything else (a list, a dict, true) is no id at all."""
    return type(value) is int


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> FlagsmithFlags:
    return FlagsmithFlags(settings, ctx)
