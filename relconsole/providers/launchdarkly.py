"""LaunchDarkly flags through REST API v2 with semantic patch.

```yaml
providers:
  flags:
    type: launchdarkly
    token: env:LD_API_TOKEN          # an access token with writer rights
    project: default
    environment: production          # default: release.environment
    # url: https://app.launchdarkly.com   (default)
```

Kill turns targeting off in the environment (every context gets the off variation);
the rollout is the fallthrough ("default rule") percentage of the "on" variation (the
variation whose value is true, else the flag's default on variation).

Endpoints (https://launchdarkly.com/docs/api/feature-flags):
- GET   /api/v2/flags/{projectKey}?env=…&summary=0&limit=…&offset=…   "List feature flags";
  paged through `_links.next`
- PATCH /api/v2/flags/{projectKey}/{featureFlagKey}                  "Update feature flag",
  semantic patch: Content-Type ``application/json; domain-model=launchdarkly.semanticpatch``,
  instructions ``turnFlagOn``/``turnFlagOff`` and ``updateFallthroughVariationOrRollout``
  with ``rolloutWeights`` in thousandths of a percent (they sum to 100000).
The token goes raw in ``Authorization``; ``LD-API-Version: 20240415`` pins the API.
"""

from __future__ import annotations

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

API_VERSION = "20240415"
SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"
PAGE = 100
MAX_PAGES = 100  # 10 000 flags; a paging loop must end even if a server misbehaves


class LaunchDarklyFlags:
    name = "launchdarkly"
    supports_rollout = True

    def __init__(
        self,
        settings: dict[str, Any],
        ctx: BuildContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        http = parse_settings(
            "launchdarkly", settings, default_url="https://app.launchdarkly.com",
            allowed={"project", "environment"},
        )
        self.project = str(settings.get("project", "default"))
        self.environment = str(settings.get("environment") or ctx.plan.environment)
        self.api = HttpApi(
            "launchdarkly",
            http,
            {"Authorization": http.token, "LD-API-Version": API_VERSION,
             "Accept": "application/json"},
            describe=self._describe,
            transport=transport,
        )

    def _describe(self, status: int, message: str, what: str) -> str | None:
        said = f": {message}" if message else ""
        if status == 405:
            return (f"{what}: LaunchDarkly requires an approval for changes in environment "
                    f"{self.environment} (HTTP 405{said}); request one in LaunchDarkly")
        if status == 409:
            return (f"{what}: conflict — the flag changed in LaunchDarkly meanwhile "
                    f"(HTTP 409{said}); look again and retry")
        if status == 400:
            return f"{what}: LaunchDarkly rejected the request (HTTP 400{said})"
        return None

    # ------------------------------------------------------------------ reading

    async def _all(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        path: str | None = f"/api/v2/flags/{_p(self.project)}"
        params: dict[str, Any] | None = {"env": self.environment, "summary": 0,
                                         "limit": PAGE, "offset": 0}
        for _ in range(MAX_PAGES):
            if path is None:
                break
            page = await self.api.json("GET", path, "list flags", params=params)
            batch = page.get("items") if isinstance(page, dict) else None
            if not isinstance(batch, list):
                raise ProviderError("launchdarkly: list flags: unexpected answer (no 'items')")
            items.extend(i for i in batch if isinstance(i, dict))
            nxt = as_dict(as_dict(page.get("_links")).get("next")).get("href")
            # The next link is a path with its own query string; only ever follow it on
            # the same server.
            if not batch or not isinstance(nxt, str) or not nxt.startswith("/"):
                break
            path, params = nxt, None
        return items

    def _on_off(self, flag: dict[str, Any]) -> tuple[int | None, int | None]:
        variations = as_list(flag.get("variations"))
        values = [v.get("value") if isinstance(v, dict) else None for v in variations]
        if True in values and False in values:
            return values.index(True), values.index(False)
        defaults = as_dict(flag.get("defaults"))

        def index(value: Any) -> int | None:
            # Only an index into `variations`: one past the end was an IndexError.
            ok = type(value) is int and 0 <= value < len(variations)
            return value if ok else None

        return index(defaults.get("onVariation")), index(defaults.get("offVariation"))

    def _flag(self, flag: dict[str, Any]) -> Flag:
        key = str(flag.get("key", ""))
        env = as_dict(as_dict(flag.get("environments")).get(self.environment))
        on_index, _ = self._on_off(flag)
        rollout: int | None = None
        fallthrough = as_dict(env.get("fallthrough"))
        if isinstance(fallthrough.get("rollout"), dict):
            weights = [w for w in as_list(fallthrough["rollout"].get("variations"))
                       if isinstance(w, dict) and w.get("variation") == on_index]
            shares = [whole_number(w.get("weight", 0)) for w in weights]
            # Weights are thousandths of a percent; one unreadable weight: rollout unknown.
            if None not in shares:
                rollout = percentage(sum(s for s in shares if s is not None) / 1000)
        elif on_index is not None and isinstance(fallthrough.get("variation"), int):
            rollout = 100 if fallthrough["variation"] == on_index else 0
        tags = [str(t) for t in as_list(flag.get("tags"))]
        kind = next((FlagKind.parse(t) for t in tags if _is_kind(t)), None)
        if kind is None:
            # LaunchDarkly only knows temporary vs permanent: a temporary flag is a
            # release flag, a permanent one an operational toggle, unless tagged.
            kind = FlagKind.RELEASE if flag.get("temporary", True) else FlagKind.OPERATIONAL
        owner = (as_dict(flag.get("_maintainer")).get("email") or flag.get("maintainerTeamKey")
                 or as_dict(flag.get("_maintainerTeam")).get("key") or "")
        return Flag(
            key=key,
            kind=kind,
            enabled=bool(env.get("on")),
            rollout=rollout,
            owner=str(owner),
            description=str(flag.get("description") or ""),
            created=iso_time(flag.get("creationDate")),
            last_changed=iso_time(env.get("lastModified")),
            environment=self.environment,
        )

    async def list_flags(self) -> list[Flag]:
        return [self._flag(i) for i in await self._all()]

    # ------------------------------------------------------------------ writing

    async def _patch(self, key: str, comment: str, instructions: list[dict[str, Any]],
                     what: str) -> None:
        await self.api.request(
            "PATCH", f"/api/v2/flags/{_p(self.project)}/{_p(key)}", what,
            headers={"Content-Type": SEMANTIC_PATCH},
            json={"environmentKey": self.environment, "comment": comment,
                  "instructions": instructions},
        )

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None:
        kind = "turnFlagOn" if enabled else "turnFlagOff"
        await self._patch(key, f"relconsole: {reason}", [{"kind": kind}],
                          f"turn {key} {'on' if enabled else 'off'} in {self.environment}")

    async def set_rollout(self, key: str, percent: int, *, reason: str) -> None:
        if not 0 <= percent <= 100:
            raise ProviderError(f"launchdarkly: rollout {percent} outside 0..100")
        what = f"set {key} rollout to {percent}% in {self.environment}"
        flag = await self.api.json(
            "GET", f"/api/v2/flags/{_p(self.project)}/{_p(key)}", f"read {key}",
            params={"env": self.environment},
        )
        if not isinstance(flag, dict):
            raise ProviderError(f"launchdarkly: read {key}: unexpected answer (not a flag)")
        variations = as_list(flag.get("variations"))
        on, off = self._on_off(flag)
        if on is None or off is None or len(variations) != 2:
            raise ProviderError(
                f"launchdarkly: {what}: only two-variation (on/off) flags can be set to a "
                "percentage here"
            )
        on_id = as_dict(variations[on]).get("_id")
        off_id = as_dict(variations[off]).get("_id")
        if not isinstance(on_id, str) or not isinstance(off_id, str):
            raise ProviderError(
                f"launchdarkly: read {key}: unexpected answer (variations without ids)"
            )
        weights = {str(on_id): percent * 1000, str(off_id): (100 - percent) * 1000}
        await self._patch(
            key, f"relconsole: {reason}",
            [{"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": weights}],
            what,
        )

    async def close(self) -> None:
        await self.api.close()


def _is_kind(tag: str) -> bool:
    return tag.strip().lower().replace("_", "-") in {
        "release", "experiment", "operational", "kill-switch", "killswitch", "permission", "ops"
    }


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> LaunchDarklyFlags:
    return LaunchDarklyFlags(settings, ctx)
