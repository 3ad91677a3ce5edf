"""Split (Harness FME) feature flags through the Admin API.

```yaml
providers:
  flags:
    type: split
    token: env:SPLIT_ADMIN_API_KEY   # an Admin API key (Bearer)
    workspace: 7f9e…                 # the workspace (project) id
    environment: Production          # environment name or id; default: release.environment
    # url: https://api.split.io      (default)
```

Kill uses Split's own kill: every key gets the flag's default treatment at once.
Restore lifts it. The rollout is the default rule's share of the "on" treatment.

Endpoints (https://docs.split.io/reference):
- GET   /internal/api/v2/splits/ws/{ws}?limit=…&offset=…     "List feature flags" (metadata:
  description, tags, owners, creation time)
- GET   /internal/api/v2/splits/ws/{ws}/environments/{env}?limit=…&offset=…
                                              "List feature flag definitions in environment"
- PUT   /internal/api/v2/splits/ws/{ws}/{name}/environments/{env}/kill     "Kill feature flag
  in environment"; …/restore "Restore feature flag in environment"
- PATCH /internal/api/v2/splits/ws/{ws}/{name}/environments/{env}   "Partial update feature
  flag definition in environment" (JSON patch on /defaultRule)
Every call carries ``Authorization: Bearer <admin key>``.
"""

from __future__ import annotations

from typing import Any

import httpx

from relconsole.model import Flag, FlagKind
from relconsole.providers._http import (
    HttpApi,
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

PAGE = 50  # Split's maximum page size for these listings
MAX_PAGES = 200
KIND_TAGS = {"release", "experiment", "operational", "kill-switch", "killswitch", "permission",
             "ops"}


class SplitFlags:
    name = "split"
    supports_rollout = True

    def __init__(
        self,
        settings: dict[str, Any],
        ctx: BuildContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        http = parse_settings(
            "split", settings, default_url="https://api.split.io",
            allowed={"workspace", "environment", "on_treatment"},
        )
        workspace = settings.get("workspace")
        if not isinstance(workspace, str) or not workspace:
            raise ProviderError("split: workspace is required (the workspace id)")
        self.workspace = workspace
        self.environment = str(settings.get("environment") or ctx.plan.environment)
        self.on_treatment = str(settings.get("on_treatment", "on"))
        self.api = HttpApi(
            "split",
            http,
            {"Authorization": f"Bearer {http.token}", "Accept": "application/json"},
            describe=self._describe,
            transport=transport,
        )

    def _describe(self, status: int, message: str, what: str) -> str | None:
        said = f": {message}" if message else ""
        if status == 409:
            return (f"{what}: Split refused the change (HTTP 409{said}); if the environment "
                    "requires approvals, request one in Split")
        if status == 400:
            return f"{what}: Split rejected the request (HTTP 400{said})"
        return None

    async def _paged(self, path: str, what: str) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        offset = 0
        for _ in range(MAX_PAGES):
            page = await self.api.json("GET", path, what,
                                       params={"limit": PAGE, "offset": offset})
            batch = page.get("objects") if isinstance(page, dict) else None
            if not isinstance(batch, list):
                raise ProviderError(f"split: {what}: unexpected answer (no 'objects')")
            objects.extend(o for o in batch if isinstance(o, dict))
            offset += len(batch)
            total = page.get("totalCount")
            if not batch or not isinstance(total, int) or offset >= total:
                break
        return objects

    def _base(self) -> str:
        return f"/internal/api/v2/splits/ws/{_p(self.workspace)}"

    def _env_path(self, key: str) -> str:
        return f"{self._base()}/{_p(key)}/environments/{_p(self.environment)}"

    async def list_flags(self) -> list[Flag]:
        meta = {str(m.get("name")): m for m in await self._paged(self._base(), "list flags")}
        definitions = await self._paged(
            f"{self._base()}/environments/{_p(self.environment)}",
            f"list flag definitions in {self.environment}",
        )
        flags = []
        for d in definitions:
            key = str(d.get("name", ""))
            m = meta.get(key, {})
            tags = [str(t.get("name", "")) if isinstance(t, dict) else str(t)
                    for t in as_list(m.get("tags"))]
            kind = next((FlagKind.parse(t) for t in tags if t.lower() in KIND_TAGS),
                        FlagKind.RELEASE)
            owners = [o.get("name") or o.get("id") for o in as_list(m.get("owners"))
                      if isinstance(o, dict)]
            flags.append(Flag(
                key=key,
                kind=kind,
                enabled=not bool(d.get("killed")),
                rollout=self._rollout(d),
                owner=", ".join(str(o) for o in owners if o),
                description=str(m.get("description") or ""),
                created=iso_time(d.get("creationTime") or m.get("creationTime")),
                last_changed=iso_time(d.get("lastUpdateTime")),
                environment=self.environment,
            ))
        return flags

    def _rollout(self, definition: dict[str, Any]) -> int | None:
        rule = [b for b in as_list(definition.get("defaultRule")) if isinstance(b, dict)]
        sizes = [whole_number(b.get("size", 0)) for b in rule]
        # An unreadable or negative size makes the split unknown, not a made-up percentage.
        if not rule or any(size is None or size < 0 for size in sizes):
            return None
        total = sum(size for size in sizes if size is not None)
        if total <= 0:
            return None
        on = sum(size for b, size in zip(rule, sizes, strict=True)
                 if size is not None and b.get("treatment") == self.on_treatment)
        return percentage(100 * on / total)

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None:
        action = "restore" if enabled else "kill"
        await self.api.request(
            "PUT", f"{self._env_path(key)}/{action}", f"{action} {key} in {self.environment}",
            ok=(200, 204), json={"comment": f"relconsole: {reason}"},
        )

    async def set_rollout(self, key: str, percent: int, *, reason: str) -> None:
        if not 0 <= percent <= 100:
            raise ProviderError(f"split: rollout {percent} outside 0..100")
        what = f"set {key} rollout to {percent}% in {self.environment}"
        definition = await self.api.json("GET", self._env_path(key), f"read {key}")
        if not isinstance(definition, dict):
            raise ProviderError(f"split: read {key}: unexpected answer (not a definition)")
        treatments = [t["name"] for t in as_list(definition.get("treatments"))
                      if isinstance(t, dict) and isinstance(t.get("name"), str)]
        others = [t for t in treatments if t != self.on_treatment]
        if self.on_treatment not in treatments or len(others) != 1:
            raise ProviderError(
                f"split: {what}: only flags with two treatments ({self.on_treatment} and one "
                f"other) can be set to a percentage here (treatments: {', '.join(treatments)})"
            )
        rule = [{"treatment": self.on_treatment, "size": percent},
                {"treatment": others[0], "size": 100 - percent}]
        await self.api.request(
            "PATCH", self._env_path(key), what, ok=(200,),
            json=[{"op": "replace", "path": "/defaultRule", "value": rule}],
        )

    async def close(self) -> None:
        await self.api.close()


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> SplitFlags:
    return SplitFlags(settings, ctx)
