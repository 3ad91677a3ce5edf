"""FAKE vendor servers for LaunchDarkly, Split and Flagsmith — not the real services.

These services cannot run here, so each fake is a real HTTP server on 127.0.0.1 (in a
thread) that answers the documented requests with the documented response shapes,
status codes and error bodies, and records every request so a test can assert exactly
what relconsole sent. They hold just enough state to answer a read-back after a write.

Every fake can be told to:
- throttle the next N requests with 429 and a Retry-After header,
- require approvals for the environment (LaunchDarkly 405, Split 409),
- accept writes but not apply them (to prove a change is only reported when verified),
- answer the next writes with given error replies (`fail_writes`), in the vendor's
  documented error body, or run a callback just before a write is applied
  (`before_write`), to play another user changing the flag meanwhile.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Base: an HTTP server in a thread that routes to `handle(request) -> Reply`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.throttle_left = 0
        self.retry_after = "1"
        self.approvals_required = False
        self.ignore_writes = False
        self.fail_writes: list[Reply] = []
        self.before_write: Callable[[], None] | None = None
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
                parts = urlsplit(self.path)
                request = Recorded(
                    self.command, parts.path, parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()}, body,
                )
                with fake.lock:
                    fake.requests.append(request)
                    reply = fake._dispatch(request)
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _dispatch(self, request: Recorded) -> Reply:
        if self.throttle_left > 0:
            self.throttle_left -= 1
            return self.too_many()
        if request.method != "GET":
            if self.fail_writes:
                return self.fail_writes.pop(0)
            if self.before_write is not None:
                self.before_write()
        return self.handle(request)

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    # vendor specific
    def handle(self, request: Recorded) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    def too_many(self) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------- LaunchDarkly


class FakeLaunchDarkly(FakeServer):
    """FAKE LaunchDarkly REST API v2 (list flags, get flag, semantic patch)."""

    SEMANTIC = "application/json; domain-model=launchdarkly.semanticpatch"

    def __init__(self, token: str = "api-test-token", project: str = "default",
                 environment: str = "production", page_size: int = 2) -> None:
        self.token, self.project, self.environment = token, project, environment
        self.page_size = page_size
        self.flags: dict[str, dict[str, Any]] = {}
        super().__init__()

    def add_flag(self, key: str, *, on: bool = True, rollout: int | None = None,
                 temporary: bool = True, tags: tuple[str, ...] = (), maintainer: str = "",
                 description: str = "") -> None:
        true_id, false_id = str(uuid.uuid4()), str(uuid.uuid4())
        fallthrough: dict[str, Any] = {"variation": 0}
        if rollout is not None:
            fallthrough = {"rollout": {"variations": [
                {"variation": 0, "weight": rollout * 1000},
                {"variation": 1, "weight": (100 - rollout) * 1000}]}}
        self.flags[key] = {
            "key": key, "name": key, "kind": "boolean", "description": description,
            "creationDate": 1_760_000_000_000, "temporary": temporary, "tags": list(tags),
            "variations": [{"_id": true_id, "value": True}, {"_id": false_id, "value": False}],
            "defaults": {"onVariation": 0, "offVariation": 1},
            "_maintainer": {"email": maintainer} if maintainer else None,
            "environments": {self.environment: {
                "on": on, "fallthrough": fallthrough, "offVariation": 1, "rules": [],
                "targets": [], "contextTargets": [], "prerequisites": [],
                "lastModified": 1_762_000_000_000, "_environmentName": "Production",
            }},
        }

    def add_rule(self, key: str, attribute: str, values: list[Any], *, variation: int = 0,
                 op: str = "in", description: str = "", context_kind: str = "user",
                 extra_clauses: list[dict[str, Any]] | None = None) -> str:
        """A targeting rule someone made in LaunchDarkly's UI; returns its _id."""
        rule = self._rule([{"contextKind": context_kind, "attribute": attribute, "op": op,
                            "negate": False, "values": values}, *(extra_clauses or [])],
                          variation, description)
        self.flags[key]["environments"][self.environment]["rules"].append(rule)
        return str(rule["_id"])

    def rules(self, key: str) -> list[dict[str, Any]]:
        return list(self.flags[key]["environments"][self.environment]["rules"])

    @staticmethod
    def _rule(clauses: list[dict[str, Any]], variation: int, description: str
              ) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "_id": str(uuid.uuid4()), "variation": variation, "trackEvents": False,
            "clauses": [{"_id": str(uuid.uuid4()), **c} for c in clauses],
        }
        if description:
            rule["description"] = description
        return rule

    def error(self, status: int, code: str, message: str) -> Reply:
        # LaunchDarkly's documented error body: code, message and a request id.
        return Reply(status, {"code": code, "message": message, "id": str(uuid.uuid4())})

    def too_many(self) -> Reply:
        return Reply(429, {"code": "rate_limited", "message": "Rate limited"},
                     {"Retry-After": self.retry_after, "X-Ratelimit-Reset": "0"})

    def handle(self, r: Recorded) -> Reply:
        if r.header("Authorization") != self.token:
            return self.error(401, "unauthorized", "Invalid access token")
        m = re.fullmatch(r"/api/v2/flags/([^/]+)(?:/([^/]+))?", r.path)
        if not m or m.group(1) != self.project:
            return self.error(404, "not_found", "Unknown resource")
        key = m.group(2)
        if key is None and r.method == "GET":
            return self._list(r)
        if key not in self.flags:
            return self.error(404, "not_found", "Unknown resource")
        if r.method == "GET":
            return Reply(200, self._public(self.flags[key]))
        if r.method == "PATCH":
            return self._patch(key, r)
        return self.error(405, "method_not_allowed", "Method not allowed")

    def _public(self, flag: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(flag)
        if out.get("_maintainer") is None:
            out.pop("_maintainer", None)
        return out

    def _list(self, r: Recorded) -> Reply:
        offset = int((r.query.get("offset") or ["0"])[0])
        limit = int((r.query.get("limit") or ["20"])[0])
        limit = min(limit, self.page_size)
        keys = list(self.flags)
        page = keys[offset:offset + limit]
        links: dict[str, Any] = {"self": {"href": r.path, "type": "application/json"}}
        if offset + limit < len(keys):
            env = (r.query.get("env") or [""])[0]
            links["next"] = {"href": f"/api/v2/flags/{self.project}?env={env}&summary=0"
                                     f"&limit={limit}&offset={offset + limit}",
                             "type": "application/json"}
        return Reply(200, {"items": [self._public(self.flags[k]) for k in page],
                           "totalCount": len(keys), "_links": links})

    # Clause operators LaunchDarkly documents; `op` must be lower-case.
    OPS = {"in", "endsWith", "startsWith", "matches", "contains", "lessThan",
           "lessThanOrEqual", "greaterThan", "greaterThanOrEqual", "before", "after",
           "segmentMatch", "semVerEqual", "semVerLessThan", "semVerGreaterThan"}

    def _patch(self, key: str, r: Recorded) -> Reply:
        if r.header("Content-Type") != self.SEMANTIC:
            return self.error(400, "invalid_request", "expected a JSON patch")  # JSON patch path
        body = r.body if isinstance(r.body, dict) else {}
        env_key = body.get("environmentKey")
        if env_key != self.environment:
            return self.error(400, "invalid_request", f"unknown environment {env_key}")
        if self.approvals_required:
            return self.error(405, "method_not_allowed",
                              "This environment requires approval for flag changes")
        flag = self.flags[key]
        # A semantic patch applies all its instructions or none: work on a copy.
        env = copy.deepcopy(flag["environments"][self.environment])
        ids = [v["_id"] for v in flag["variations"]]
        for ins in body.get("instructions") or []:
            kind = ins.get("kind")
            if kind in ("turnFlagOn", "turnFlagOff"):
                env["on"] = kind == "turnFlagOn"
            elif kind == "updateFallthroughVariationOrRollout":
                weights = ins.get("rolloutWeights") or {}
                if sum(weights.values()) != 100_000:
                    return self.error(400, "invalid_request",
                                      "rollout weights must sum to 100000")
                if set(weights) - set(ids):
                    return self.error(400, "invalid_request", "unknown variation id")
                env["fallthrough"] = {"rollout": {"variations": [
                    {"variation": ids.index(i), "weight": w} for i, w in weights.items()]}}
            elif kind == "addRule":
                failed = self._add_rule(env, ins, ids)
                if failed is not None:
                    return failed
            elif kind == "removeRule":
                # Documented: does nothing if the rule does not exist.
                env["rules"] = [x for x in env["rules"] if x["_id"] != ins.get("ruleId")]
            else:
                return self.error(400, "invalid_request", f"unknown instruction {kind}")
        if not self.ignore_writes:
            flag["environments"][self.environment] = env
        return Reply(200, self._public(flag))

    def _add_rule(self, env: dict[str, Any], ins: dict[str, Any], ids: list[str]
                  ) -> Reply | None:
        clauses = ins.get("clauses")
        if not isinstance(clauses, list):
            return self.error(400, "invalid_request", "addRule: clauses must be an array")
        for c in clauses:
            if not isinstance(c, dict) or not isinstance(c.get("attribute"), str) \
                    or c.get("op") not in self.OPS or not isinstance(c.get("values"), list):
                return self.error(400, "invalid_request",
                                  "addRule: each clause needs attribute, op and values")
        variation_id = ins.get("variationId")
        if variation_id not in ids:
            return self.error(400, "invalid_request", f"unknown variation id {variation_id}")
        rule = self._rule([{"contextKind": "user", "negate": False, **c} for c in clauses],
                          ids.index(variation_id), str(ins.get("description") or ""))
        before = ins.get("beforeRuleId")
        if before is None:
            env["rules"].append(rule)
            return None
        where = [i for i, x in enumerate(env["rules"]) if x["_id"] == before]
        if not where:
            return self.error(400, "invalid_request", f"unknown rule id {before}")
        env["rules"].insert(where[0], rule)
        return None


# ---------------------------------------------------------------------- Split


class FakeSplit(FakeServer):
    """FAKE Split Admin API (flags, definitions per environment, kill/restore, patch)."""

    def __init__(self, token: str = "split-admin-key", workspace: str = "ws-1",
                 environment: str = "Production", page_size: int = 2) -> None:
        self.token, self.workspace, self.environment = token, workspace, environment
        self.page_size = page_size
        self.meta: dict[str, dict[str, Any]] = {}
        self.defs: dict[str, dict[str, Any]] = {}
        super().__init__()

    def add_flag(self, name: str, *, killed: bool = False, on_size: int = 100,
                 tags: tuple[str, ...] = (), description: str = "") -> None:
        self.meta[name] = {"id": str(uuid.uuid4()), "name": name, "description": description,
                           "trafficType": {"id": "tt", "name": "user"},
                           "creationTime": 1_760_000_000_000,
                           "tags": [{"name": t} for t in tags]}
        self.defs[name] = {
            "name": name, "environment": {"id": "env-1", "name": self.environment},
            "trafficType": {"id": "tt", "name": "user"},
            "killed": killed,
            "treatments": [{"name": "on"}, {"name": "off"}],
            "defaultTreatment": "off",
            "trafficAllocation": 100,
            "rules": [],
            "defaultRule": [{"treatment": "on", "size": on_size},
                            {"treatment": "off", "size": 100 - on_size}],
            "creationTime": 1_760_000_000_000,
            "lastUpdateTime": 1_762_000_000_000,
        }

    def error(self, status: int, message: str) -> Reply:
        return Reply(status, {"code": status, "message": message, "details": "",
                              "transactionId": uuid.uuid4().hex[:10]})

    def too_many(self) -> Reply:
        return Reply(429, {"code": 429, "message": "Too many requests", "details": "",
                           "transactionId": "t"},
                     {"Retry-After": self.retry_after})

    def _page(self, r: Recorded, objects: list[dict[str, Any]]) -> Reply:
        offset = int((r.query.get("offset") or ["0"])[0])
        limit = min(int((r.query.get("limit") or ["20"])[0]), self.page_size)
        return Reply(200, {"objects": objects[offset:offset + limit], "offset": offset,
                           "limit": limit, "totalCount": len(objects)})

    def handle(self, r: Recorded) -> Reply:
        if r.header("Authorization") != f"Bearer {self.token}":
            return self.error(401, "Unauthorized")
        base = f"/internal/api/v2/splits/ws/{self.workspace}"
        if not r.path.startswith(base):
            return self.error(404, "Workspace not found")
        rest = r.path[len(base):]
        if rest == "" and r.method == "GET":
            return self._page(r, list(self.meta.values()))
        if rest == f"/environments/{self.environment}" and r.method == "GET":
            return self._page(r, list(self.defs.values()))
        m = re.fullmatch(r"/([^/]+)/environments/([^/]+)(/kill|/restore)?", rest)
        if not m:
            return self.error(404, "Not found")
        name, env, action = m.groups()
        if env != self.environment:
            return self.error(404, f"Environment {env} not found")
        if name not in self.defs:
            return self.error(404, f"Feature flag {name} not found in environment")
        definition = self.defs[name]
        if r.method == "GET" and action is None:
            return Reply(200, definition)
        if self.approvals_required and r.method in ("PUT", "PATCH"):
            return self.error(409, "Approval required: this environment requires approvals "
                                   "for changes")
        if r.method == "PUT" and action:
            if not self.ignore_writes:
                definition["killed"] = action == "/kill"
            return Reply(200, definition)
        if r.method == "PATCH" and action is None:
            return self._patch(definition, r.body)
        return self.error(405, "Method not allowed")

    def add_rule(self, name: str, matchers: list[dict[str, Any]],
                 buckets: list[dict[str, Any]] | None = None) -> None:
        """A targeting rule someone made in Split's UI."""
        self.defs[name]["rules"].append({
            "condition": {"combiner": "AND", "matchers": matchers},
            "buckets": buckets or [{"treatment": "on", "size": 100}],
        })

    # Matcher types Split documents (reference "Matcher type"), with what each needs.
    MATCHERS = {
        "IN_SEGMENT": ("string",), "IN_LIST_STRING": ("strings",),
        "STARTS_WITH_STRING": ("strings", "attribute"),
        "ENDS_WITH_STRING": ("strings", "attribute"),
        "CONTAINS_STRING": ("strings", "attribute"), "MATCHES_STRING": ("string", "attribute"),
        "EQUAL_SET": ("strings", "attribute"), "ANY_OF_SET": ("strings", "attribute"),
        "ALL_OF_SET": ("strings", "attribute"), "PART_OF_SET": ("strings", "attribute"),
        "EQUAL_NUMBER": ("number", "attribute"), "BOOLEAN": ("bool", "attribute"),
        "IN_SPLIT": ("depends",),
    }

    def _patch(self, definition: dict[str, Any], ops: Any) -> Reply:
        """RFC 6902 JSON patch on the definition, applied whole or not at all; a failed
        `test` is a conflict (409), a bad pointer or an invalid result a 400."""
        if not isinstance(ops, list):
            return self.error(400, "The request body must be a JSON patch (an array)")
        doc = copy.deepcopy(definition)
        for op in ops:
            try:
                failed = _json_patch_op(doc, op)
            except (KeyError, IndexError, ValueError, TypeError) as exc:
                return self.error(400, f"Invalid patch operation {op!r}: {exc}")
            if failed:
                return self.error(409, f"Patch test failed at {op.get('path')}")
        problem = self._invalid(doc)
        if problem:
            return self.error(400, problem)
        if not self.ignore_writes:
            definition.clear()
            definition.update(doc)
        return Reply(200, definition)

    def _invalid(self, doc: dict[str, Any]) -> str:
        names = {t.get("name") for t in doc.get("treatments") or []}
        for where, buckets in [("Default rule", doc.get("defaultRule")),
                               *((f"Rule {i}", r.get("buckets"))
                                 for i, r in enumerate(doc.get("rules") or []))]:
            if not isinstance(buckets, list) or not buckets:
                return f"{where} needs buckets"
            if sum(b.get("size", 0) for b in buckets) != 100:
                return f"{where} sizes must sum to 100"
            unknown = [b.get("treatment") for b in buckets if b.get("treatment") not in names]
            if unknown:
                return f"{where}: treatment {unknown[0]} is not one of the flag's treatments"
        for i, rule in enumerate(doc.get("rules") or []):
            matchers = (rule.get("condition") or {}).get("matchers")
            if not isinstance(matchers, list) or not matchers:
                return f"Rule {i} needs a condition with matchers"
            for m in matchers:
                needs = self.MATCHERS.get(m.get("type"))
                if needs is None:
                    return f"Rule {i}: unknown matcher type {m.get('type')}"
                if any(m.get(field) in (None, "", []) for field in needs):
                    return f"Rule {i}: matcher {m['type']} needs {', '.join(needs)}"
        return ""


def _index(part: str) -> int:
    """An array index as RFC 6901 writes it: digits only (no sign, no leading zero)."""
    if not part.isdigit() or (len(part) > 1 and part.startswith("0")):
        raise ValueError(f"{part!r} is not an array index")
    return int(part)


def _json_patch_op(doc: Any, op: dict[str, Any]) -> bool:
    """Apply one RFC 6902 operation in place; True when a `test` fails."""
    kind, path = op["op"], op["path"]
    if not path.startswith("/"):
        raise ValueError("a path starts with /")
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    target = doc
    for part in parents:
        target = target[_index(part)] if isinstance(target, list) else target[part]
    if kind == "test":
        here = target[_index(last)] if isinstance(target, list) else target[last]
        return bool(here != op["value"])
    if isinstance(target, list):
        if kind == "add":
            index = len(target) if last == "-" else _index(last)
            if index > len(target):
                raise IndexError("index out of range")
            target.insert(index, op["value"])
        elif kind == "remove":
            target.pop(_index(last))
        elif kind == "replace":
            target[_index(last)] = op["value"]
        else:
            raise ValueError(f"unsupported op {kind}")
    else:
        if kind in ("add", "replace"):
            if kind == "replace" and last not in target:
                raise KeyError(last)
            target[last] = op["value"]
        elif kind == "remove":
            del target[last]
        else:
            raise ValueError(f"unsupported op {kind}")
    return False


# ---------------------------------------------------------------------- Flagsmith


class FakeFlagsmith(FakeServer):
    """FAKE Flagsmith Admin API (features, tags, environment feature states)."""

    def __init__(self, token: str = "flagsmith-org-key", project: int = 7,
                 environment: str = "ser.envkey123", page_size: int = 2) -> None:
        self.token, self.project, self.environment = token, project, environment
        self.page_size = page_size
        self.features: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.tags = [{"id": 1, "label": "kill-switch"}, {"id": 2, "label": "release"}]
        super().__init__()

    def add_feature(self, name: str, *, enabled: bool = True, tags: tuple[int, ...] = (),
                    owner: str = "", description: str = "") -> None:
        fid = len(self.features) + 1
        self.features.append({
            "id": fid, "name": name, "type": "STANDARD", "description": description,
            "created_date": "2026-10-01T10:00:00.000000Z", "is_archived": False,
            "tags": list(tags), "owners": [{"id": 1, "email": owner, "first_name": "A",
                                            "last_name": "B"}] if owner else [],
            "group_owners": [], "project": self.project,
        })
        self.states.append({"id": 100 + fid, "feature": fid, "enabled": enabled,
                            "environment": 3, "identity": None, "feature_segment": None,
                            "feature_state_value": None,
                            "updated_at": "2026-11-01T10:00:00.000000Z"})
        # An identity override must never be mistaken for the environment default.
        self.states.append({"id": 500 + fid, "feature": fid, "enabled": not enabled,
                            "environment": 3, "identity": 42, "feature_segment": None,
                            "feature_state_value": None})

    def too_many(self) -> Reply:
        return Reply(429, {"detail": f"Request was throttled. Expected available in "
                                     f"{self.retry_after} seconds."},
                     {"Retry-After": self.retry_after})

    def _page(self, r: Recorded, items: list[dict[str, Any]]) -> Reply:
        page = int((r.query.get("page") or ["1"])[0])
        size = min(int((r.query.get("page_size") or ["10"])[0]), self.page_size)
        start = (page - 1) * size
        nxt = (f"https://api.flagsmith.example{r.path}?page={page + 1}"
               if start + size < len(items) else None)
        return Reply(200, {"count": len(items), "next": nxt, "previous": None,
                           "results": items[start:start + size]})

    def handle(self, r: Recorded) -> Reply:
        if r.header("Authorization") != f"Api-Key {self.token}":
            return Reply(401, {"detail": "Invalid API Key"})
        if r.path == f"/api/v1/projects/{self.project}/features/" and r.method == "GET":
            return self._page(r, self.features)
        if r.path == f"/api/v1/projects/{self.project}/tags/" and r.method == "GET":
            return self._page(r, self.tags)
        states = f"/api/v1/environments/{self.environment}/featurestates/"
        if r.path == states and r.method == "GET":
            return self._page(r, self.states)
        m = re.fullmatch(re.escape(states) + r"(\d+)/", r.path)
        if m and r.method == "PATCH":
            state = next((s for s in self.states if s["id"] == int(m.group(1))), None)
            if state is None:
                return Reply(404, {"detail": "Not found."})
            if not isinstance(r.body, dict) or not isinstance(r.body.get("enabled"), bool):
                return Reply(400, {"enabled": ["Must be a valid boolean."]})
            if self.approvals_required:
                return Reply(409, {"detail": "This environment requires change requests."})
            if not self.ignore_writes:
                state["enabled"] = r.body["enabled"]
            return Reply(200, state)
        return Reply(404, {"detail": "Not found."})
