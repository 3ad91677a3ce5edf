"""One driver per Rollout, cluster-wide: a coordination.k8s.io/v1 Lease (safety rule 4).

With the argo-rollouts traffic provider, two engineers on two bastions must meet one
driver, so the lease is a Kubernetes Lease in the Rollout's namespace, named
`relconsole-<rollout>` (`lease_name`), instead of a lock file on one host. It offers the
session what the file lease offers (`acquire`, `take_over`, `current_holder`; a held
lease's `held`, `info`, `renew`, `release`), with the same take-over rules: a live holder
is taken only by an explicit take-over with a reason; a Lease nobody renewed in time
(renewTime + leaseDurationSeconds in the past, by this host's clock) may be acquired, since
on a cluster there is no kernel to drop a dead holder's claim.

The wire protocol is client-go's leader election (research notes section 8): GET the
Lease; on 404 POST it (a 409 AlreadyExists means someone else created it first: they
won); otherwise PUT it back with the metadata.resourceVersion that was read. The PUT is
the mutual exclusion: when anyone wrote in between, the server answers 409 Conflict and
this console has lost. A 409 is never retried blindly — not on acquire, not on take-over
(the operator decides again on what is there now), and on renewal it means the Lease is
gone to someone else. spec: holderIdentity (`alice@bastion-1/4242-1f2e3d4c`: the actor,
the pid, and a random part, since pids repeat across hosts and containers and one process
may open two sessions), leaseDurationSeconds (the ttl), acquireTime and renewTime
(MicroTime, RFC 3339 with microseconds), leaseTransitions (+1 on every new holder). Who
that is, for people, is in the annotation `relconsole.dev/driver` (user, host, pid, SSH
origin, the take-over's reason).

Off the event loop. The engine checks its lease every 0.5 s with a synchronous call
(`Drive.renew`, `_heartbeat` in assembly.py), on the Textual loop; a request there would
freeze the screen for as long as the API server takes to answer. So every request runs
on one background thread with its own asyncio loop and its own `KubeConnection` (the
async client of kube.py, unchanged: the exec credential plugin, the redaction and the
error texts are all reused, and a token the plugin gave is cached as long as the thread
lives). The thread renews the Lease on its own, every ttl/3, and between renewals GETs it
every `check_interval` (2 s, client-go's RetryPeriod) to notice a take-over; `held` and
the heartbeat only read what it found. A thread rather than a task on the caller's loop,
because the lease is taken before any loop runs (`open_session` is synchronous) and must
outlive the loops `asyncio.run` makes and closes. The thread stops once idle.

Losing it. A 409 on renewal, a holderIdentity that is no longer this console's, or a
deleted Lease: `held` turns False at once and `lost_reason` says who took it and why (the
heartbeat then demotes the engine within half a second). The API server unreachable (or
5xx, or 401): the console keeps driving only while its claim is certainly still good. A
Lease renewed by a request sent at time T is valid for others until T + ttl by their
clocks, so this console stops acting at T + 2/3 ttl (client-go's RenewDeadline ratio,
10 s of 15 s), leaving a third of the ttl for clock skew and its own last action to end;
until then it retries on every check. A safe tool must not keep acting once its lease
may have expired: another console may have taken the Rollout by then.

Release on exit: the Lease is PUT back (with the resourceVersion last seen) with an empty
holderIdentity, leaseDurationSeconds 1 and renewTime now, as client-go's ReleaseOnCancel
does, rather than deleted: the least RBAC (get/create/update leases) has no delete verb,
a conditional PUT cannot free a Lease someone else took meanwhile (409, and it is left
alone), and leaseTransitions keeps counting across holders. Release waits a moment at
most; if the server cannot be reached then, the Lease simply expires after its ttl.

RBAC: get, create and update on leases.coordination.k8s.io in the Rollout's namespace.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from relconsole.model import Actor
from relconsole.providers.argo.kube import (
    Conflict,
    KubeConnection,
    KubeError,
    KubeSettings,
    NotFound,
    connect,
)

T = TypeVar("T")
Obj = dict[str, Any]

LEASE_PREFIX = "relconsole-"
DRIVER_ANNOTATION = "relconsole.dev/driver"
CHECK_INTERVAL = 2.0  # seconds between GETs that notice a take-over (client-go RetryPeriod)
RENEW_DEADLINE = 2 / 3  # of the ttl: stop driving when not renewed for this long
RELEASE_WAIT = 3.0  # seconds release() waits for its PUT on exit
IDLE_STOP = 5.0  # seconds the background thread lingers once it has nothing to do
SHARED_KEY = "kube_lease"  # where assembly keeps the KubeLeases of a session (Providers.shared)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MAX_NAME = 253


class KubeLeaseError(Exception):
    """The Lease could not be read or written (not "someone else drives"); one line."""


class KubeLeaseConfigError(ValueError):
    """The traffic block cannot name a Lease (`key` is the setting at fault)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# --- names, times, holders --------------------------------------------------------------


def lease_name(rollout: str) -> str:
    """`relconsole-<rollout>`: a Lease name (a DNS subdomain, at most 253 characters).

    A name too long for the prefix is cut and given a hash of the whole, so two long
    Rollout names that share a beginning still get two Leases.
    """
    if not rollout or len(rollout) > _MAX_NAME or not _DNS_SUBDOMAIN.match(rollout):
        raise KubeLeaseConfigError(
            "rollout", f"argo-rollouts: rollout {rollout!r} is not a Kubernetes object name "
            "(lower-case letters, digits, '-' and '.')")
    name = LEASE_PREFIX + rollout
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(rollout.encode()).hexdigest()[:10]
    head = name[: _MAX_NAME - len(digest) - 1].rstrip("-.")
    return f"{head}-{digest}"


def micro_time(ts: float) -> str:
    """metav1.MicroTime: RFC 3339 in UTC with six fractional digits."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class KubeHolder:
    """Who holds the Lease, in the shape of the file lease's LeaseInfo (plus identity)."""

    holder: str  # "alice@bastion-1"
    pid: int
    host: str
    since: float  # acquireTime, wall-clock seconds
    expires: float  # renewTime + leaseDurationSeconds
    ssh_client: str | None = None
    taken_over: str = ""
    identity: str = ""  # holderIdentity as written on the Lease

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) > self.expires

    def describe(self, now: float | None = None) -> str:
        """'alice@bastion-1 (pid 4242) since 13:02:11', as the file lease says it."""
        now = time.time() if now is None else now
        start = datetime.fromtimestamp(self.since).astimezone()
        today = datetime.fromtimestamp(now).astimezone().date()
        when = f"{start:%H:%M:%S}" if start.date() == today else f"{start:%Y-%m-%d %H:%M:%S}"
        who = f"pid {self.pid}" if self.pid else "no pid"
        if self.ssh_client:
            who += f", ssh from {self.ssh_client}"
        text = f"{self.holder} ({who}) since {when}"
        if now > self.expires:
            text += f", not renewed for {now - self.expires:.0f}s past expiry"
        return text

    def to_json(self) -> dict[str, Any]:
        """The file lease's LeaseInfo fields (`LeaseInfo.from_json` reads them)."""
        out = dataclasses.asdict(self)
        out.pop("identity")
        return out


def holder_of(obj: Mapping[str, Any], *, default_ttl: float = 30.0,
              now: float | None = None) -> KubeHolder | None:
    """The holder a Lease object names; None when nobody holds it (empty holderIdentity)."""
    spec = _dict(obj.get("spec"))
    identity = spec.get("holderIdentity")
    if not isinstance(identity, str) or not identity:
        return None
    now = time.time() if now is None else now
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    since = parse_time(spec.get("acquireTime")) or renewed or now
    duration = spec.get("leaseDurationSeconds")
    ttl = float(duration) if isinstance(duration, int | float) and duration > 0 else default_ttl
    # A holder with no times at all (written by something else) is taken for live: only
    # an explicit take-over may replace it.
    expires = (renewed + ttl) if renewed is not None else now + ttl
    notes = _dict(_dict(obj.get("metadata")).get("annotations"))
    about: dict[str, Any] = {}
    with contextlib.suppress(TypeError, ValueError):
        raw = json.loads(notes.get(DRIVER_ANNOTATION) or "{}")
        about = raw if isinstance(raw, dict) and raw.get("identity") == identity else {}
    pid = about.get("pid")
    ssh = about.get("ssh_client")
    return KubeHolder(
        holder=str(about.get("holder") or identity),
        pid=pid if isinstance(pid, int) else 0,
        host=str(about.get("host") or ""),
        since=since,
        expires=expires,
        ssh_client=ssh if isinstance(ssh, str) and ssh else None,
        taken_over=str(about.get("taken_over") or ""),
        identity=identity,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _identity(actor: Actor) -> str:
    return f"{actor.user}@{actor.host}/{os.getpid()}-{secrets.token_hex(4)}"


def _rv(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("resourceVersion") or "") if isinstance(meta, dict) else ""


# --- the background thread ---------------------------------------------------------------


@dataclass
class _LoopState:
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread | None = None
    conn: KubeConnection | None = None
    last_done: float = 0.0


class _Worker:
    """One thread with its own event loop and one KubeConnection, started on first use
    and stopped when it has had nothing to do for `idle` seconds."""

    def __init__(self, connector: Callable[[], KubeConnection], idle: float) -> None:
        self._connector = connector
        self._idle = idle
        self._lock = threading.Lock()
        self._state: _LoopState | None = None
        self._busy = 0

    def submit(self, job: Callable[[KubeConnection], Coroutine[Any, Any, T]],
               ) -> concurrent.futures.Future[T]:
        with self._lock:
            state = self._state
            if state is None:
                state = self._state = _LoopState(asyncio.new_event_loop())
                state.thread = threading.Thread(target=self._main, args=(state,),
                                                name="relconsole-kube-lease", daemon=True)
                state.thread.start()
            self._busy += 1
            return asyncio.run_coroutine_threadsafe(self._run(state, job), state.loop)

    def call(self, job: Callable[[KubeConnection], Coroutine[Any, Any, T]],
             timeout: float) -> T:
        future = self.submit(job)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise KubeLeaseError(f"cannot reach the driver Lease: no answer within "
                                 f"{timeout:g}s") from None

    async def _run(self, state: _LoopState,
                   job: Callable[[KubeConnection], Coroutine[Any, Any, T]]) -> T:
        try:
            if state.conn is None:
                state.conn = self._connector()
            return await job(state.conn)
        finally:
            with self._lock:
                self._busy -= 1
                state.last_done = time.monotonic()
                if self._busy == 0:
                    state.loop.call_later(self._idle, self._maybe_stop, state)

    def _maybe_stop(self, state: _LoopState) -> None:
        with self._lock:
            if self._state is not state or self._busy:
                return
            left = state.last_done + self._idle - time.monotonic()
            if left > 0.01:
                state.loop.call_later(left, self._maybe_stop, state)
                return
            self._state = None
        state.loop.stop()

    def _main(self, state: _LoopState) -> None:
        loop = state.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                if state.conn is not None:
                    loop.run_until_complete(state.conn.aclose())
            loop.close()

    def close(self) -> None:
        """Stop the thread now (whatever it was doing is cancelled)."""
        with self._lock:
            state, self._state = self._state, None
            self._busy = 0
        if state is None:
            return
        with contextlib.suppress(RuntimeError):  # already closed
            state.loop.call_soon_threadsafe(state.loop.stop)
        if state.thread is not None and state.thread is not threading.current_thread():
            state.thread.join(timeout=5)


# --- where the Lease lives -------------------------------------------------------------------


class KubeLeases:
    """The driver Lease of one Rollout: take it, take it over, or see who holds it.

    Calls without `_async` block the caller (for `open_session`, before any screen is up)
    for at most the connection's timeout, twice; never call them on a running loop — the
    `_async` ones are for that, and `cached_holder` never waits at all.
    """

    def __init__(self, settings: KubeSettings, rollout: str, *,
                 connector: Callable[[], KubeConnection] | None = None,
                 check_interval: float | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.name = lease_name(rollout)
        self.rollout = rollout
        self.check_interval = CHECK_INTERVAL if check_interval is None else check_interval
        self._wall = wall
        self._connector = connector or (lambda: connect(settings))
        self._worker = _Worker(self._connect, IDLE_STOP)
        self._namespace = settings.namespace
        self._cached: tuple[float, KubeHolder | None] | None = None
        self._refreshing = False
        self._cache_lock = threading.Lock()

    @classmethod
    def from_block(cls, block: Mapping[str, Any], *, base: Path | None = None,
                   **kwargs: Any) -> KubeLeases:
        """From the `providers.traffic` block of an argo-rollouts release.

        `kubeconfig:` relative to `base` (the config file's folder), like other paths.
        """
        def text(key: str) -> str | None:
            value = block.get(key)
            if value is None:
                return None
            if not isinstance(value, str) or not value.strip():
                raise KubeLeaseConfigError(key, f"argo-rollouts: '{key}' must be text")
            return value.strip()

        rollout = text("rollout")
        if rollout is None:
            raise KubeLeaseConfigError("rollout", "argo-rollouts: 'rollout' is required")
        kubeconfig = text("kubeconfig")
        path: Path | None = None
        if kubeconfig is not None:
            path = Path(kubeconfig).expanduser()
            if not path.is_absolute() and base is not None:
                path = base / path
        settings = KubeSettings(kubeconfig=path, context=text("context"),
                                namespace=text("namespace"))
        return cls(settings, rollout, **kwargs)

    def _connect(self) -> KubeConnection:
        try:
            return self._connector()
        except KubeError as err:  # the kubeconfig: one line, as every Lease error
            raise KubeLeaseError(f"cannot reach the driver {self.where}: {err}") from None

    @property
    def namespace(self) -> str:
        """The Rollout's namespace (the context's own when the block names none)."""
        return self._namespace or "default"

    @property
    def where(self) -> str:
        return f"Lease {self._namespace}/{self.name}" if self._namespace else f"Lease {self.name}"

    def _ns(self, conn: KubeConnection) -> str:
        if self._namespace is None:
            self._namespace = conn.namespace
        return self._namespace

    def _sync(self, job: Callable[[KubeConnection], Coroutine[Any, Any, T]]) -> T:
        return self._worker.call(job, self.settings.timeout * 2 + 1)

    # --- taking it ---

    def acquire(self, actor: Actor, *, ttl: float = 30.0) -> KubeLease | None:
        """Take the Lease when nobody holds it or its holder let it expire; None when a
        live holder has it, or someone else won the race to it. KubeLeaseError when the
        API server cannot be asked."""
        return self._sync(lambda conn: self._take(conn, actor, ttl, None))

    def take_over(self, actor: Actor, *, ttl: float = 30.0, reason: str = "") -> KubeLease:
        """Take the Lease from a live holder (the operator's explicit decision).

        KubeLeaseError when someone else changed the Lease while it was taken (the 409 is
        not retried: the operator decides again on what is there now)."""
        lease = self._sync(lambda conn: self._take(conn, actor, ttl, reason or "taken over"))
        if lease is None:
            raise KubeLeaseError(f"cannot take over the driver {self.where}: it changed while "
                                 "it was being taken over; look at who holds it now and try "
                                 "again")
        return lease

    async def acquire_async(self, actor: Actor, *, ttl: float = 30.0) -> KubeLease | None:
        """`acquire` for code on an event loop: the loop goes on while the thread asks."""
        future = self._worker.submit(lambda conn: self._take(conn, actor, ttl, None))
        return await asyncio.wrap_future(future)

    async def _take(self, conn: KubeConnection, actor: Actor, ttl: float,
                    reason: str | None) -> KubeLease | None:
        namespace = self._ns(conn)
        duration = max(1, math.ceil(ttl))
        identity = _identity(actor)
        now = self._wall()
        sent = time.monotonic()
        about = {"identity": identity, "holder": f"{actor.user}@{actor.host}",
                 "pid": os.getpid(), "host": actor.host, "ssh_client": actor.ssh_client,
                 "taken_over": reason or ""}
        spec = {"holderIdentity": identity, "leaseDurationSeconds": duration,
                "acquireTime": micro_time(now), "renewTime": micro_time(now)}
        try:
            try:
                current = await conn.get_lease(self.name, namespace=namespace)
            except NotFound:
                fresh: Obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": self.name, "namespace": namespace,
                                      "labels": {"app.kubernetes.io/managed-by": "relconsole"},
                                      "annotations": {DRIVER_ANNOTATION: json.dumps(about)}},
                         "spec": {**spec, "leaseTransitions": 0}}
                try:
                    made = await conn.create_lease(fresh, namespace=namespace)
                except Conflict:
                    return None  # AlreadyExists: another console created it first
                return self._held(made, identity, ttl, sent)
            holder = holder_of(current, default_ttl=ttl, now=now)
            if holder is not None and not holder.expired(now) and reason is None:
                self._remember(holder)
                return None
            body: Obj = copy.deepcopy(current)
            meta = body["metadata"] = _dict(body.get("metadata"))
            notes = meta["annotations"] = _dict(meta.get("annotations"))
            notes[DRIVER_ANNOTATION] = json.dumps(about)
            old = _dict(body.get("spec"))
            transitions = old.get("leaseTransitions")
            count = transitions if isinstance(transitions, int) else 0
            # A new holder, as client-go counts it: released or expired, it is a transition.
            body["spec"] = {**old, **spec, "leaseTransitions": count + 1}
            try:
                written = await conn.update_lease(body, namespace=namespace)
            except Conflict:
                return None  # someone wrote it since our GET: they won
            except NotFound:
                return None  # deleted since our GET: let the operator look again
            return self._held(written, identity, ttl, sent)
        except KubeError as err:
            raise KubeLeaseError(f"cannot take the driver {self.where}: {err}") from None

    def _held(self, obj: Obj, identity: str, ttl: float, sent: float) -> KubeLease:
        holder = holder_of(obj, default_ttl=ttl, now=self._wall())
        if holder is None or holder.identity != identity:
            raise KubeLeaseError(f"cannot take the driver {self.where}: it was written but "
                                 f"names {holder.holder if holder else 'nobody'}")
        lease = KubeLease(self, obj, holder, ttl, sent)
        self._remember(holder)
        lease.start()
        return lease

    # --- who holds it ---

    def current_holder(self) -> KubeHolder | None:
        """Who holds the Lease now (one GET; None when nobody does or it does not exist)."""
        holder = self._sync(self._get_holder)
        self._remember(holder)
        return holder

    async def _get_holder(self, conn: KubeConnection) -> KubeHolder | None:
        try:
            obj = await conn.get_lease(self.name, namespace=self._ns(conn))
        except NotFound:
            return None
        except KubeError as err:
            raise KubeLeaseError(f"cannot read the driver {self.where}: {err}") from None
        return holder_of(obj, now=self._wall())

    def cached_holder(self) -> KubeHolder | None:
        """Who held the Lease when last asked, without waiting; when that is older than
        `check_interval`, the thread asks again for next time (a watcher's probe)."""
        with self._cache_lock:
            cached = self._cached
            stale = cached is None or time.monotonic() - cached[0] >= self.check_interval
            if stale and not self._refreshing:
                self._refreshing = True
                future = self._worker.submit(self._get_holder)
                future.add_done_callback(self._refreshed)
        return cached[1] if cached is not None else None

    def _refreshed(self, future: concurrent.futures.Future[KubeHolder | None]) -> None:
        with self._cache_lock:
            self._refreshing = False
        if not future.cancelled() and future.exception() is None:
            self._remember(future.result())

    def _remember(self, holder: KubeHolder | None) -> None:
        with self._cache_lock:
            self._cached = (time.monotonic(), holder)

    def close(self) -> None:
        """Stop the background thread (a held lease is not released: `release` it)."""
        self._worker.close()


# --- a held Lease ------------------------------------------------------------------------------


class KubeLease:
    """The Lease this console holds; its thread renews it. Keep it while driving."""

    def __init__(self, leases: KubeLeases, obj: Obj, info: KubeHolder, ttl: float,
                 sent: float) -> None:
        self._leases = leases
        self._obj = obj
        self.info = info
        self.ttl = ttl
        self.identity = info.identity
        self.renew_error: str | None = None  # the last failure to renew, while it lasts
        self._lock = threading.Lock()
        self._renewed_at = sent  # monotonic: when the last successful write was sent
        self._deadline = sent + ttl * RENEW_DEADLINE
        self._failing_since: float | None = None  # wall clock of the first failed renewal
        self._lost: str | None = None
        self._lost_to_other = False  # someone else wrote the Lease: never write it again
        self._released = False
        self._stop = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: concurrent.futures.Future[None] | None = None

    # --- what the session reads (no I/O) ---

    @property
    def held(self) -> bool:
        with self._lock:
            if self._released or self._lost is not None:
                return False
            if time.monotonic() >= self._deadline:
                self._lost = self._expiry_reason()
                return False
            return True

    @property
    def lost_reason(self) -> str | None:
        """Why this console no longer holds the Lease (None while it does)."""
        if self.held:
            return None
        with self._lock:
            return self._lost or "lease released — nobody drives"

    def beat(self) -> str | None:
        """The engine's heartbeat: None while held, else why it was lost (cached state)."""
        return None if self.held else self.lost_reason

    def _expiry_reason(self) -> str:
        since = self._failing_since
        when = datetime.fromtimestamp(since).astimezone().strftime("%H:%M:%S") if since \
            else "the start"
        why = f" ({self.renew_error})" if self.renew_error else ""
        return (f"the {self._leases.where} could not be renewed since {when}{why}; this "
                "console stopped driving before the Lease could expire, since another "
                "console may take it then")

    # --- the renewal loop (on the lease thread) ---

    def start(self) -> None:
        self._task = self._leases._worker.submit(self._keep)

    def renew(self) -> None:
        """Ask the thread to renew now (it renews on its own every ttl/3 anyway)."""
        wake, loop, task = self._wake, self._loop, self._task
        if wake is not None and loop is not None and task is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                loop.call_soon_threadsafe(wake.set)

    async def _keep(self, conn: KubeConnection) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        leases = self._leases
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), leases.check_interval)
            self._wake.clear()
            if self._stop.is_set() or not self.held:
                return
            due = time.monotonic() - self._renewed_at >= self.ttl / 3
            try:
                if due:
                    await self._renew(conn)
                else:
                    await self._check(conn)
            except Conflict:
                await self._taken(conn)
            except NotFound:
                self._lose(f"the {leases.where} was deleted — nobody drives", other=True)
            except Exception as err:  # unreachable, 5xx, 401, a bug: retried to the deadline
                with self._lock:
                    self.renew_error = str(err) if isinstance(err, KubeError) \
                        else f"{type(err).__name__}: {err}"
                    if self._failing_since is None:
                        self._failing_since = leases._wall()

    async def _renew(self, conn: KubeConnection) -> None:
        sent = time.monotonic()
        with self._lock:
            body = copy.deepcopy(self._obj)
        spec = body.setdefault("spec", {})
        spec["renewTime"] = micro_time(self._leases._wall())
        spec["leaseDurationSeconds"] = max(1, math.ceil(self.ttl))
        written = await conn.update_lease(body, namespace=self._leases._ns(conn))
        self._accept(written, sent)

    async def _check(self, conn: KubeConnection) -> None:
        seen = await conn.get_lease(self._leases.name, namespace=self._leases._ns(conn))
        with self._lock:
            mine = _rv(seen) == _rv(self._obj)
        if not mine:
            holder = holder_of(seen, now=self._leases._wall())
            if holder is None or holder.identity != self.identity:
                self._lose(self._who_took(holder), other=True)
                return
            with self._lock:
                self._obj = seen  # still ours (someone edited labels, say): keep its RV

    def _accept(self, written: Obj, sent: float) -> None:
        holder = holder_of(written, default_ttl=self.ttl, now=self._leases._wall())
        if holder is None or holder.identity != self.identity:
            self._lose(self._who_took(holder), other=True)
            return
        with self._lock:
            self._obj = written
            self.info = dataclasses.replace(self.info, expires=holder.expires)
            self._renewed_at = sent
            self._deadline = sent + self.ttl * RENEW_DEADLINE
            self.renew_error = None
            self._failing_since = None

    async def _taken(self, conn: KubeConnection) -> None:
        """A 409: someone wrote the Lease since we last did. Never retried: find out who."""
        try:
            seen = await conn.get_lease(self._leases.name, namespace=self._leases._ns(conn))
            holder = holder_of(seen, now=self._leases._wall())
        except KubeError:
            self._lose(f"the {self._leases.where} was changed by someone else (409 "
                       "Conflict)", other=True)
            return
        if holder is not None and holder.identity == self.identity:
            # Still ours (an edit to its labels, say): carry on from what is there now.
            with self._lock:
                self._obj = seen
            return
        self._lose(self._who_took(holder), other=True)

    def _who_took(self, holder: KubeHolder | None) -> str:
        if holder is None:
            return f"the {self._leases.where} was released by someone else — nobody drives"
        self._leases._remember(holder)
        if holder.taken_over:
            return f"{holder.describe()} took over: {holder.taken_over}"
        return f"{holder.describe()} holds the {self._leases.where} now"

    def _lose(self, why: str, *, other: bool) -> None:
        with self._lock:
            if self._lost is None and not self._released:
                self._lost = why
            self._lost_to_other = self._lost_to_other or other

    # --- giving it up ---

    def release(self) -> None:
        """Give up the Lease (empty holderIdentity, see the module docstring); safe to
        call more than once; waits RELEASE_WAIT seconds at most."""
        with self._lock:
            if self._released:
                return
            self._released = True
            taken = self._lost_to_other
            body = copy.deepcopy(self._obj)
        self._stop.set()
        self.renew()  # wake the loop so it ends now
        if taken:
            return  # someone else's now: writing would be a blind overwrite
        spec = body.setdefault("spec", {})
        now = micro_time(self._leases._wall())
        spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=now,
                    acquireTime=now)
        notes = body.setdefault("metadata", {}).get("annotations")
        if isinstance(notes, dict):
            notes.pop(DRIVER_ANNOTATION, None)

        async def clear(conn: KubeConnection) -> None:
            with contextlib.suppress(KubeError):  # 409: someone took it; gone: fine
                await conn.update_lease(body, namespace=self._leases._ns(conn))

        future = self._leases._worker.submit(clear)
        with contextlib.suppress(concurrent.futures.TimeoutError,
                                 concurrent.futures.CancelledError):
            future.result(RELEASE_WAIT)
        self._leases._remember(None)

    def __enter__(self) -> KubeLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = [
    "CHECK_INTERVAL", "DRIVER_ANNOTATION", "LEASE_PREFIX", "SHARED_KEY", "KubeHolder",
    "KubeLease", "KubeLeaseConfigError", "KubeLeaseError", "KubeLeases", "holder_of",
    "lease_name", "micro_time", "parse_time",
]
