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

A cohort (`relconsole flag target`) is a targeting rule in the environment's definition:
one ``IN_LIST_STRING`` matcher on the attribute (for user ids, attribute ``key``: the
matcher has no attribute and matches the key the SDK is called with), buckets 100 % to
the "on" treatment, appended after the other rules and before the default rule, whose
percentage it leaves as it is. Split rules carry no name or description, so relconsole
knows a rule by that shape: one positive in-list matcher on the attribute serving "on"
to all of it. Such a rule is read back as a segment, replaced by a new `target` on the
same attribute and removed by `untarget`; a rule with more matchers or other buckets is
never touched. Rules apply to the flag's traffic allocation (limit exposure) only.

Endpoints (https://docs.split.io/reference):
- GET   /internal/api/v2/splits/ws/{ws}?limit=…&offset=…     "List feature flags" (metadata:
  description, tags, owners, creation time)
- GET   /internal/api/v2/splits/ws/{ws}/environments/{env}?limit=…&offset=…
                                              "List feature flag definitions in environment"
- PUT   /internal/api/v2/splits/ws/{ws}/{name}/environments/{env}/kill     "Kill feature flag
  in environment"; …/restore "Restore feature flag in environment"
- PATCH /internal/api/v2/splits/ws/{ws}/{name}/environments/{env}   "Partial update feature
  flag definition in environment" (JSON patch, RFC 6902: replace /defaultRule; add
  /rules/-, replace or remove /rules/N, each index guarded by a ``test`` of the rule as
  read, so that a definition changed meanwhile fails the patch instead of losing a rule)
Every call carries ``Authorization: Bearer <admin key>``.
"""

from __future__ import annotations

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

PAGE = 50  # Split's maximum page size for these listings
MAX_PAGES = 200
USER_KEY = "key"  # a cohort of user ids: the matcher has no attribute and matches the key
USER_ID = "userId"  # what relconsole calls a cohort of user ids on every flag system
IN_LIST = ("IN_LIST_STRING", "WHITELIST")  # the documented name; the SDKs' name for it
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
        if status == 409 and "test" in message.lower():
            return (f"{what}: conflict — the flag's rules changed in Split meanwhile "
                    f"(HTTP 409{said}); look again and retry")
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
                segments=tuple(s for s in (self._segment(r) for r in as_list(d.get("rules")))
                               if s is not None),
            ))
        return flags

    def _segment(self, rule: Any) -> Segment | None:
        """The cohort a rule serves "on" to, where it is one positive in-list matcher
        with all its buckets on; None for every other rule."""
        rule = as_dict(rule)
        matchers = as_list(as_dict(rule.get("condition")).get("matchers"))
        if len(matchers) != 1:
            return None
        matcher = as_dict(matchers[0])
        attribute = matcher.get("attribute")
        values = as_list(matcher.get("strings"))
        if (matcher.get("type") not in IN_LIST or matcher.get("negate") is True
                or not (attribute is None or isinstance(attribute, str))
                or not values or not all(isinstance(v, str) for v in values)):
            return None
        buckets = [b for b in as_list(rule.get("buckets")) if isinstance(b, dict)]
        sizes = [whole_number(b.get("size")) for b in buckets]
        on = sum(size or 0 for b, size in zip(buckets, sizes, strict=True)
                 if b.get("treatment") == self.on_treatment)
        if on != 100 or any(size is None for size in sizes) or sum(
                size or 0 for size in sizes) != 100:
            return None
        return Segment(attribute or USER_ID, tuple(values))

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
        definition = await self._definition(key)
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

    async def _definition(self, key: str) -> dict[str, Any]:
        definition = await self.api.json("GET", self._env_path(key), f"read {key}")
        if not isinstance(definition, dict):
            raise ProviderError(f"split: read {key}: unexpected answer (not a definition)")
        return definition

    def _cohorts(self, definition: dict[str, Any], attribute: str
                 ) -> list[tuple[int, dict[str, Any]]]:
        """Where the rules that are cohorts on `attribute` stand, with each as read."""
        return [(i, rule) for i, rule in enumerate(as_list(definition.get("rules")))
                if (s := self._segment(rule)) is not None and s.attribute == attribute]

    async def target(self, key: str, segment: Segment, *, reason: str) -> None:
        if not isinstance(segment.attribute, str) or not segment.attribute.strip():
            raise ProviderError("split: a cohort needs an attribute (key for user ids)")
        if not segment.values or not all(isinstance(v, str) and v for v in segment.values):
            raise ProviderError(f"split: the cohort on {segment.attribute} needs at least "
                                "one value, each a non-empty text")
        what = f"target {key} at {segment.text()} in {self.environment}"
        definition = await self._definition(key)
        treatments = [t.get("name") for t in as_list(definition.get("treatments"))
                      if isinstance(t, dict)]
        if self.on_treatment not in treatments:
            raise ProviderError(
                f"split: {what}: the flag has no treatment {self.on_treatment} to serve the "
                f"cohort (treatments: {', '.join(str(t) for t in treatments)}); set "
                "on_treatment"
            )
        matcher: dict[str, Any] = {"type": "IN_LIST_STRING", "negate": False,
                                   "strings": list(segment.values)}
        if segment.attribute not in (USER_ID, USER_KEY):
            matcher["attribute"] = segment.attribute
        rule = {"condition": {"combiner": "AND", "matchers": [matcher]},
                "buckets": [{"treatment": self.on_treatment, "size": 100}]}
        cohorts = self._cohorts(definition, segment.attribute)
        if len(cohorts) == 1 and (s := self._segment(cohorts[0][1])) and s.same(segment):
            return  # already so
        ops: list[dict[str, Any]]
        if cohorts:
            # The first keeps its place with the new values; any others on the attribute
            # go (removed from the end, so the earlier indexes stay right).
            first, old = cohorts[0]
            ops = [{"op": "test", "path": f"/rules/{first}", "value": old},
                   {"op": "replace", "path": f"/rules/{first}", "value": rule}]
            for i, other in reversed(cohorts[1:]):
                ops += [{"op": "test", "path": f"/rules/{i}", "value": other},
                        {"op": "remove", "path": f"/rules/{i}"}]
        else:
            ops = [{"op": "add", "path": "/rules/-", "value": rule}]
        await self.api.request("PATCH", self._env_path(key), what, ok=(200,), json=ops)

    async def untarget(self, key: str, attribute: str, *, reason: str) -> None:
        what = f"remove the cohort on {attribute} from {key} in {self.environment}"
        definition = await self._definition(key)
        cohorts = self._cohorts(definition, attribute)
        if not cohorts:
            return  # no cohort on that attribute: already untargeted
        ops: list[dict[str, Any]] = []
        for i, rule in reversed(cohorts):
            ops += [{"op": "test", "path": f"/rules/{i}", "value": rule},
                    {"op": "remove", "path": f"/rules/{i}"}]
        await self.api.request("PATCH", self._env_path(key), what, ok=(200,), json=ops)

    async def close(self) -> None:
        await self.api.close()


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> SplitFlags:
    return SplitFlags(settings, ctx)
