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

A cohort (`relconsole flag target`) is a targeting rule in the environment with one
clause ``{contextKind: user, attribute: ATTR, op: in, values: [...]}`` serving the "on"
variation, appended after the flag's other rules; user ids are the attribute ``key``.
relconsole marks its rule with the description ``relconsole: ATTR`` and only ever
replaces or removes a rule so marked. Reading the flag, every rule of that simple shape
(one positive ``in`` clause on a user attribute, serving on) is a segment, whoever made
it. Rules serve only while the flag is on, and before the fallthrough percentage.

Endpoints (https://launchdarkly.com/docs/api/feature-flags):
- GET   /api/v2/flags/{projectKey}?env=…&summary=0&limit=…&offset=…   "List feature flags";
  paged through `_links.next`
- PATCH /api/v2/flags/{projectKey}/{featureFlagKey}                  "Update feature flag",
  semantic patch: Content-Type ``application/json; domain-model=launchdarkly.semanticpatch``,
  instructions ``turnFlagOn``/``turnFlagOff`` and ``updateFallthroughVariationOrRollout``
  with ``rolloutWeights`` in thousandths of a percent (they sum to 100000); ``addRule``
  (``clauses``, ``variationId``, ``description``, ``beforeRuleId``) and ``removeRule``
  (``ruleId``) for cohorts. A semantic patch applies all its instructions or none, so
  replacing a cohort (add the new rule before the old, remove the old) is one change.
The token goes raw in ``Authorization``; ``LD-API-Version: 20240415`` pins the API.
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

API_VERSION = "20240415"
SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"
PAGE = 100
USER_KEY = "key"  # the attribute a user context's key is matched on
USER_ID = "userId"  # what relconsole calls a cohort of user ids on every flag system


def _wire(attribute: str) -> str:
    return USER_KEY if attribute == USER_ID else attribute


def _named(attribute: str) -> str:
    return USER_ID if attribute == USER_KEY else attribute
TAG = "relconsole: "  # a rule's description starts so when relconsole added it
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
            segments=tuple(s for s in (_segment(r, on_index)
                                       for r in as_list(env.get("rules"))) if s is not None),
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
        flag = await self._read(key)
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

    async def _read(self, key: str) -> dict[str, Any]:
        flag = await self.api.json(
            "GET", f"/api/v2/flags/{_p(self.project)}/{_p(key)}", f"read {key}",
            params={"env": self.environment},
        )
        if not isinstance(flag, dict):
            raise ProviderError(f"launchdarkly: read {key}: unexpected answer (not a flag)")
        return flag

    def _rules(self, flag: dict[str, Any], key: str) -> list[dict[str, Any]]:
        environments = as_dict(flag.get("environments"))
        if self.environment not in environments:
            raise ProviderError(
                f"launchdarkly: read {key}: the flag has no environment {self.environment}"
            )
        return [r for r in as_list(as_dict(environments[self.environment]).get("rules"))
                if isinstance(r, dict)]

    def _ours(self, rules: list[dict[str, Any]], attribute: str, key: str) -> list[str]:
        """The ids of the rules relconsole added for `attribute`."""
        ids = []
        for rule in rules:
            if rule.get("description") != TAG + attribute:
                continue
            rule_id = rule.get("_id")
            if not isinstance(rule_id, str) or not rule_id:
                raise ProviderError(
                    f"launchdarkly: read {key}: unexpected answer (a rule without an _id)"
                )
            ids.append(rule_id)
        return ids

    async def target(self, key: str, segment: Segment, *, reason: str) -> None:
        _check(segment)
        what = f"target {key} at {segment.text()} in {self.environment}"
        flag = await self._read(key)
        on, _ = self._on_off(flag)
        variation_id = (as_dict(as_list(flag.get("variations"))[on]).get("_id")
                        if on is not None else None)
        if not isinstance(variation_id, str) or not variation_id:
            raise ProviderError(
                f"launchdarkly: {what}: the flag has no 'on' variation (a variation whose "
                "value is true, or a default on variation) to serve the cohort"
            )
        rules = self._rules(flag, key)
        ours = self._ours(rules, segment.attribute, key)
        current = [_segment(r, on) for r in rules if r.get("_id") in ours]
        if len(current) == 1 and current[0] is not None and current[0].same(segment):
            return  # already so: a second identical rule would only clutter the flag
        add: dict[str, Any] = {
            "kind": "addRule",
            "clauses": [{"contextKind": "user", "attribute": _wire(segment.attribute), "op": "in",
                         "negate": False, "values": list(segment.values)}],
            "variationId": variation_id,
            "description": TAG + segment.attribute,
        }
        if ours:
            # In the old rule's place: what the other rules see before it stays the same.
            add["beforeRuleId"] = ours[0]
        await self._patch(key, f"relconsole: {reason}",
                          [add, *({"kind": "removeRule", "ruleId": i} for i in ours)], what)

    async def untarget(self, key: str, attribute: str, *, reason: str) -> None:
        what = f"remove the cohort on {attribute} from {key} in {self.environment}"
        flag = await self._read(key)
        rules = self._rules(flag, key)
        ours = self._ours(rules, attribute, key)
        if not ours:
            on, _ = self._on_off(flag)
            if any(s is not None and s.attribute == attribute
                   for s in (_segment(r, on) for r in rules)):
                raise ProviderError(
                    f"launchdarkly: {what}: the rule on {attribute} was not added by "
                    f"relconsole (its description is not '{TAG}{attribute}'); change it "
                    "in LaunchDarkly"
                )
            return  # nothing of ours on that attribute: already untargeted
        await self._patch(key, f"relconsole: {reason}",
                          [{"kind": "removeRule", "ruleId": i} for i in ours], what)

    async def close(self) -> None:
        await self.api.close()


def _check(segment: Segment) -> None:
    if not isinstance(segment.attribute, str) or not segment.attribute.strip():
        raise ProviderError("launchdarkly: a cohort needs an attribute (key for user ids)")
    if not segment.values or not all(isinstance(v, str) and v for v in segment.values):
        raise ProviderError(
            f"launchdarkly: the cohort on {segment.attribute} needs at least one value, "
            "each a non-empty text"
        )


def _segment(rule: Any, on_index: int | None) -> Segment | None:
    """The cohort a rule serves "on" to, where it is one positive `in` clause on a user
    attribute; None for every other rule (those are the flag's own business)."""
    rule = as_dict(rule)
    if on_index is None or rule.get("disabled") is True:
        return None
    clauses = as_list(rule.get("clauses"))
    if len(clauses) != 1:
        return None
    clause = as_dict(clauses[0])
    attribute = clause.get("attribute")
    values = as_list(clause.get("values"))
    if (clause.get("op") != "in" or clause.get("negate") is True
            or clause.get("contextKind", "user") not in ("user", None)
            or not isinstance(attribute, str) or not attribute
            or not values or not all(isinstance(v, str) for v in values)):
        return None
    variation = rule.get("variation")
    if type(variation) is int:
        serves_on = variation == on_index
    else:
        weights = [w for w in as_list(as_dict(rule.get("rollout")).get("variations"))
                   if isinstance(w, dict)]
        on_weight = sum(whole_number(w.get("weight")) or 0 for w in weights
                        if w.get("variation") == on_index)
        serves_on = bool(weights) and on_weight == 100_000
    return Segment(_named(attribute), tuple(values)) if serves_on else None


def _is_kind(tag: str) -> bool:
    return tag.strip().lower().replace("_", "-") in {
        "release", "experiment", "operational", "kill-switch", "killswitch", "permission", "ops"
    }


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> LaunchDarklyFlags:
    return LaunchDarklyFlags(settings, ctx)
