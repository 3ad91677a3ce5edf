"""A FAKE Kubernetes API server for the tests (issue 12: driving Argo Rollouts).

No real kube-apiserver can run on this machine, so this is a fake, and it is named one.
It is not a model of Kubernetes; it answers over real HTTP on 127.0.0.1 in the documented
wire format, so that a client tested against it sends and parses exactly what it would
against a cluster. What it follows, and where:

* Paths, verbs, collections, subresources, LIST and WATCH, watch bookmarks, "410 Gone",
  and the resourceVersion semantics for get/list/watch ("unset" and "0" start a watch
  with synthetic ADDED events; any other value starts exactly after it):
  https://kubernetes.io/docs/reference/using-api/api-concepts/
  (sections "Efficient detection of changes", "Watch bookmarks", "Resource Versions",
  "410 Gone responses", "Retrieving large results sets in chunks").
* Optimistic concurrency (a stale metadata.resourceVersion on an update is 409 Conflict)
  and the `Status` kind with `reason`/`code`/`details`:
  https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md
  ("Concurrency Control and Consistency", "Response Status Kind").
* PATCH content types (merge patch RFC 7386, JSON patch RFC 6902, strategic merge patch
  refused with 415 for custom resources, as the real server does for CRDs):
  https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
  https://datatracker.ietf.org/doc/html/rfc7386 and https://datatracker.ietf.org/doc/html/rfc6902
* The status subresource of a CRD ("PUT requests to the /status subresource ... ignore
  changes to anything except the status stanza; PUT/POST/PATCH requests to the custom
  resource ignore changes to the status stanza"; metadata.generation is bumped for every
  change except to .metadata or .status):
  https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#subresources
* Leases: https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/lease-v1/
  and client-go's leader election (a PUT carrying the resourceVersion it read is the mutual
  exclusion), as summarised in /work/shared/research/argo-rollouts.md section 8.
* Authentication and authorization (401 `Unauthorized`; 403 `Forbidden` with the text the
  real server writes, `... is forbidden: User "u" cannot patch resource "rollouts" in API
  group "argoproj.io" in the namespace "ns"`, from k8s.io/apiserver's responsewriters):
  https://kubernetes.io/docs/reference/access-authn-authz/authentication/ and
  https://kubernetes.io/docs/reference/access-authn-authz/authorization/
* A watch from a compacted resourceVersion answers 200 and one ERROR event whose object is
  a `Status` with code 410, reason `Expired`, message `too old resource version: X (Y)`,
  as the watch cache does ("to match the uncached watch implementation").

The small controller loop is not Argo Rollouts either: it walks a canary Rollout through
spec.strategy.canary.steps the simple way Argo does (research notes section 7), keeping
status.phase/message/observedGeneration consistent, so that a whole release can run
against it. Tests drive it one pass at a time with `step_controller()`. A setMirrorRoute
step completes in the pass that applies it, as Argo's does (rollout/canary.go
`completedCurrentCanaryStep`); with `trafficRouting` the pass sets the named route on the
fake's traffic router, `mirror_routes[(namespace, rollout)]` (route name -> percent, 100
without `percentage`, as Istio's router; a step with only a name removes the route), the
part of a VirtualService a test compares with what the provider read. The router's routes
go on abort, once fully promoted and when a new revision starts (`RemoveManagedRoutes`).
Argo records no mirror in the Rollout's status, and neither does the fake.

With `FakeKube(workloads=True)` the fake also serves ReplicaSets (apps/v1) and
ClusterAnalysisTemplates, and the loop keeps the Rollout's ReplicaSets (named
`<rollout>-<pod hash>`, owned by the Rollout's uid, labelled `rollouts-pod-template-hash`,
annotated with the revision, as Argo creates them), scales a canary without
`trafficRouting` by replicas (canary ceil(N*weight/100), stable the rest, no
status.canary.weights: the plugin then computes the actual weight from the ReplicaSets),
and walks a blue-green Rollout (preview, BlueGreenPause without autoPromotionEnabled,
cut-over on promote, abort back to stable). Pods are ready at once unless a test says
otherwise in `unready` (ReplicaSet name -> pods not ready).

core/v1 Events are checked as the API server's legacy Event validation does for a
request to /api/v1: an Event that carries `eventTime` must also carry reportingComponent,
reportingInstance, action and reason (k8s.io/kubernetes pkg/apis/core/validation/events.go).

Not covered, on purpose: discovery (/api, /apis; only /version), server-side apply,
protobuf/CBOR/YAML bodies, dryRun, fieldManager and managedFields, finalizers and graceful
deletion, set-based selectors, streaming lists (sendInitialEvents), Pods, AnalysisRun
execution, and any validation beyond names, resourceVersions and the Event rule above.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import math
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

Obj = dict[str, Any]


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" is the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    # A CRD-served resource: no strategic merge patch, no unconditional update, and list
    # items carry kind/apiVersion (they are unstructured), unlike built-in types.
    custom: bool = False
    has_status_subresource: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`rollouts.argoproj.io`, or just `events` for the core group, as in error texts."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


ROLLOUTS = ResourceType("argoproj.io", "v1alpha1", "rollouts", "Rollout", custom=True,
                        has_status_subresource=True)
# The Argo CRD manifest I read declares no subresources for AnalysisRun (the controller
# writes its status through the main resource), so none here.
ANALYSISRUNS = ResourceType("argoproj.io", "v1alpha1", "analysisruns", "AnalysisRun",
                            custom=True)
ANALYSISTEMPLATES = ResourceType("argoproj.io", "v1alpha1", "analysistemplates",
                                 "AnalysisTemplate", custom=True)
CLUSTERANALYSISTEMPLATES = ResourceType("argoproj.io", "v1alpha1", "clusteranalysistemplates",
                                        "ClusterAnalysisTemplate", namespaced=False,
                                        custom=True)
REPLICASETS = ResourceType("apps", "v1", "replicasets", "ReplicaSet")
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease")
CORE_EVENTS = ResourceType("", "v1", "events", "Event")
EVENTS_V1 = ResourceType("events.k8s.io", "v1", "events", "Event")
RESOURCE_TYPES = (ROLLOUTS, ANALYSISRUNS, ANALYSISTEMPLATES, CLUSTERANALYSISTEMPLATES,
                  REPLICASETS, LEASES, CORE_EVENTS, EVENTS_V1)
# Served only by `FakeKube(workloads=True)`; without it these paths are 404, as before.
_WORKLOAD_TYPES = (CLUSTERANALYSISTEMPLATES, REPLICASETS)


@dataclass
class LoggedRequest:
    """One request as the client sent it, for tests to assert on."""

    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter
    content_type: str | None
    body: Any  # parsed JSON; the raw text when it is not JSON; None when empty
    raw_body: bytes
    headers: dict[str, str]  # Authorization redacted: tokens never reach a log
    status: int | None = None  # the code answered, filled in once answered


@dataclass
class _Change:
    rv: int
    type: str  # ADDED / MODIFIED / DELETED
    rt: ResourceType
    namespace: str
    obj: Obj
    prev: Obj | None


@dataclass
class _Watch:
    rt: ResourceType
    namespace: str | None
    bookmarks: bool
    labels: str | None = None
    fields: str | None = None
    limit: int | None = None  # cut the stream after this many events
    sent: int = 0
    drop: bool = False
    end: bool = False
    bookmark_pending: bool = False


class KubeError(Exception):
    """An API error answered as a `Status` object."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Obj:
        body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                     "status": "Failure", "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rt: ResourceType, name: str, kind: str | None = None) -> dict[str, Any]:
    # The real server leaves out an empty group (omitempty), hence the core-group case.
    out: dict[str, Any] = {"name": name}
    if rt.group:
        out["group"] = rt.group
    out["kind"] = kind or rt.plural
    return out


def not_found(rt: ResourceType, name: str) -> KubeError:
    return KubeError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def no_such_path() -> KubeError:
    # What the real server answers for a path it does not serve, e.g. /status of a CRD
    # installed without the status subresource.
    return KubeError(404, "NotFound", "the server could not find the requested resource", {})


def conflict(rt: ResourceType, name: str) -> KubeError:
    return KubeError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        _details(rt, name))


def invalid(rt: ResourceType, name: str, fld: str, detail: str) -> KubeError:
    details = _details(rt, name, kind=rt.kind)
    details["causes"] = [{"reason": "FieldValueInvalid", "message": detail, "field": fld}]
    return KubeError(422, "Invalid", f'{rt.qualified_kind} "{name}" is invalid: {fld}: {detail}',
                     details)


def bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def unsupported_media(accepted: list[str]) -> KubeError:
    return KubeError(415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: " + ", ".join(accepted))


# --- RFC 7386 / RFC 6902 -------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class JSONPatchError(Exception):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise JSONPatchError(f"invalid JSON pointer {path!r}")
    # RFC 6901: ~1 before ~0, so that "~01" stays "~1".
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for tok in tokens[:-1]:
        if isinstance(node, dict) and tok in node:
            node = node[tok]
        elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
            node = node[int(tok)]
        else:
            raise JSONPatchError(f"path {path!r} does not exist")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise JSONPatchError(f"path {path!r} does not exist")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise JSONPatchError(f"index out of range in {path!r}")
    else:
        raise JSONPatchError(f"path {path!r} does not exist")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise JSONPatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise JSONPatchError(f"path {path!r} does not exist")


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test, applied in order, all or nothing."""
    if not isinstance(ops, list):
        raise ValueError("a JSON patch is an array of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ValueError(f"invalid JSON patch operation {op!r}")
        missing = {"add": "value", "replace": "value", "test": "value", "move": "from",
                   "copy": "from"}.get(op["op"])
        if missing and missing not in op:
            raise ValueError(f"JSON patch operation {op['op']!r} needs {missing!r}")
        if not isinstance(op["path"], str) or not isinstance(op.get("from", ""), str):
            raise ValueError(f"invalid JSON patch operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # RFC 6902 4.3: the target location MUST exist
            doc, _ = _remove(doc, path) if _pointer(path) else (doc, None)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            doc, value = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise JSONPatchError(f"testing value {path} failed")
        else:
            raise ValueError(f"unknown JSON patch operation {kind!r}")
    return doc


# --- selectors ------------------------------------------------------------------------


def _selector_matches(expr: str, values: dict[str, str], *, fields: bool) -> bool:
    """Equality-based label/field selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`)."""
    for term in filter(None, (t.strip() for t in expr.split(","))):
        if "!=" in term:
            key, want = term.split("!=", 1)
            if values.get(key.strip()) == want.strip():
                return False
        elif "=" in term:
            key, want = term.replace("==", "=").split("=", 1)
            if values.get(key.strip()) != want.strip():
                return False
        elif " in " in term or " notin " in term or "(" in term:
            raise bad_request(f"the fake supports only equality selectors, not {term!r}")
        elif fields:
            raise bad_request(f"invalid field selector {term!r}")
        elif term.startswith("!"):
            if term[1:] in values:
                return False
        elif term not in values:
            return False
    return True


def _matches(obj: Obj, labels: str | None, fields_: str | None) -> bool:
    meta = obj.get("metadata", {})
    if labels and not _selector_matches(labels, meta.get("labels") or {}, fields=False):
        return False
    if fields_:
        known = {"metadata.name": meta.get("name", ""),
                 "metadata.namespace": meta.get("namespace", "")}
        for term in filter(None, (t.strip() for t in fields_.split(","))):
            key = term.split("!=")[0].split("=")[0].strip()
            if key not in known:
                raise bad_request(f'"{key}" is not a known field selector: only '
                                  '"metadata.name", "metadata.namespace"')
        if not _selector_matches(fields_, known, fields=True):
            return False
    return True


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_hash(template: Any) -> str:
    # Argo uses an FNV hash of the pod template, encoded with apimachinery's "safe"
    # alphabet; only stability and the look of it matter here.
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:10])


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


class FakeKube:
    """A FAKE Kubernetes API server on 127.0.0.1 (see the module docstring).

    Switches tests flip at any time: `status_subresource`, `unauthorized`, `token`,
    `user`, `forbid(...)`, `compact()`, `drop_watches()`, `end_watches()`,
    `send_bookmark()`. The request log is `requests`.
    """

    def __init__(self, *, token: str | None = None, user: str = "system:anonymous",
                 status_subresource: bool = True, time_scale: float = 1.0,
                 clock: Callable[[], datetime] | None = None,
                 bookmark_interval: float | None = None,
                 default_watch_timeout: float | None = None,
                 controller_events: bool = True, workloads: bool = False,
                 start: bool = True) -> None:
        self.token = token  # when set, every request needs "Authorization: Bearer <token>"
        self.user = user  # the name 403 messages give
        self.status_subresource = status_subresource
        self.unauthorized = False  # answer 401 to everything (e.g. an expired token)
        self.expired_reason = "Expired"
        # Real time the fake waits is scaled, so that `timeoutSeconds=2` (an integer, as
        # the real server insists) can last 0.2 s in a test.
        self.time_scale = time_scale
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        # When set, every watch opened from now on breaks (no closing chunk) right after
        # sending this many events: a connection lost mid-stream, at a known point.
        self.drop_after_events: int | None = None
        self.controller_events = controller_events
        self.workloads = workloads  # the controller keeps ReplicaSets and walks blue-green
        self.unready: dict[str, int] = {}  # ReplicaSet name -> pods not ready (workloads)
        # The traffic router's mirror routes per Rollout: (namespace, name) -> {route: %}.
        self.mirror_routes: dict[tuple[str, str], dict[str, int]] = {}
        self.requests: list[LoggedRequest] = []
        self.internal_errors: list[BaseException] = []  # bugs in the fake itself, if any
        self._forbidden: list[tuple[str, str, str]] = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._objects: dict[tuple[ResourceType, str, str], Obj] = {}
        self._history: list[_Change] = []
        self._rv = 100
        self._compacted_rv = 0
        self._watches: list[_Watch] = []
        self._stopping = False
        self._controller_thread: threading.Thread | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        fake = self

        class Handler(_Handler):
            kube = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            for w in self._watches:
                w.end = True
            self._cond.notify_all()
        if self._controller_thread is not None:
            self._controller_thread.join(timeout=2)
        self.wait_for_watches(0, timeout=2)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeKube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- switches and test hooks -----------------------------------------------------

    def forbid(self, verb: str = "*", resource: str = "*", namespace: str = "*") -> None:
        """Deny `verb` on `resource` (`rollouts`, `rollouts/status`, `*`) in `namespace`."""
        with self._lock:
            self._forbidden.append((verb, resource, namespace))

    def allow_all(self) -> None:
        with self._lock:
            self._forbidden.clear()

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def compact(self, upto: str | None = None) -> None:
        """Forget history up to `upto` (default: now): older watch RVs then get 410."""
        with self._lock:
            self._compacted_rv = int(upto) if upto is not None else self._rv

    def drop_watches(self) -> None:
        """Cut every open watch without the closing chunk, like a broken connection."""
        self._flag_watches("drop")

    def end_watches(self) -> None:
        """End every open watch cleanly, as the server does when its own timeout passes."""
        self._flag_watches("end")

    def send_bookmark(self) -> None:
        """Make every watch that asked for bookmarks send one now."""
        self._flag_watches("bookmark_pending")

    def _flag_watches(self, name: str) -> None:
        with self._cond:
            for w in self._watches:
                if name != "bookmark_pending" or w.bookmarks:
                    setattr(w, name, True)
            self._cond.notify_all()

    def watch_count(self) -> int:
        with self._lock:
            return len(self._watches)

    def wait_for_watches(self, n: int, timeout: float = 2.0) -> bool:
        """Wait until exactly `n` watches are open (so tests need no sleeps)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._watches) != n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, method: str | None = None, path: str | None = None,
                    ) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (path is None or r.path == path)]

    # --- direct state access for tests (not over HTTP) -------------------------------

    def get_object(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        with self._lock:
            obj = self._objects.get((rt, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def objects(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        with self._lock:
            return [copy.deepcopy(o) for (t, ns, _), o in sorted(
                self._objects.items(), key=lambda kv: (kv[0][1], kv[0][2]))
                if t == rt and (namespace is None or ns == namespace)]

    def seed(self, rt: ResourceType, namespace: str, obj: Obj) -> Obj:
        """Create `obj` as a POST would (status kept), without a request in the log."""
        with self._lock:
            return self._create(rt, namespace, copy.deepcopy(obj), keep_status=True)

    def mutate(self, rt: ResourceType, namespace: str, name: str,
               change: Callable[[Obj], None]) -> Obj:
        """Change a stored object in place (spec, status, anything), as another client or
        the controller would: a new resourceVersion and a MODIFIED event, no log entry."""
        with self._lock:
            old = self._objects.get((rt, namespace, name))
            if old is None:
                raise not_found(rt, name)
            new = copy.deepcopy(old)
            change(new)
            if new == old:
                return copy.deepcopy(old)
            new["metadata"]["resourceVersion"] = str(self._next_rv())
            self._objects[(rt, namespace, name)] = new
            self._record("MODIFIED", rt, namespace, new, old)
            return copy.deepcopy(new)

    def remove(self, rt: ResourceType, namespace: str, name: str) -> None:
        """Delete a stored object (a DELETED event), as `kubectl delete` would."""
        with self._lock:
            self._delete(rt, namespace, name, None)

    # --- storage ----------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, kind: str, rt: ResourceType, ns: str, obj: Obj, prev: Obj | None) -> None:
        self._history.append(_Change(int(obj["metadata"]["resourceVersion"]), kind, rt, ns,
                                     copy.deepcopy(obj), prev))
        self._cond.notify_all()

    def _full(self, rt: ResourceType, obj: Obj) -> Obj:
        # apiVersion and kind first, as the real server's encoder writes them.
        out: Obj = {"apiVersion": rt.api_version, "kind": rt.kind}
        out.update((k, copy.deepcopy(v)) for k, v in obj.items()
                   if k not in ("apiVersion", "kind"))
        return out

    def _create(self, rt: ResourceType, ns: str, obj: Obj, *, keep_status: bool) -> Obj:
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        name = meta.get("name")
        if not name and meta.get("generateName"):
            # The alphabet and length of apimachinery's name generator.
            name = meta["generateName"] + "".join(
                random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        if not name:
            raise invalid(rt, "", "metadata.name",
                          "Required value: name or generateName is required")
        if rt.namespaced and meta.get("namespace", ns) != ns:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        if (rt, ns, name) in self._objects:
            raise KubeError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists',
                            _details(rt, name))
        if self._status_on(rt) and not keep_status:
            obj.pop("status", None)  # POST to the main resource ignores the status stanza
        for server_set in ("resourceVersion", "uid", "creationTimestamp", "generation",
                           "deletionTimestamp", "managedFields"):
            meta.pop(server_set, None)
        meta.update(name=name, uid=str(uuid.uuid4()),
                    creationTimestamp=_rfc3339(self.clock()), generation=1,
                    resourceVersion=str(self._next_rv()))
        if rt.namespaced:
            meta["namespace"] = ns
        stored = self._full(rt, obj)
        self._objects[(rt, ns, name)] = stored
        self._record("ADDED", rt, ns, stored, None)
        return copy.deepcopy(stored)

    def _status_on(self, rt: ResourceType) -> bool:
        return rt.has_status_subresource and self.status_subresource

    def _update(self, rt: ResourceType, ns: str, name: str, new: Obj, *, subresource: str | None,
                require_rv: bool) -> Obj:
        """The one path every PUT and PATCH takes once the new object is computed."""
        old = self._objects.get((rt, ns, name))
        if old is None:
            raise not_found(rt, name)
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if meta.get("name", name) != name:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match "
                              f"the name on the URL ({name})")
        if rt.namespaced and meta.get("namespace", ns) != ns:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        sent_rv = meta.get("resourceVersion")
        if not sent_rv and require_rv:
            # Custom resources do not allow unconditional updates.
            raise invalid(rt, name, "metadata.resourceVersion",
                          "Invalid value: 0x0: must be specified for an update")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        if subresource == "status":
            # Only the status stanza changes; a body without one removes it.
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = copy.deepcopy(new["status"])
            else:
                result.pop("status", None)
        else:
            result = copy.deepcopy(new)
            result_meta = result["metadata"]
            for server_set in ("uid", "creationTimestamp", "generation", "resourceVersion",
                               "name", "namespace"):
                if server_set in old["metadata"]:
                    result_meta[server_set] = old["metadata"][server_set]
                else:
                    result_meta.pop(server_set, None)
            if self._status_on(rt):
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
                else:
                    result.pop("status", None)
            ignored = ("metadata", "status", "kind", "apiVersion") if self._status_on(rt) \
                else ("metadata", "kind", "apiVersion")
            if _without(result, *ignored) != _without(old, *ignored):
                result_meta["generation"] = old["metadata"].get("generation", 1) + 1
        result = self._full(rt, result)
        if result == old:
            # etcd is not written for a no-op: no new resourceVersion, no watch event.
            return copy.deepcopy(old)
        result["metadata"]["resourceVersion"] = str(self._next_rv())
        self._objects[(rt, ns, name)] = result
        self._record("MODIFIED", rt, ns, result, old)
        return copy.deepcopy(result)

    def _delete(self, rt: ResourceType, ns: str, name: str, options: Any) -> Obj:
        old = self._objects.get((rt, ns, name))
        if old is None:
            raise not_found(rt, name)
        pre = options.get("preconditions") if isinstance(options, dict) else None
        if isinstance(pre, dict):
            have = old["metadata"]
            if pre.get("resourceVersion") and pre["resourceVersion"] != have["resourceVersion"]:
                raise KubeError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {rt.qualified} "{name}": the '
                    f"ResourceVersion in the precondition ({pre['resourceVersion']}) does not "
                    f"match the ResourceVersion in record ({have['resourceVersion']}). "
                    "The object might have been modified", _details(rt, name))
            if pre.get("uid") and pre["uid"] != have["uid"]:
                raise KubeError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {rt.qualified} "{name}": Precondition '
                    f"failed: UID in precondition: {pre['uid']}, UID in object meta: "
                    f"{have['uid']}", _details(rt, name))
        del self._objects[(rt, ns, name)]
        gone = copy.deepcopy(old)
        # The DELETED event carries the revision of the deletion itself.
        gone["metadata"]["resourceVersion"] = str(self._next_rv())
        self._record("DELETED", rt, ns, gone, old)
        # The garbage collector's background cascade: what the object owned goes too
        # (a Rollout's ReplicaSets), so a new object of the same name starts afresh.
        uid = old["metadata"].get("uid")
        for (t, ons, oname), o in list(self._objects.items()):
            refs = o.get("metadata", {}).get("ownerReferences") or []
            if ons == ns and any(r.get("uid") == uid for r in refs if isinstance(r, dict)):
                self._delete(t, ons, oname, None)
        details = _details(rt, name)
        details["uid"] = old["metadata"]["uid"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details}

    def _list(self, rt: ResourceType, ns: str | None, query: dict[str, str]) -> Obj:
        items = [o for (t, ons, _), o in sorted(self._objects.items(),
                                                 key=lambda kv: (kv[0][1], kv[0][2]))
                 if t == rt and (ns is None or ons == ns)
                 and _matches(o, query.get("labelSelector"), query.get("fieldSelector"))]
        list_rv = str(self._rv)
        meta: Obj = {"resourceVersion": list_rv}
        token = query.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                list_rv, after = state["rv"], state["after"]
            except (ValueError, KeyError, TypeError) as err:
                raise bad_request(f"continue key is not valid: {err}") from None
            meta["resourceVersion"] = list_rv
            items = [o for o in items if (o["metadata"].get("namespace", ""),
                                          o["metadata"]["name"]) > tuple(after)]
        limit = query.get("limit")
        if limit:
            try:
                n = int(limit)
            except ValueError:
                raise bad_request(f"invalid limit {limit!r}") from None
            if 0 < n < len(items):
                last = items[n - 1]["metadata"]
                items = items[:n]
                meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                    {"rv": list_rv, "after": [last.get("namespace", ""), last["name"]]},
                ).encode()).decode()
        out_items = []
        for o in items:
            item = copy.deepcopy(o)
            if not rt.custom:
                # Typed lists serialise their items without TypeMeta; unstructured CR
                # lists keep kind/apiVersion on every item.
                item.pop("kind", None)
                item.pop("apiVersion", None)
            out_items.append(item)
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta,
                "items": out_items}

    # --- authn / authz ----------------------------------------------------------------

    def _authenticate(self, header: str | None) -> None:
        if self.unauthorized or (self.token is not None
                                 and header != f"Bearer {self.token}"):
            raise KubeError(401, "Unauthorized", "Unauthorized")

    def _authorize(self, verb: str, rt: ResourceType, sub: str | None, ns: str | None,
                   name: str | None) -> None:
        resource = f"{rt.plural}/{sub}" if sub else rt.plural
        for f_verb, f_res, f_ns in self._forbidden:
            if f_verb in ("*", verb) and f_res in ("*", resource) and \
                    f_ns in ("*", ns or ""):
                where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
                subject = f'{rt.qualified} "{name}"' if name else rt.qualified
                raise KubeError(
                    403, "Forbidden",
                    f'{subject} is forbidden: User "{self.user}" cannot {verb} resource '
                    f'"{resource}" in API group "{rt.group}" {where}',
                    _details(rt, name or ""))

    # --- the controller ---------------------------------------------------------------

    def start_controller(self, interval: float = 0.02) -> None:
        """Run `step_controller()` every `interval` seconds until `close()`."""
        def loop() -> None:
            while not self._stopping:
                self.step_controller()
                time.sleep(interval)
        self._controller_thread = threading.Thread(target=loop, daemon=True)
        self._controller_thread.start()

    def step_controller(self) -> list[str]:
        """One reconcile pass over every canary Rollout; each moves at most one step.

        Returns "namespace/name" of the Rollouts it changed.
        """
        changed = []
        with self._lock:
            for key in sorted(k for k in self._objects if k[0] == ROLLOUTS):
                old = self._objects[key]
                routes = self.mirror_routes.setdefault((key[1], key[2]), {})
                new = _Reconciler(old, self.clock(), workloads=self.workloads,
                                  mirror_routes=routes).run()
                if new is None:
                    continue
                new_obj, events = new
                wanted: dict[str, int] = {}
                if self.workloads:
                    wanted = _replica_sets_wanted(new_obj)
                    self._count_pods(new_obj, wanted)
                if new_obj != old:
                    new_obj["metadata"]["resourceVersion"] = str(self._next_rv())
                    self._objects[key] = new_obj
                    self._record("MODIFIED", ROLLOUTS, key[1], new_obj, old)
                    changed.append(f"{key[1]}/{key[2]}")
                    if self.controller_events:
                        for etype, reason, message in events:
                            self._emit_event(new_obj, etype, reason, message)
                if self.workloads:
                    self._sync_replica_sets(new_obj, wanted)
        return changed

    # --- ReplicaSets (workloads=True) ---------------------------------------------------

    def _owned_replica_sets(self, ro: Obj) -> dict[str, Obj]:
        uid = ro["metadata"]["uid"]
        ns = ro["metadata"]["namespace"]
        return {o["metadata"]["name"]: o for (t, ons, _), o in self._objects.items()
                if t == REPLICASETS and ons == ns
                and any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences", []))}

    def _ready(self, rs_name: str, replicas: int) -> int:
        return max(0, replicas - self.unready.get(rs_name, 0))

    def _count_pods(self, ro: Obj, wanted: dict[str, int]) -> None:
        """The Rollout's ready/available counters are its ReplicaSets' pods, as Argo sums them."""
        if not wanted:
            return
        name = ro["metadata"]["name"]
        ready = sum(self._ready(f"{name}-{h}", n) for h, n in wanted.items())
        st = ro.setdefault("status", {})
        st["readyReplicas"] = st["availableReplicas"] = ready

    def _sync_replica_sets(self, ro: Obj, wanted: dict[str, int]) -> None:
        meta = ro["metadata"]
        ns, name = meta["namespace"], meta["name"]
        owned = self._owned_replica_sets(ro)
        revision = (meta.get("annotations") or {}).get("rollout.argoproj.io/revision", "1")
        labels = dict(((ro.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        names = {f"{name}-{h}": h for h in wanted}
        for rs_name in sorted(set(owned) | set(names)):
            replicas = wanted.get(names.get(rs_name, ""), 0)
            ready = self._ready(rs_name, replicas)
            status = {"replicas": replicas, "fullyLabeledReplicas": replicas,
                      "readyReplicas": ready, "availableReplicas": ready,
                      "observedGeneration": 1}
            current = owned.get(rs_name)
            if current is None:
                h = names[rs_name]
                self._create(REPLICASETS, ns, {
                    "metadata": {
                        "name": rs_name, "namespace": ns,
                        "labels": {**labels, "rollouts-pod-template-hash": h},
                        "annotations": {"rollout.argoproj.io/revision": revision},
                        "ownerReferences": [{
                            "apiVersion": ROLLOUTS.api_version, "kind": "Rollout",
                            "name": name, "uid": meta["uid"], "controller": True,
                            "blockOwnerDeletion": True}]},
                    "spec": {"replicas": replicas,
                             "selector": {"matchLabels": {
                                 **labels, "rollouts-pod-template-hash": h}},
                             "template": (ro.get("spec") or {}).get("template") or {}},
                    "status": status}, keep_status=True)
                continue
            if current["spec"].get("replicas") == replicas and current.get("status") == status:
                continue
            updated = copy.deepcopy(current)
            updated["spec"]["replicas"] = replicas
            updated["status"] = status
            updated["metadata"]["resourceVersion"] = str(self._next_rv())
            self._objects[(REPLICASETS, ns, rs_name)] = updated
            self._record("MODIFIED", REPLICASETS, ns, updated, current)

    def _emit_event(self, ro: Obj, etype: str, reason: str, message: str) -> None:
        meta = ro["metadata"]
        now = _rfc3339(self.clock())
        self._create(CORE_EVENTS, meta["namespace"], {
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                         "namespace": meta["namespace"]},
            "involvedObject": {"kind": "Rollout", "namespace": meta["namespace"],
                               "name": meta["name"], "uid": meta["uid"],
                               "apiVersion": ROLLOUTS.api_version,
                               "resourceVersion": meta["resourceVersion"]},
            "reason": reason, "message": message, "type": etype,
            "source": {"component": "rollouts-controller"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": "rollouts-controller", "reportingInstance": "",
        }, keep_status=True)

    # --- request handling ---------------------------------------------------------------

    def _route(self, path: str) -> tuple[ResourceType, str | None, str | None, str | None]:
        """(type, namespace, name, subresource) for a served path, else 404."""
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise no_such_path()
        ns = None
        if len(rest) >= 2 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise no_such_path()
        for rt in RESOURCE_TYPES:
            if (rt.group, rt.version, rt.plural) == (group, version, rest[0]) and \
                    (self.workloads or rt not in _WORKLOAD_TYPES):
                break
        else:
            raise no_such_path()
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub is not None and (sub != "status" or not self._status_on(rt)):
            raise no_such_path()
        if name is not None and ns is None and rt.namespaced:
            raise no_such_path()
        return rt, ns, name, sub

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, Obj] | _WatchRequest:
        self._authenticate(headers.get("authorization"))
        if path == "/version" and method == "GET":
            return 200, {"major": "1", "minor": "34", "gitVersion": "v1.34.0-fake",
                         "platform": "linux/amd64"}
        rt, ns, name, sub = self._route(path)
        watching = method == "GET" and query.get("watch") in ("1", "true")
        verb = {"GET": "watch" if watching else ("get" if name else "list"),
                "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method)
        if verb is None:
            raise KubeError(405, "MethodNotAllowed",
                            "the server does not allow this method on the requested resource")
        self._authorize(verb, rt, sub, ns, name)
        ctype = _media_type(headers.get("content-type"))
        with self._lock:
            if verb == "watch":
                return _WatchRequest(rt, ns, name, query)
            if verb == "list":
                return 200, self._list(rt, ns, query)
            if verb == "get":
                assert name is not None
                obj = self._objects.get((rt, ns or "", name))
                if obj is None:
                    raise not_found(rt, name)
                return 200, copy.deepcopy(obj)
            if verb in ("create", "update") and ctype != JSON:
                raise unsupported_media([JSON, "application/yaml"])
            if verb == "create":
                if name is not None or (ns is None and rt.namespaced):
                    raise KubeError(405, "MethodNotAllowed", "the server does not allow this "
                                    "method on the requested resource")
                new_obj = _object_body(body)
                if rt == CORE_EVENTS:
                    _check_core_event(new_obj)
                return 201, self._create(rt, ns or "", new_obj, keep_status=False)
            assert name is not None
            key = (rt, ns or "", name)
            if verb == "update":
                new = _object_body(body)
                return 200, self._update(rt, ns or "", name, new, subresource=sub,
                                         require_rv=rt.custom)
            if verb == "patch":
                old = self._objects.get(key)
                if old is None:
                    raise not_found(rt, name)
                patch = _json_body(body)
                if ctype == MERGE_PATCH or (ctype == STRATEGIC_PATCH and not rt.custom):
                    # None of the built-in types served here has a list with a patch
                    # strategy that strategic merge would treat differently from RFC 7386.
                    if not isinstance(patch, dict):
                        raise bad_request("a merge patch must be a JSON object")
                    new = merge_patch(old, patch)
                elif ctype == JSON_PATCH:
                    try:
                        new = json_patch(old, patch)
                    except ValueError as err:
                        raise bad_request(str(err)) from None
                    except JSONPatchError as err:
                        raise KubeError(422, "Invalid", str(err)) from None
                elif ctype == APPLY_PATCH:
                    raise KubeError(415, "UnsupportedMediaType",
                                    "server-side apply is not implemented by this fake")
                else:
                    accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
                    if not rt.custom:
                        accepted.insert(2, STRATEGIC_PATCH)
                    raise unsupported_media(accepted)
                if not isinstance(new, dict):
                    raise bad_request("the patched object is not a JSON object")
                # A resourceVersion inside the patch is a precondition, as on the real one.
                return 200, self._update(rt, ns or "", name, new, subresource=sub,
                                         require_rv=False)
            if verb == "delete":
                options = _json_body(body) if body.strip() else None
                return 200, self._delete(rt, ns or "", name, options)
            raise KubeError(405, "MethodNotAllowed",
                            "the server does not allow this method on the requested resource")

    # --- watch --------------------------------------------------------------------------

    def _watch_plan(self, req: _WatchRequest) -> tuple[list[Obj], int, _Watch, float | None]:
        """Under the lock: the first events, the history cursor, and the deadline."""
        q = req.query
        labels, fields_ = q.get("labelSelector"), q.get("fieldSelector")
        if req.name:
            # A GET on one object with ?watch is a watch filtered to that name.
            fields_ = ",".join(filter(None, [fields_, f"metadata.name={req.name}"]))
        timeout = None
        if q.get("timeoutSeconds"):
            try:
                timeout = int(q["timeoutSeconds"]) * self.time_scale
            except ValueError:
                raise bad_request(f"invalid value for timeoutSeconds: "
                                  f"{q['timeoutSeconds']!r}") from None
        elif self.default_watch_timeout is not None:
            timeout = self.default_watch_timeout * self.time_scale
        deadline = time.monotonic() + timeout if timeout is not None else None
        rv = q.get("resourceVersion", "")
        w = _Watch(req.rt, req.ns, q.get("allowWatchBookmarks") in ("1", "true"), labels,
                   fields_)
        first: list[Obj] = []
        if rv in ("", "0"):
            for (t, ns, _), o in sorted(self._objects.items(),
                                        key=lambda kv: (kv[0][1], kv[0][2])):
                if t == req.rt and (req.ns is None or ns == req.ns) and \
                        _matches(o, labels, fields_):
                    first.append({"type": "ADDED", "object": copy.deepcopy(o)})
            return first, len(self._history), w, deadline
        try:
            start = int(rv)
        except ValueError:
            raise bad_request(f'invalid resource version "{rv}"') from None
        if start < self._compacted_rv:
            status = KubeError(410, self.expired_reason,
                               f"too old resource version: {start} ({self._compacted_rv})")
            w.end = True
            return [{"type": "ERROR", "object": status.status()}], len(self._history), w, deadline
        cursor = next((i for i, c in enumerate(self._history) if c.rv > start),
                      len(self._history))
        return first, cursor, w, deadline

    def _events_since(self, w: _Watch, cursor: int) -> tuple[list[Obj], int]:
        out = []
        labels, fields_ = w.labels, w.fields
        for change in self._history[cursor:]:
            if change.rt != w.rt or (w.namespace is not None and change.namespace != w.namespace):
                continue
            now_in = change.type != "DELETED" and _matches(change.obj, labels, fields_)
            was_in = change.prev is not None and _matches(change.prev, labels, fields_)
            if change.type == "DELETED":
                kind = "DELETED" if was_in else None
            elif now_in and was_in:
                kind = "MODIFIED"
            elif now_in:
                kind = "ADDED"
            elif was_in:
                kind = "DELETED"  # it left the selector: the watcher sees it go
            else:
                kind = None
            if kind:
                out.append({"type": kind, "object": copy.deepcopy(change.obj)})
        return out, len(self._history)

    def serve_watch(self, handler: _Handler, req: _WatchRequest) -> None:
        with self._cond:
            first, cursor, w, deadline = self._watch_plan(req)
            self._watches.append(w)
            self._cond.notify_all()
        handler.send_response(200)
        handler.send_header("Content-Type", JSON)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Cache-Control", "no-cache, private")
        handler.end_headers()
        last_bookmark = time.monotonic()
        w.limit = self.drop_after_events

        def send(batch: list[Obj]) -> bool:
            if w.limit is None:
                handler.write_chunks(batch)
                return True
            room = w.limit - w.sent
            handler.write_chunks(batch[:room])
            w.sent += min(room, len(batch))
            if w.sent < w.limit:
                return True
            handler.abort_connection()
            return False

        try:
            if not send(first):
                return
            while True:
                bookmark: Obj | None = None
                with self._cond:
                    while True:
                        events, cursor = self._events_since(w, cursor)
                        now = time.monotonic()
                        if self.bookmark_interval is not None and w.bookmarks and \
                                now - last_bookmark >= self.bookmark_interval * self.time_scale:
                            w.bookmark_pending = True
                        timed_out = deadline is not None and now >= deadline
                        if events or w.drop or w.end or w.bookmark_pending or timed_out \
                                or self._stopping:
                            break
                        wait = 0.05 if deadline is None else min(0.05, deadline - now)
                        self._cond.wait(max(wait, 0.001))
                    if w.bookmark_pending and not w.drop:
                        w.bookmark_pending = False
                        last_bookmark = now
                        bookmark = {"type": "BOOKMARK", "object": {
                            "kind": w.rt.kind, "apiVersion": w.rt.api_version,
                            "metadata": {"resourceVersion": str(self._rv)}}}
                    drop, end = w.drop, w.end or timed_out or self._stopping
                if drop:
                    handler.abort_connection()
                    return
                if not send(events + ([bookmark] if bookmark else [])):
                    return
                if end:
                    handler.end_chunks()
                    return
        except (BrokenPipeError, ConnectionResetError, OSError):
            handler.close_connection = True
        finally:
            with self._cond:
                if w in self._watches:
                    self._watches.remove(w)
                self._cond.notify_all()


@dataclass
class _WatchRequest:
    rt: ResourceType
    ns: str | None
    name: str | None
    query: dict[str, str]


def _check_core_event(event: Obj) -> None:
    """The API server's legacy validation of a core/v1 Event (pkg/apis/core/validation/
    events.go): one with eventTime is a "new" Event and needs the reporting fields."""
    name = (event.get("metadata") or {}).get("name") or \
        (event.get("metadata") or {}).get("generateName", "")
    if event.get("type") not in (None, "", "Normal", "Warning"):
        raise invalid(CORE_EVENTS, name, "type",
                      f'Unsupported value: "{event.get("type")}": supported values: '
                      '"Normal", "Warning"')
    if not event.get("eventTime"):
        return
    for fld in ("reportingComponent", "reportingInstance", "action", "reason"):
        if not event.get(fld):
            raise invalid(CORE_EVENTS, name, fld, "Required value")
    for fld in ("reportingInstance", "action", "reason"):
        if len(str(event[fld])) > 128:
            raise invalid(CORE_EVENTS, name, fld, "can have at most 128 characters")
    if len(str(event.get("message") or "")) > 1024:
        raise invalid(CORE_EVENTS, name, "message", "can have at most 1024 characters")


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as err:
        raise bad_request(f"the body of the request could not be decoded as JSON: {err}") \
            from None


def _object_body(body: bytes) -> Obj:
    obj = _json_body(body)
    if not isinstance(obj, dict):
        raise bad_request("the body of the request must be a JSON object")
    return obj


class _Handler(BaseHTTPRequestHandler):
    kube: FakeKube
    protocol_version = "HTTP/1.1"  # chunked watch streams need HTTP/1.1
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits
    # for its delayed ACK (~40 ms) on every request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is `FakeKube.requests`; stderr stays quiet

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        logged = LoggedRequest(
            self.command, parts.path, query, self.headers.get("Content-Type"), parsed, raw,
            {k: ("<redacted>" if k == "authorization" else v) for k, v in headers.items()})
        with self.kube._lock:
            self.kube.requests.append(logged)
        try:
            result = self.kube.handle(self.command, parts.path, query, headers, raw)
            if isinstance(result, _WatchRequest):
                logged.status = 200
                self.kube.serve_watch(self, result)
                return
            code, body = result
        except KubeError as err:
            code, body = err.code, err.status()
        except Exception as err:  # a bug in the fake: answer, and keep it for the test
            self.kube.internal_errors.append(err)
            code, body = 500, KubeError(500, "InternalError", f"fake_kube: {err!r}").status()
        logged.status = code
        data = json.dumps(body, separators=(",", ":")).encode()  # compact, like the real one
        self.send_response(code)
        self.send_header("Content-Type", JSON)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def write_chunks(self, events: list[Obj]) -> None:
        for event in events:
            data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort_connection(self) -> None:
        # No closing chunk: the client sees the stream break, as on a lost connection.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


# --- the canary controller ----------------------------------------------------------------


class _Reconciler:
    """One pass over one Rollout: what Argo's canary sync would do next, simply."""

    def __init__(self, ro: Obj, now: datetime, *, workloads: bool = False,
                 mirror_routes: dict[str, int] | None = None) -> None:
        self.ro = copy.deepcopy(ro)
        self.now = now
        self.workloads = workloads
        self.events: list[tuple[str, str, str]] = []
        # The router's mirror routes for this Rollout, changed in place (FakeKube's).
        self.mirror_routes: dict[str, int] = {} if mirror_routes is None else mirror_routes

    def run(self) -> tuple[Obj, list[tuple[str, str, str]]] | None:
        spec = self.ro.get("spec") or {}
        strategy = spec.get("strategy") or {}
        canary = strategy.get("canary")
        self.spec = spec
        self.status = self.ro.setdefault("status", {})
        self.replicas = int(spec.get("replicas", 1))
        if not isinstance(canary, dict):
            blue_green = strategy.get("blueGreen")
            if not (self.workloads and isinstance(blue_green, dict)):
                return None  # anything else is left alone
            self.canary, self.steps = {}, []
            self._sync_blue_green(blue_green)
            self._finish()
            return self.ro, self.events
        self.canary = canary
        self.steps = canary.get("steps") or []
        self._sync()
        self._finish()
        return self.ro, self.events

    def _sync_blue_green(self, bg: Obj) -> None:
        """Preview, then (on promote, or at once with autoPromotionEnabled) cut-over."""
        st, n = self.status, self.replicas
        h = _pod_hash(self.spec.get("template"))
        blue = st.setdefault("blueGreen", {})
        if st.get("currentPodHash") != h:
            notes = self.ro["metadata"].setdefault("annotations", {})
            notes["rollout.argoproj.io/revision"] = str(self._revision() + 1)
            st["currentPodHash"] = h
            for gone in ("pauseConditions", "abort", "abortedAt"):
                st.pop(gone, None)
            st.update(controllerPause=False, promoteFull=False)
            blue["previewSelector"] = h
            if not st.get("stableRS"):
                st["stableRS"] = h
                blue["activeSelector"] = h
                st.update(replicas=n, updatedReplicas=n, availableReplicas=n, readyReplicas=n)
            else:
                st.update(replicas=2 * n, updatedReplicas=n, availableReplicas=2 * n,
                          readyReplicas=2 * n)
                self.events.append(("Normal", "RolloutUpdated",
                                    f"Rollout updated to revision {self._revision()}"))
            return
        if st.get("abort"):
            if not st.get("abortedAt"):
                st["abortedAt"] = _rfc3339(self.now)
                st.pop("pauseConditions", None)
                st["controllerPause"] = False
                blue["activeSelector"] = st.get("stableRS", "")
                self.events.append(("Warning", "RolloutAborted",
                                    f"Rollout aborted update to revision {self._revision()}"))
            return
        st.pop("abortedAt", None)
        if st.get("stableRS") == h or self.spec.get("paused"):
            return
        auto = bg.get("autoPromotionEnabled", True) is not False
        pcs = st.get("pauseConditions") or []
        promoted = st.get("promoteFull") or auto or (st.get("controllerPause") and not pcs)
        if not promoted:
            if not pcs:
                st["pauseConditions"] = [{"reason": "BlueGreenPause",
                                          "startTime": _rfc3339(self.now)}]
                st["controllerPause"] = True
                self.events.append(("Normal", "RolloutPaused",
                                    "Rollout is paused (BlueGreenPause)"))
            return
        st.pop("pauseConditions", None)
        st.update(controllerPause=False, promoteFull=False, stableRS=h, replicas=n,
                  updatedReplicas=n, availableReplicas=n, readyReplicas=n)
        blue["activeSelector"] = h
        self.events.append(("Normal", "RolloutCompleted",
                            f"Rollout completed update to revision {self._revision()} ({h})"))

    # Weights and replica counts follow the fixtures' traffic-router shape: the canary
    # ReplicaSet is scaled to the weight while the stable one stays at full size. With
    # `workloads` and no trafficRouting, Argo's basic canary instead: the canary takes
    # ceil(N*weight/100) of the N pods, stable the rest, and no weights are written.
    def _set_weight(self, weight: int) -> None:
        st = self.status
        if self.workloads and "trafficRouting" not in self.canary:
            fully = st.get("stableRS") == st.get("currentPodHash")
            updated = self.replicas if fully else math.ceil(self.replicas * weight / 100)
            (st.get("canary") or {}).pop("weights", None)
            st.update(replicas=self.replicas, updatedReplicas=updated,
                      readyReplicas=self.replicas, availableReplicas=self.replicas,
                      HPAReplicas=self.replicas)
            return
        canary_svc = self.canary.get("canaryService", "")
        stable_svc = self.canary.get("stableService", "")
        st.setdefault("canary", {})["weights"] = {
            "canary": {"weight": weight, "podTemplateHash": st.get("currentPodHash", ""),
                       "serviceName": canary_svc},
            "stable": {"weight": 100 - weight, "podTemplateHash": st.get("stableRS", ""),
                       "serviceName": stable_svc}}
        fully = st.get("stableRS") == st.get("currentPodHash")
        updated = self.replicas if fully else math.ceil(self.replicas * weight / 100)
        total = self.replicas if fully else self.replicas + updated
        st.update(replicas=total, updatedReplicas=updated, readyReplicas=total,
                  availableReplicas=total, HPAReplicas=total)

    def _revision(self) -> int:
        notes = self.ro["metadata"].setdefault("annotations", {})
        return int(notes.get("rollout.argoproj.io/revision", "0"))

    def _step_text(self, step: Obj) -> str:
        if "setWeight" in step:
            return f"setWeight: {step['setWeight']}"
        if "pause" in step:
            d = (step.get("pause") or {}).get("duration")
            return f"pause: {d}" if d is not None else "pause"
        if "setMirrorRoute" in step:
            return f"setMirrorRoute: {(step['setMirrorRoute'] or {}).get('name', '')}"
        return ", ".join(step)

    def _set_mirror_route(self, body: Obj) -> None:
        """Argo's SetMirrorRoute on the router: only with trafficRouting; no match removes."""
        if "trafficRouting" not in self.canary:
            return
        name = str(body.get("name", ""))
        self.mirror_routes.pop(name, None)
        if body.get("match"):
            percentage = body.get("percentage")
            self.mirror_routes[name] = 100 if percentage is None else int(percentage)

    def _complete_step(self, idx: int) -> None:
        self.status["currentStepIndex"] = idx + 1
        self.events.append(("Normal", "RolloutStepCompleted",
                            f"Rollout step {idx + 1}/{len(self.steps)} completed "
                            f"({self._step_text(self.steps[idx])})"))

    def _sync(self) -> None:
        st, steps = self.status, self.steps
        h = _pod_hash(self.spec.get("template"))
        if st.get("currentPodHash") != h:
            notes = self.ro["metadata"].setdefault("annotations", {})
            notes["rollout.argoproj.io/revision"] = str(self._revision() + 1)
            st["currentPodHash"] = h
            st["currentStepHash"] = _pod_hash(steps)[:8]
            for gone in ("pauseConditions", "abort", "abortedAt"):
                st.pop(gone, None)  # a new template un-aborts (resetRolloutStatus)
            st.update(controllerPause=False, promoteFull=False)
            self.mirror_routes.clear()  # the new ReplicaSet has no pods yet: routes removed
            if not st.get("stableRS") or st["stableRS"] == h:
                # First deploy, or back to the stable template: no steps to walk.
                st["stableRS"] = h
                st["currentStepIndex"] = len(steps)
                self._set_weight(0)
            else:
                st["currentStepIndex"] = 0
                self._set_weight(0)
                self.events.append(("Normal", "RolloutUpdated",
                                    f"Rollout updated to revision {self._revision()}"))
            return
        if st.get("abort"):
            if not st.get("abortedAt"):
                st["abortedAt"] = _rfc3339(self.now)
                st.pop("pauseConditions", None)
                st["controllerPause"] = False
                if st.get("stableRS") != h:
                    st["currentStepIndex"] = 0
                self._set_weight(0)
                self.mirror_routes.clear()
                self.events.append(("Warning", "RolloutAborted",
                                    f"Rollout aborted update to revision {self._revision()}"))
            return
        st.pop("abortedAt", None)  # retried: abort went false
        if st.get("stableRS") == h:
            return
        if st.get("promoteFull"):
            st.pop("pauseConditions", None)
            st.update(controllerPause=False, promoteFull=False, currentStepIndex=len(steps))
        if self.spec.get("paused"):
            return
        idx = int(st.get("currentStepIndex") or 0)
        if idx >= len(steps):
            st["stableRS"] = h
            self._set_weight(0)
            self.mirror_routes.clear()
            self.events.append(("Normal", "RolloutCompleted",
                                f"Rollout completed update to revision {self._revision()} "
                                f"({h})"))
            return
        step = steps[idx]
        if "setWeight" in step:
            self._set_weight(int(step["setWeight"]))
            self._complete_step(idx)
        elif "pause" in step:
            pcs = st.get("pauseConditions") or []
            if st.get("controllerPause") and not pcs:
                st["controllerPause"] = False  # someone cleared the pause: promoted
                st.pop("pauseConditions", None)
                self._complete_step(idx)
            elif not pcs:
                st["pauseConditions"] = [{"reason": "CanaryPauseStep",
                                          "startTime": _rfc3339(self.now)}]
                st["controllerPause"] = True
                self.events.append(("Normal", "RolloutPaused", "Rollout is paused "
                                    "(CanaryPauseStep)"))
            else:
                seconds = _duration_seconds((step.get("pause") or {}).get("duration"))
                started = datetime.fromisoformat(pcs[0]["startTime"].replace("Z", "+00:00"))
                if seconds is not None and self.now >= started + timedelta(seconds=seconds):
                    st.pop("pauseConditions", None)
                    st["controllerPause"] = False
                    self._complete_step(idx)
        elif "setMirrorRoute" in step:
            self._set_mirror_route(step["setMirrorRoute"] or {})
            self._complete_step(idx)
        else:
            # analysis, experiment and the rest pass at once: this is not Argo.
            self._complete_step(idx)

    def _finish(self) -> None:
        """status.phase/message/conditions/observedGeneration, as the controller writes them."""
        st, spec = self.status, self.spec
        st["observedGeneration"] = str(self.ro["metadata"].get("generation", 1))
        labels = ((spec.get("selector") or {}).get("matchLabels") or {})
        st["selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        rs = f'{self.ro["metadata"]["name"]}-{st.get("currentPodHash", "")}'
        now = _rfc3339(self.now)
        if st.get("abort"):
            message = f"Rollout aborted update to revision {self._revision()}"
            phase, text = "Degraded", f"RolloutAborted: {message}"
            self._condition("Progressing", "False", "RolloutAborted", message, now)
        elif spec.get("paused"):
            phase, text = "Paused", "manually paused"
        elif st.get("pauseConditions"):
            phase, text = "Paused", st["pauseConditions"][0]["reason"]
        elif st.get("stableRS") == st.get("currentPodHash"):
            phase, text = "Healthy", ""
            self._condition("Progressing", "True", "NewReplicaSetAvailable",
                            f'ReplicaSet "{rs}" has successfully progressed.', now)
        else:
            phase = "Progressing"
            text = ("more replicas need to be updated"
                    if st.get("updatedReplicas", 0) < self.replicas
                    else "waiting for all steps to complete")
            self._condition("Progressing", "True", "ReplicaSetUpdated",
                            f'ReplicaSet "{rs}" is progressing.', now)
        paused = phase == "Paused"
        self._condition("Paused", "True" if paused else "False",
                        "RolloutPaused" if paused else "RolloutResumed",
                        "Rollout is paused" if paused else "Rollout is resumed", now)
        self._condition("Healthy", "True" if phase == "Healthy" else "False",
                        "RolloutHealthy" if phase == "Healthy" else "RolloutHealthyIncomplete",
                        "Rollout is healthy" if phase == "Healthy"
                        else "Rollout is not healthy", now)
        st["phase"], st["message"] = phase, text

    def _condition(self, ctype: str, status: str, reason: str, message: str, now: str) -> None:
        conds: list[Obj] = self.status.setdefault("conditions", [])
        for c in conds:
            if c["type"] == ctype:
                if (c["status"], c["reason"], c["message"]) != (status, reason, message):
                    if c["status"] != status:
                        c["lastTransitionTime"] = now
                    c.update(status=status, reason=reason, message=message,
                             lastUpdateTime=now)
                return
        conds.append({"type": ctype, "status": status, "reason": reason, "message": message,
                      "lastTransitionTime": now, "lastUpdateTime": now})


def _replica_sets_wanted(ro: Obj) -> dict[str, int]:
    """Pod hash -> replicas for the Rollout's ReplicaSets as its status now stands."""
    spec, st = ro.get("spec") or {}, ro.get("status") or {}
    n = int(spec.get("replicas", 1))
    h, stable = st.get("currentPodHash"), st.get("stableRS")
    if not h:
        return {}
    if stable == h or not stable:
        return {h: n}
    strategy = spec.get("strategy") or {}
    if "blueGreen" in strategy:
        return {h: 0 if st.get("abort") else n, stable: n}
    canary = strategy.get("canary") or {}
    updated = int(st.get("updatedReplicas", 0))
    if "trafficRouting" in canary:
        return {h: updated, stable: n}
    return {h: updated, stable: n - updated}


def _duration_seconds(value: Any) -> float | None:
    """RolloutPause.Duration: an int of seconds or "10s"/"5m"/"1h"; None is indefinite."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        return None


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[FakeKube]:
    """`with running() as kube:` for tests that prefer a function to the class."""
    kube = FakeKube(**kwargs)
    try:
        yield kube
    finally:
        kube.close()


__all__ = [
    "ANALYSISRUNS", "ANALYSISTEMPLATES", "CLUSTERANALYSISTEMPLATES", "CORE_EVENTS", "EVENTS_V1",
    "LEASES", "REPLICASETS", "ROLLOUTS",
    "FakeKube", "KubeError", "LoggedRequest", "ResourceType", "json_patch", "merge_patch",
    "running",
]
