"""The `argo-rollouts` traffic provider: one Argo Rollout, read and driven as the plugin does.

`providers: {traffic: {type: argo-rollouts, rollout: NAME, namespace: NS}}`. The Rollout owns
the step plan and the weights; relconsole reads them (`read()`, kept fresh by a watch, not by
polling) and moves the Rollout with the exact requests of `kubectl argo rollouts`
(`promote`, `promote --full`, `abort`, `pause`; resume is the plugin's promote), each read back
and verified before it returns (safety rule 2). Every action also leaves, on the cluster, who
did it and why: a core/v1 Event on the Rollout and the `relconsole.dev/last-action` annotation,
the audit the plugin itself lacks (argo-rollouts #2058, #3957).

The pieces it stands on are pure and tested on their own: `kube.py` (the connection and its
errors), `view.py` (phase, message, steps and weights as the plugin computes them) and
`actions.py` (the plugin's requests per action and their verification).

How the cache stays fresh, and what `read()` says when it cannot:

* The first `read()` LISTs the Rollout (fieldSelector metadata.name, so a Role restricted
  with resourceNames suffices) and its ReplicaSets (label selector of spec.selector; the pods
  ready per side, and the actual weight of a canary without a traffic router, come from them),
  then two background tasks WATCH each from its list's resourceVersion. Later reads return
  the cached state without a request.
* A watch the server ends cleanly is reopened from the last version seen (lightkube does that).
  A watch that breaks is re-LISTed and re-watched at once; `410 Gone` likewise. Only when that
  fails does `read()` raise, with the reason, and the task retries with backoff (a `read()`
  makes it retry at once); the first successful re-list clears it. A watch refused with
  401/403 while the list still works (RBAC without `watch`) stays an error until the watch
  has stayed open for `watch_grace` seconds or delivered an event.
* The Rollout deleted, or replaced by a new object of the same name (another uid), is an
  error that does not clear: relconsole never silently follows a different object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightkube.generic_resource import create_namespaced_resource

from relconsole.model import (
    AnalysisVerdict,
    ControllerState,
    ControllerStep,
    Role,
    Route,
    ServerHealth,
    TrafficState,
)
from relconsole.providers._settings import Settings
from relconsole.providers.argo import actions
from relconsole.providers.argo.kube import (
    ANALYSIS_RUN,
    ANALYSIS_TEMPLATE,
    CLUSTER_ANALYSIS_TEMPLATE,
    ROLLOUT,
    Forbidden,
    Gone,
    KubeAuthError,
    KubeConnection,
    KubeError,
    KubeSettings,
    KubeUnreachable,
    ListResult,
    NotFound,
    ResourceKind,
    connect,
)
from relconsole.providers.argo.view import (
    PauseStep,
    RolloutFormatError,
    RolloutView,
    SetMirrorRouteStep,
    SetWeightStep,
    SideCounts,
    mirror_steps,
    view,
)
from relconsole.providers.base import BuildContext, ProviderError

NAME = "argo-rollouts"
SYSTEM = "Argo Rollouts"
ANNOTATION = "relconsole.dev/last-action"
EVENT_COMPONENT = "relconsole"

SETTINGS_KEYS = ("rollout", "namespace", "kubeconfig", "context", "timeout", "verify_timeout")

# Core types as generic resources, as kube.py does for Lease and Event: the server's JSON as is.
REPLICA_SET = ResourceKind("apps", "v1", "ReplicaSet", "replicasets", True, False,
                           create_namespaced_resource("apps", "v1", "ReplicaSet",
                                                      "replicasets"))

# What the console needs, for the 403 message (the README's RBAC says the same).
RBAC_NEEDS = ("get, list and watch on rollouts.argoproj.io; list and watch on "
              "replicasets.apps; get on analysisruns.argoproj.io; patch on "
              "rollouts.argoproj.io and rollouts/status to act; create on events")

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_FORBIDDEN_TEXT = re.compile(
    r'cannot (?P<verb>[\w-]+) resource "(?P<res>[^"]+)" in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<ns>[^"]+)")?')
_ACTOR = re.compile(r"(?P<user>[^@\s]+)@(?P<host>[^\s()]+)(?P<rest>.*)\Z")
_ANALYSIS_DONE = frozenset({"Successful", "Failed", "Error", "Inconclusive"})
_PAUSE_WAITS = frozenset({"InconclusiveAnalysisRun", "InconclusiveExperiment"})

# Backoff of a broken watch between re-list attempts (a read() retries at once).
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


def _err(message: str) -> ProviderError:
    return ProviderError(f"{NAME}: {message}")


# ------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ArgoSettings:
    rollout: str
    namespace: str | None = None  # None: the kubeconfig context's namespace, else "default"
    kubeconfig: Path | None = None
    context: str | None = None
    timeout: float = 4.0  # each request to the API server, and an exec credential plugin
    verify_timeout: float = 60.0  # how long an action waits for the controller to act


def parse_settings(raw: dict[str, Any], *, call_timeout: float = 5.0) -> ArgoSettings:
    s = Settings(NAME, raw, SETTINGS_KEYS)
    rollout = s.text("rollout", required=True)
    assert rollout is not None
    if not _DNS_SUBDOMAIN.match(rollout):
        raise s.error(f"rollout '{rollout[:60]}' is not a Kubernetes object name (lower-case "
                      "letters, digits, '-' and '.')")
    namespace = s.text("namespace")
    if namespace is not None and not _DNS_LABEL.match(namespace):
        raise s.error(f"namespace '{namespace[:60]}' is not a Kubernetes namespace name "
                      "(lower-case letters, digits and '-', at most 63)")
    kubeconfig = s.text("kubeconfig")
    context = s.text("context")
    timeout = s.duration("timeout", None)
    if timeout is None:
        # The first read (two lists, perhaps an exec plugin) must fit in one engine call.
        timeout = max(1.0, min(10.0, call_timeout * 0.8))
    verify = s.duration("verify_timeout", 60.0)
    assert verify is not None
    return ArgoSettings(rollout=rollout, namespace=namespace,
                        kubeconfig=Path(kubeconfig).expanduser() if kubeconfig else None,
                        context=context, timeout=timeout, verify_timeout=verify)


def build_traffic(settings: dict[str, Any], ctx: BuildContext) -> ArgoRolloutsTraffic:
    """Resolve the kubeconfig now (a bad one is a config error with its line); no request
    is sent before the first `read()`."""
    parsed = parse_settings(settings, call_timeout=ctx.plan.call_timeout)
    try:
        conn = connect(KubeSettings(kubeconfig=parsed.kubeconfig, context=parsed.context,
                                    namespace=parsed.namespace, timeout=parsed.timeout))
    except KubeError as err:
        raise _err(_words(err)) from None
    return ArgoRolloutsTraffic(parsed, conn, actor=ctx.actor)


# ------------------------------------------------------------------------------- helpers


def _words(err: KubeError) -> str:
    """kube.py's message without its own 'kubernetes: ' prefix (ours names the adapter)."""
    text = err.message
    return text[len("kubernetes: "):] if text.startswith("kubernetes: ") else text


def _utc(now: datetime) -> datetime:
    return now.astimezone(UTC)


def _rfc3339(now: datetime) -> str:
    return _utc(now).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rfc3339_micro(now: datetime) -> str:
    # metav1.MicroTime, as eventTime is serialised.
    return _utc(now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _split_actor(actor: str) -> tuple[str, str]:
    """'alice@bastion' -> ('alice', 'bastion'); 'alice@b (ssh from x)' keeps the ssh part
    with the host; anything else (the engine acting for someone) is named whole."""
    m = _ACTOR.match(actor.strip())
    if m:
        return m.group("user"), m.group("host") + m.group("rest")
    return actor.strip() or "unknown", ""


def _host_of(actor: str) -> str:
    m = re.search(r"@([^\s()]+)", actor)
    return m.group(1) if m else socket.gethostname()


@dataclass(frozen=True)
class _Action:
    """One relconsole verb and how it maps onto the plugin."""

    verb: str  # "advance", "promote", "abort", "pause", "resume" (the engine's words)
    plugin: actions.Action
    reason: str  # the Event reason

    @property
    def event_action(self) -> str:
        return self.verb.capitalize()


ADVANCE = _Action("advance", "promote", "RelconsoleAdvance")
PROMOTE = _Action("promote", "promote_full", "RelconsolePromote")
ABORT = _Action("abort", "abort", "RelconsoleAbort")
PAUSE = _Action("pause", "pause", "RelconsolePause")
RESUME = _Action("resume", "resume", "RelconsoleResume")


@dataclass
class _Own:
    """The last action this console made, kept for when its audit could not be written."""

    text: str
    at: str
    note: str = ""


@dataclass
class _Stream:
    """One watched collection: where it stands and what is wrong with it."""

    what: str  # "rollouts" / "replicasets", for messages
    qualified: str  # "rollouts.argoproj.io", for the 403 message
    rv: str = ""
    problem: str | None = None
    sticky: bool = False  # a watch refused while listing works: cleared by the watch only
    attempt: int = 0
    kick: asyncio.Event | None = None
    established_at: float | None = None


@dataclass
class _Runs:
    verdicts: dict[str, AnalysisVerdict] = field(default_factory=dict)
    fetched_for: tuple[tuple[str, str], ...] = ()
    fetched_at: float = 0.0


# ------------------------------------------------------------------------------- provider


class ArgoRolloutsTraffic:
    """`TrafficProvider` and `StepController` over one Argo Rollout."""

    name = NAME

    def __init__(self, settings: ArgoSettings, conn: KubeConnection, *, actor: str = "",
                 now: Callable[[], datetime] | None = None, watch_grace: float = 2.0,
                 analysis_refresh: float = 10.0) -> None:
        self.settings = settings
        self._conn = conn
        self.namespace: str = conn.namespace
        self.rollout: str = settings.rollout
        self._actor = actor
        self._now = now or (lambda: datetime.now(UTC))
        self._watch_grace = watch_grace
        self._analysis_refresh = analysis_refresh
        self._ro: dict[str, Any] | None = None
        self._uid: str | None = None
        self._rs: dict[str, dict[str, Any]] = {}
        self._runs = _Runs()
        self._fatal: str | None = None
        self._own: _Own | None = None
        self._rollouts = _Stream("rollouts", ROLLOUT.qualified)
        self._replica_sets = _Stream("replicasets", REPLICA_SET.qualified)
        self._tasks: list[asyncio.Task[None]] = []
        self._audits: set[asyncio.Task[None]] = set()  # audits outliving a cancelled action
        self._started = False
        self._start_lock: asyncio.Lock | None = None
        self._changed: asyncio.Event | None = None  # set, and replaced, on every change
        self._version = 0
        self._state_cache: tuple[int, TrafficState] | None = None

    # --- what the engine reads besides the protocol ---

    @property
    def resource(self) -> str:
        return f"rollout {self.namespace}/{self.rollout}"

    @property
    def action_timeout(self) -> float:
        """How long one promote/abort/pause/resume may take: the engine must allow this
        (not release.call_timeout) for StepController calls."""
        return self.settings.verify_timeout + 6 * self.settings.timeout

    @property
    def audit_problem(self) -> str:
        """Why the last action's Event or annotation could not be written ('' when written)."""
        return self._own.note if self._own is not None else ""

    @property
    def describe(self) -> str:
        return f"{self.resource} ({self._conn.describe})"

    # --- lifecycle ---

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: closing must never hang the console's exit.
            await asyncio.wait(tasks, timeout=2.0)
        if self._audits:
            # An interrupted action's Event and annotation get their chance to be written.
            await asyncio.wait(set(self._audits), timeout=2 * self.settings.timeout)
        self._started = False
        await self._conn.aclose()

    # --- the protocol ---

    async def set_weight(self, weight: int, *, reason: str) -> None:
        raise _err(f"{self.resource} owns its weights (spec.strategy.canary.steps); "
                   "relconsole moves it with promote, abort, pause and resume, never by "
                   "setting a weight")

    async def read(self) -> TrafficState:
        await self._ensure_started()
        if self._fatal is not None:
            raise _err(self._fatal)
        for stream in (self._rollouts, self._replica_sets):
            if stream.problem is not None:
                if stream.kick is not None:
                    stream.kick.set()
                raise _err(stream.problem)
        return self._state()

    async def plan_mirror_steps(self) -> list[int]:
        """Indices of the Rollout's steps that mirror traffic (`view.mirror_steps`), read
        from the cluster: a shadow release needs at least one; a canary release whose
        Rollout has them mirrors anyway, and should say so."""
        await self.read()
        assert self._ro is not None
        try:
            return mirror_steps(self._ro)
        except RolloutFormatError as err:
            raise _err(f"{self.resource} has a field relconsole cannot read: {err}") from None

    async def promote(self, *, full: bool, reason: str, actor: str) -> None:
        await self._act(PROMOTE if full else ADVANCE, reason, actor)

    async def abort(self, *, reason: str, actor: str) -> None:
        await self._act(ABORT, reason, actor)

    async def pause(self, *, reason: str, actor: str) -> None:
        await self._act(PAUSE, reason, actor)

    async def resume(self, *, reason: str, actor: str) -> None:
        await self._act(RESUME, reason, actor)

    async def analysis_template(self, name: str, *, cluster: bool = False) -> dict[str, Any]:
        """An AnalysisTemplate of the Rollout's namespace (or a ClusterAnalysisTemplate)."""
        kind = CLUSTER_ANALYSIS_TEMPLATE if cluster else ANALYSIS_TEMPLATE
        where = (f"ClusterAnalysisTemplate {name}" if cluster
                 else f"AnalysisTemplate {self.namespace}/{name}")
        try:
            return await self._conn.get(kind, name, namespace=None if cluster else
                                        self.namespace)
        except NotFound:
            raise _err(f"{where} does not exist (kubectl get {kind.qualified} {name}"
                       f"{'' if cluster else f' -n {self.namespace}'})") from None
        except KubeError as err:
            raise self._error(err, f"get {where}", ("get", kind.qualified)) from None

    # --- errors in words ---

    def _error(self, err: KubeError, what: str,
               needed: tuple[str, str] | None = None) -> ProviderError:
        """`needed` is (verb, resource) of the call, for a 403 whose text does not say
        (a refused watch: the stream's error body is not read)."""
        if isinstance(err, Forbidden):
            return _err(self._forbidden_words(err, needed))
        if isinstance(err, KubeAuthError) and err.code == 401:
            return _err(f"401 unauthorized: {_words(err)}")
        return _err(_words(err) if isinstance(err, KubeUnreachable | KubeAuthError)
                    else f"{what}: {_words(err)}")

    def _forbidden_words(self, err: KubeError, needed: tuple[str, str] | None = None) -> str:
        m = _FORBIDDEN_TEXT.search(err.message)
        if m is not None:
            verb, resource, group = m.group("verb"), m.group("res"), m.group("group")
            qualified = f"{resource.split('/')[0]}.{group}" if group else resource.split("/")[0]
            sub = f" ({resource})" if "/" in resource else ""
            said = _words(err)
            ns = m.group("ns") or self.namespace
        elif needed is not None:
            verb, qualified = needed
            sub = ""
            said = (f"the API server refused to let the console {verb} {qualified} in "
                    f"namespace {self.namespace} (HTTP 403)")
            ns = self.namespace
        else:
            return f"403 forbidden: {_words(err)}; the console needs {RBAC_NEEDS}"
        return (f"403 forbidden: {said} — grant the console's account '{verb}' on "
                f"{qualified}{sub} in namespace {ns}; it needs {RBAC_NEEDS}")

    # --- list and watch (the Rollout by name: a fieldSelector metadata.name) ---

    async def _list(self, kind: ResourceKind, *, fields: Mapping[str, str] | None = None,
                    labels: Mapping[str, str] | None = None) -> ListResult:
        return await self._conn.list(kind, namespace=self.namespace, labels=labels,
                                     fields=fields)

    async def _watch(self, kind: ResourceKind, rv: str, *,
                     fields: Mapping[str, str] | None = None,
                     labels: Mapping[str, str] | None = None,
                     ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        async for item in self._conn.watch(kind, resource_version=rv, namespace=self.namespace,
                                           labels=labels, fields=fields):
            yield item

    def _rollout_fields(self) -> dict[str, str]:
        return {"metadata.name": self.rollout}

    def _rs_labels(self) -> dict[str, str] | None:
        selector = _map(_map(_map(self._ro).get("spec")).get("selector"))
        labels = selector.get("matchLabels")
        if selector.get("matchExpressions") or not isinstance(labels, Mapping) or not labels:
            return None  # all ReplicaSets of the namespace; view() keeps the owned ones
        return {str(k): str(v) for k, v in labels.items()}

    # --- start: the first list, then the watches ---

    async def _ensure_started(self) -> None:
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
            self._changed = asyncio.Event()
        async with self._start_lock:
            if self._started:
                return
            ro = await self._list_rollout(first=True)
            self._set_rollout(ro)  # first: its selector chooses the ReplicaSets
            await self._list_replica_sets()
            await self._refresh_runs(force=True)
            self._rollouts.kick = asyncio.Event()
            self._replica_sets.kick = asyncio.Event()
            self._tasks = [
                asyncio.create_task(self._run_stream(self._rollouts, self._watch_rollouts),
                                    name=f"argo-watch-rollout-{self.rollout}"),
                asyncio.create_task(self._run_stream(self._replica_sets, self._watch_rs),
                                    name=f"argo-watch-rs-{self.rollout}"),
                asyncio.create_task(self._analysis_loop(),
                                    name=f"argo-analysis-{self.rollout}"),
            ]
            self._started = True

    async def _list_rollout(self, *, first: bool) -> dict[str, Any] | None:
        try:
            listed = await self._list(ROLLOUT, fields=self._rollout_fields())
        except KubeError as err:
            raise self._error(err, f"list {self.resource}", ("list", ROLLOUT.qualified)) \
                from None
        self._rollouts.rv = listed.resource_version
        found = listed.items[0] if listed.items else None
        if first and found is None:
            raise _err(f"{self.resource} does not exist (check `rollout:` and `namespace:`; "
                       f"kubectl get rollouts.argoproj.io -n {self.namespace} lists them; "
                       f"context {self._conn.context})")
        return found

    async def _list_replica_sets(self) -> None:
        try:
            listed = await self._conn.list(REPLICA_SET, namespace=self.namespace,
                                           labels=self._rs_labels())
        except KubeError as err:
            raise self._error(err, f"list the ReplicaSets of {self.resource}",
                              ("list", REPLICA_SET.qualified)) from None
        self._replica_sets.rv = listed.resource_version
        self._rs = {str(_map(o.get("metadata")).get("name", "")): o for o in listed.items}

    # --- applying what the API says ---

    def _set_rollout(self, ro: dict[str, Any] | None) -> None:
        """A Rollout as listed or watched (None: gone from the API)."""
        if ro is None:
            self._deleted()
            return
        uid = str(_map(ro.get("metadata")).get("uid", ""))
        if self._uid is None:
            self._uid = uid
        elif uid != self._uid:
            # Deleted and created again under the same name, perhaps by a pipeline: another
            # object, whose history is not this release's.
            self._fatal = (f"{self.resource} was replaced (deleted and created again: uid "
                           f"{self._uid} is now {uid}); relconsole never follows a different "
                           "object: restart the console to follow the new one")
            self._bump()
            return
        if self._fatal is None and (self._ro is None or self._newer(ro)):
            self._ro = ro
        self._bump()

    def _deleted(self) -> None:
        if self._fatal is None:
            self._fatal = (f"{self.resource} was deleted; relconsole stops following it "
                           "(restart the console once it exists again)")
        self._bump()

    def _bump(self) -> None:
        self._version += 1
        changed = self._changed
        if changed is not None:
            self._changed = asyncio.Event()
            changed.set()

    # --- the watch tasks ---

    async def _run_stream(self, stream: _Stream,
                          body: Callable[[_Stream], Any]) -> None:
        """Keep one watch open: re-list and re-watch after errors, with backoff."""
        relist = False
        while True:
            try:
                if relist:
                    await self._relist(stream)
                    relist = False
                    if not stream.sticky:
                        stream.problem = None
                    stream.attempt = 0
                stream.established_at = time.monotonic()
                await body(stream)
                # The generator ended (lightkube reopens clean ends itself): start over.
                relist = True
            except asyncio.CancelledError:
                raise
            except Gone:
                relist = True  # compacted: list again, then watch from the new version
            except ProviderError as err:  # from a re-list
                self._stream_problem(stream, str(err)[len(NAME) + 2:], sticky=False)
                relist = True
                await self._backoff(stream)
            except KubeError as err:
                relist = True
                watch_refused = isinstance(err, Forbidden | KubeAuthError) or (
                    err.code is not None and not isinstance(err, KubeUnreachable))
                if stream.attempt == 0 and not watch_refused:
                    # A dropped stream: re-list and re-watch at once, nothing to show yet.
                    stream.attempt = 1
                    continue
                text = str(self._error(err, f"watch {stream.what}",
                                       ("watch", stream.qualified)))[len(NAME) + 2:]
                self._stream_problem(stream, text, sticky=watch_refused)
                await self._backoff(stream)
            except Exception as err:  # a bug must not end the watch silently
                self._stream_problem(stream, f"watch {stream.what} failed: "
                                     f"{type(err).__name__}: {err}", sticky=False)
                relist = True
                await self._backoff(stream)

    def _stream_problem(self, stream: _Stream, text: str, *, sticky: bool) -> None:
        stream.problem = text
        stream.sticky = sticky
        stream.attempt += 1
        self._bump()

    async def _backoff(self, stream: _Stream) -> None:
        delay = _BACKOFF[min(stream.attempt, len(_BACKOFF)) - 1]
        kick = stream.kick
        if kick is None:
            await asyncio.sleep(delay)
            return
        kick.clear()
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
        # arrives as the kick is set, and close() would wait for this task forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await kick.wait()
        # A read() asks again at once, but never faster than the first backoff step.
        await asyncio.sleep(_BACKOFF[0] / 2)

    async def _relist(self, stream: _Stream) -> None:
        if stream is self._rollouts:
            ro = await self._list_rollout(first=False)
            self._set_rollout(ro)
            await self._refresh_runs()
        else:
            await self._list_replica_sets()
            self._bump()

    def _watch_ok(self, stream: _Stream) -> None:
        """An event arrived, so this watch is open: a refused watch's error clears."""
        if stream.problem is not None:
            stream.problem = None
            stream.sticky = False
            self._bump()
        stream.attempt = 0

    async def _grace(self, stream: _Stream, opened: float) -> None:
        # A refused watch answers at once; one still open after the grace period is up.
        await asyncio.sleep(self._watch_grace)
        if stream.sticky and stream.established_at == opened:
            self._watch_ok(stream)

    async def _watch_rollouts(self, stream: _Stream) -> None:
        opened = stream.established_at
        assert opened is not None
        grace = asyncio.create_task(self._grace(stream, opened))
        try:
            async for etype, obj in self._watch(ROLLOUT, stream.rv,
                                                fields=self._rollout_fields()):
                rv = str(_map(obj.get("metadata")).get("resourceVersion", ""))
                if rv:
                    stream.rv = rv
                self._watch_ok(stream)
                if _map(obj.get("metadata")).get("name") != self.rollout:
                    continue
                if etype == "DELETED":
                    self._deleted()
                    continue
                if etype in ("ADDED", "MODIFIED"):
                    self._set_rollout(obj)
                    await self._refresh_runs()
        finally:
            grace.cancel()

    async def _watch_rs(self, stream: _Stream) -> None:
        opened = stream.established_at
        assert opened is not None
        grace = asyncio.create_task(self._grace(stream, opened))
        try:
            async for etype, obj in self._watch(REPLICA_SET, stream.rv,
                                                labels=self._rs_labels()):
                meta = _map(obj.get("metadata"))
                if meta.get("resourceVersion"):
                    stream.rv = str(meta["resourceVersion"])
                self._watch_ok(stream)
                name = str(meta.get("name", ""))
                if etype == "DELETED":
                    self._rs.pop(name, None)
                elif etype in ("ADDED", "MODIFIED"):
                    self._rs[name] = obj
                else:
                    continue
                self._bump()
        finally:
            grace.cancel()

    # --- AnalysisRuns ---

    def _run_refs(self) -> tuple[tuple[str, str], ...]:
        """(name, the Rollout's summary of its phase) for each run the status names."""
        st = _map(_map(self._ro).get("status"))
        canary, blue = _map(st.get("canary")), _map(st.get("blueGreen"))
        refs = []
        for holder, key in ((canary, "currentStepAnalysisRunStatus"),
                            (canary, "currentBackgroundAnalysisRunStatus"),
                            (blue, "prePromotionAnalysisRunStatus"),
                            (blue, "postPromotionAnalysisRunStatus")):
            run = _map(holder.get(key))
            name = run.get("name")
            if isinstance(name, str) and name:
                refs.append((name, str(run.get("status") or "")))
        return tuple(refs)

    async def _refresh_runs(self, *, force: bool = False) -> None:
        refs = self._run_refs()
        if not force and refs == self._runs.fetched_for:
            return
        verdicts: dict[str, AnalysisVerdict] = {}
        for name, summary in refs:
            verdicts[name] = await self._fetch_run(name, summary)
        self._runs = _Runs(verdicts, refs, time.monotonic())
        self._bump()

    async def _fetch_run(self, name: str, summary: str) -> AnalysisVerdict:
        try:
            run = await self._conn.get(ANALYSIS_RUN, name, namespace=self.namespace)
        except KubeError as err:
            if isinstance(err, Forbidden):
                why = self._forbidden_words(err, ("get", ANALYSIS_RUN.qualified))
            elif isinstance(err, NotFound):
                why = f"AnalysisRun {self.namespace}/{name} does not exist"
            else:
                why = _words(err)
            said = f" (the Rollout says {summary})" if summary else ""
            return AnalysisVerdict(name, "Unknown", f"cannot read the AnalysisRun{said}: {why}")
        st = _map(run.get("status"))
        metrics = tuple(
            (str(_map(m).get("name", "?")), str(_map(m).get("phase") or "Pending"))
            for m in (st.get("metricResults") or []) if isinstance(m, Mapping))
        phase = str(st.get("phase") or summary or "Pending")
        return AnalysisVerdict(name, phase, str(st.get("message") or ""), metrics)

    async def _analysis_loop(self) -> None:
        """A run's measurements change without the Rollout changing: look again now and then
        while one is still running."""
        while True:
            await asyncio.sleep(self._analysis_refresh)
            running = any(v.phase not in _ANALYSIS_DONE for v in self._runs.verdicts.values())
            if running and self._fatal is None:
                with contextlib.suppress(Exception):
                    await self._refresh_runs(force=True)

    # --- the state the engine reads ---

    def _view(self) -> RolloutView:
        assert self._ro is not None
        try:
            return view(self._ro, list(self._rs.values()))
        except RolloutFormatError as err:
            raise _err(f"{self.resource} has a field relconsole cannot read: {err}") from None

    def _state(self) -> TrafficState:
        cached = self._state_cache
        if cached is not None and cached[0] == self._version:
            return cached[1]
        state = self._compute_state()
        self._state_cache = (self._version, state)
        return state

    def _compute_state(self) -> TrafficState:
        if self._ro is None:
            raise _err(f"{self.resource} is not known yet")
        v = self._view()
        if v.strategy is None:
            raise _err(f"{self.resource} has neither a canary nor a blueGreen strategy")
        servers = _servers(v)
        plan: tuple[ControllerStep, ...]
        if v.strategy == "BlueGreen":
            assert v.blue_green is not None
            bg = v.blue_green
            cut_over = bool(bg.active_selector) and bg.active_selector == v.current_hash
            weight = 100 if cut_over and not v.aborted else 0
            plan = (
                ControllerStep(bg.stages[0].text, 0,
                               pause=float(bg.auto_promotion_seconds)
                               if bg.auto_promotion_enabled and bg.auto_promotion_seconds
                               else None,
                               waits=not bg.auto_promotion_enabled),
                ControllerStep(bg.stages[1].text, 100),
            )
            waiting = "BlueGreenPause" in v.pause_reasons and not bg.auto_promotion_enabled
            step: int | None = bg.current_stage
            steps: int | None = 2
        else:
            max_weight = v.max_weight or 100
            actual = v.actual_weight if v.actual_weight is not None else 0
            weight = max(0, min(100, round(actual * 100 / max_weight)))
            plan = _canary_plan(v, max_weight)
            step, steps = v.current_step_index, v.step_count
            waiting = bool(_PAUSE_WAITS & set(v.pause_reasons)) or (
                "CanaryPauseStep" in v.pause_reasons and isinstance(v.current_step, PauseStep)
                and v.current_step.indefinite)
        controller = ControllerState(
            system=SYSTEM,
            resource=self.resource,
            phase=v.phase,
            message=v.message,
            step=step,
            steps=steps,
            set_weight=v.set_weight,
            actual_weight=v.actual_weight,
            plan=plan,
            strategy=v.strategy,
            waiting=waiting and not v.aborted,
            manually_paused=v.manually_paused,
            aborted=v.aborted,
            fully_promoted=v.fully_promoted and bool(v.stable_hash),
            analysis=tuple(self._runs.verdicts[name] for name, _ in self._run_refs()
                           if name in self._runs.verdicts),
            last_action=self._last_action(),
        )
        # Shadow traffic: the share the Rollout's setMirrorRoute steps have the router
        # mirror now (Argo writes no mirror in the status; view.py derives it).
        return TrafficState(canary_weight=weight, servers=servers, controller=controller,
                            route=Route(mirror=v.mirror))

    def _last_action(self) -> str:
        notes = _map(_map(_map(self._ro).get("metadata")).get("annotations"))
        recorded = _parse_last_action(notes.get(ANNOTATION))
        own = self._own
        if own is not None and own.note and (recorded is None or recorded[1] <= own.at):
            return f"{own.text} ({own.note})"
        return recorded[0] if recorded is not None else ""

    # --- actions ---

    async def _act(self, action: _Action, reason: str, actor: str) -> None:
        await self._ensure_started()
        if self._fatal is not None:
            raise _err(self._fatal)
        actor = actor or self._actor
        # The promote family builds its patches from a GET made just before (reads_first);
        # abort and pause send no GET in the plugin, so neither does relconsole: the watch
        # already knows the object (and would have said if it was replaced).
        reads_first = action.plugin in ("promote", "promote_full", "resume")
        before = await self._fresh_get(action) if reads_first else self._ro
        if before is None:
            raise _err(f"{action.verb} not sent: {self.resource} is not known yet")
        try:
            plan = actions.plan(action.plugin, before)
        except ValueError as err:
            raise _err(f"{action.verb}: {err}") from None
        progress = [0]
        try:
            await self._send(action, plan, progress)
        except ProviderError as err:
            if progress[0]:
                # Half sent (the status patch landed, the spec patch was refused): the
                # cluster changed, so it is recorded there too.
                half = actions.Verification(action.plugin, False, str(err)[len(NAME) + 2:])
                await self._audit(action, reason, actor, half, progress[0], "when sending")
            raise
        started = time.monotonic()
        try:
            check = await self._wait_verified(action, before, started)
        except asyncio.CancelledError:
            # The caller gave up waiting (its own timeout, Ctrl-C): what was sent is still
            # written on the cluster, by a task that outlives this call.
            waited = f"{time.monotonic() - started:.0f}s (interrupted)"
            cut = actions.Verification(action.plugin, False,
                                       "relconsole stopped waiting before Argo acted")
            task = asyncio.get_running_loop().create_task(
                self._audit(action, reason, actor, cut, progress[0], f"after {waited}"))
            self._audits.add(task)
            task.add_done_callback(self._audits.discard)
            raise
        await self._audit(action, reason, actor, check, progress[0],
                          f"after {self.settings.verify_timeout:g}s")
        if not check.verified:
            raise _err(f"{action.verb} sent, but after {self.settings.verify_timeout:g}s the "
                       f"controller still shows: {check.reason}")

    async def _fresh_get(self, action: _Action) -> dict[str, Any]:
        try:
            ro = await self._conn.get(ROLLOUT, self.rollout, namespace=self.namespace)
        except NotFound:
            self._deleted()
            raise _err(f"{action.verb} not sent: {self._fatal}") from None
        except KubeError as err:
            raise self._error(err, f"{action.verb}: get {self.resource}",
                              ("get", ROLLOUT.qualified)) from None
        uid = str(_map(ro.get("metadata")).get("uid", ""))
        if self._uid is not None and uid != self._uid:
            self._set_rollout(ro)
            raise _err(f"{action.verb} not sent: {self._fatal}")
        return ro

    async def _send(self, action: _Action, plan: actions.ActionPlan,
                    progress: list[int]) -> None:
        """The plan's requests in order; a 404 on the first /status patch switches to the
        plugin's fallback on the main resource. `progress[0]` counts those that landed."""
        sequence = plan.requests
        i = 0
        while i < len(sequence):
            req = sequence[i]
            status = req.subresource == "status"
            try:
                await self._patch(req)
                progress[0] += 1
            except NotFound:
                if i == 0 and status and plan.on_status_not_found and \
                        sequence is plan.requests:
                    sequence, i = plan.on_status_not_found, 0
                    continue
                raise _err(f"{action.verb} not applied: {self.resource} answered 404 to "
                           f"{req.method} {req.path}") from None
            except KubeError as err:
                raise self._error(err, f"{action.verb} ({req.method} {req.path})",
                                  ("patch", ROLLOUT.qualified)) from None
            i += 1

    async def _patch(self, req: actions.Request) -> None:
        if req.method != "PATCH" or not isinstance(req.body, dict):
            raise _err(f"unexpected request in the plan: {req.method} {req.path}")
        status = req.subresource == "status"
        if req.content_type == actions.MERGE_PATCH:
            obj = await self._conn.merge_patch(ROLLOUT, self.rollout, req.body, status=status,
                                               namespace=self.namespace)
        else:
            raise _err(f"unexpected content type {req.content_type} in the plan")
        # The answer is the object as written; the watch delivers it too, maybe later.
        if str(_map(obj.get("metadata")).get("uid", "")) == self._uid:
            self._set_rollout(obj)

    def _newer(self, obj: Mapping[str, Any]) -> bool:
        try:
            return int(_map(obj.get("metadata")).get("resourceVersion", 0)) >= int(
                _map(_map(self._ro).get("metadata")).get("resourceVersion", 0))
        except (TypeError, ValueError):
            return True

    def _verify_now(self, action: _Action, before: Mapping[str, Any]) -> actions.Verification:
        assert self._ro is not None
        actual: int | None = None
        with contextlib.suppress(ProviderError):
            actual = self._view().actual_weight
        return actions.verify(action.plugin, self._ro, before, actual_canary_weight=actual)

    async def _wait_verified(self, action: _Action, before: Mapping[str, Any],
                             started: float) -> actions.Verification:
        """Wait for the watch to show the controller acting, up to verify_timeout."""
        deadline = started + self.settings.verify_timeout
        while True:
            changed = self._changed
            assert changed is not None
            if self._fatal is not None:
                raise _err(f"{action.verb}: {self._fatal}")
            check = self._verify_now(action, before)
            if check.verified:
                return check
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await changed.wait()
        # A watch that broke meanwhile must not make a done action look undone: one GET.
        with contextlib.suppress(KubeError):
            ro = await self._conn.get(ROLLOUT, self.rollout, namespace=self.namespace)
            if str(_map(ro.get("metadata")).get("uid", "")) == self._uid:
                self._set_rollout(ro)
        return self._verify_now(action, before)

    # --- the audit on the cluster ---

    async def _audit(self, action: _Action, reason: str, actor: str,
                     check: actions.Verification, sent: int, when: str) -> None:
        now = self._now()
        at = _rfc3339(now)
        user, host = _split_actor(actor)
        host_only = _host_of(actor)
        who = f"{user} on {host}" if host else user
        message = f"{action.verb} by {who}: {reason}"
        if sent == 0:
            message += " (nothing to send: " + check.reason + ")"
        if not check.verified:
            message += f" — NOT VERIFIED {when}: {check.reason}"
        text = f"{action.verb} by {actor or who}: {reason}"
        if not check.verified:
            text += " (not verified)"
        notes: list[str] = []
        ro = self._ro or {}
        meta = _map(ro.get("metadata"))
        event = {
            "metadata": {"name": f"{self.rollout}.{time.time_ns():x}",
                         "namespace": self.namespace},
            "involvedObject": {
                "apiVersion": f"{ROLLOUT.group}/{ROLLOUT.version}", "kind": ROLLOUT.kind,
                "name": self.rollout, "namespace": self.namespace,
                "uid": str(meta.get("uid", self._uid or "")),
                "resourceVersion": str(meta.get("resourceVersion", "")),
            },
            "reason": action.reason,
            "message": _clip(message, 1024),
            "type": "Warning" if action is ABORT or not check.verified else "Normal",
            "source": {"component": EVENT_COMPONENT, "host": host_only},
            "firstTimestamp": at,
            "lastTimestamp": at,
            "eventTime": _rfc3339_micro(now),
            "count": 1,
            "action": action.event_action,
            "reportingComponent": EVENT_COMPONENT,
            "reportingInstance": _clip(host_only or EVENT_COMPONENT, 128),
        }
        try:
            await self._conn.create_event(event, namespace=self.namespace)
        except KubeError as err:
            notes.append(f"audit Event not written: {self._audit_words(err)}")
        record = {"action": action.verb, "actor": actor or who, "reason": reason, "at": at,
                  "verified": check.verified}
        patch = {"metadata": {"annotations": {ANNOTATION: json.dumps(record,
                                                                     separators=(",", ":"))}}}
        try:
            obj = await self._conn.merge_patch(ROLLOUT, self.rollout, patch,
                                               namespace=self.namespace)
            if str(_map(obj.get("metadata")).get("uid", "")) == self._uid:
                self._set_rollout(obj)
        except KubeError as err:
            notes.append(f"annotation {ANNOTATION} not written: {self._audit_words(err)}")
        self._own = _Own(text, at, "; ".join(notes))
        self._bump()

    def _audit_words(self, err: KubeError) -> str:
        if isinstance(err, Forbidden):
            m = _FORBIDDEN_TEXT.search(err.message)
            if m is not None:
                group = m.group("group")
                res = f"{m.group('res')}.{group}" if group else m.group("res")
                return f"403: cannot {m.group('verb')} {res} in namespace {self.namespace}"
            return f"403: {_words(err)}"
        return _words(err)


# ------------------------------------------------------------------------------- pure parts


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _side(counts: SideCounts | None, role: Role) -> tuple[ServerHealth, ...]:
    """One entry per pod, so the health line reads 'canary 2/3 up'."""
    if counts is None:
        return ()
    pods = max(counts.replicas, counts.ready)
    return tuple(
        ServerHealth(name=f"{counts.replica_set}#{i + 1}", role=role, up=i < counts.ready,
                     detail="ready" if i < counts.ready else "not ready")
        for i in range(pods))


def _servers(v: RolloutView) -> tuple[ServerHealth, ...]:
    return _side(v.canary, Role.CANARY) + _side(v.stable, Role.BASELINE)


def _canary_plan(v: RolloutView, max_weight: int) -> tuple[ControllerStep, ...]:
    out = []
    weight = 0
    for step in v.steps:
        if isinstance(step, SetWeightStep):
            weight = max(0, min(100, round(step.weight * 100 / max_weight)))
        pause: float | None = None
        waits = False
        if isinstance(step, PauseStep):
            if step.indefinite:
                waits = True
            elif step.seconds is not None and step.valid:
                pause = float(step.seconds)
        text = step.plan_text if isinstance(step, SetMirrorRouteStep) else step.text
        out.append(ControllerStep(text, weight, pause=pause, waits=waits))
    return tuple(out)


def _parse_last_action(raw: object) -> tuple[str, str] | None:
    """(text, at) from the annotation; None when absent or not ours."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    verb = str(record.get("action") or "?")
    actor = str(record.get("actor") or "?")
    reason = str(record.get("reason") or "")
    text = f"{verb} by {actor}: {reason}" if reason else f"{verb} by {actor}"
    if record.get("verified") is False:
        text += " (not verified)"
    return text, str(record.get("at") or "")


__all__ = ["ANNOTATION", "ArgoRolloutsTraffic", "ArgoSettings", "build_traffic",
           "parse_settings"]
