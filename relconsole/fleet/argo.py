"""Every Argo Rollout of one or several kubeconfig contexts, live, for the fleet table.

Per context and namespace scope: list, then watch from the list's resourceVersion; a 410
Gone lists again (and drops the rows the new list no longer has); a stream that breaks is
reopened from the last resourceVersion seen, at once the first time and then with a
growing pause, while the context's status line says what is wrong. Without
`--namespace` the list is cluster-wide; a 403 there falls back to the context's own
namespace, and the status line says so. One context failing never stops the others:
each runs in its own task and reports into its own status line.

Rows are read with `providers.argo.view`, exactly as the plugin computes phase, step and
weights. ReplicaSets are not watched (200 Rollouts would mean thousands of them), so a
canary without a traffic router shows its set weight and an unknown actual weight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from relconsole.fleet.rows import (
    LAST_ACTION_ANNOTATION,
    FleetFeed,
    FleetRow,
    RolloutTarget,
    parse_last_action,
    parse_time,
)
from relconsole.providers.argo import kube
from relconsole.providers.argo.view import RolloutFormatError, view

FIRST_RETRY = 1.0  # seconds before the second attempt; the first retry is immediate
MAX_RETRY = 30.0

Connect = Callable[[kube.KubeSettings], kube.KubeConnection]


def rollout_row(obj: Mapping[str, Any], *, context: str, target_context: str | None,
                kubeconfig: str | None) -> FleetRow:
    """One Rollout as a fleet row; a Rollout the plugin could not read says why."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = str(meta.get("name") or "?")
    namespace = str(meta.get("namespace") or "")
    notes = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    assert isinstance(notes, Mapping)
    common: dict[str, Any] = {
        "key": f"{context}/{namespace}/{name}",
        "name": name,
        "context": context,
        "namespace": namespace,
        "target": RolloutTarget(name, namespace, target_context, kubeconfig),
        "created": parse_time(meta.get("creationTimestamp")),
        "last": parse_last_action(notes.get(LAST_ACTION_ANNOTATION)),
    }
    try:
        seen = view(obj)
    except (RolloutFormatError, ValueError, TypeError) as exc:
        return FleetRow(phase="unreadable", message=f"cannot read this Rollout: {exc}",
                        **common)
    index, count = seen.current_step_index, seen.step_count
    return FleetRow(
        phase=seen.phase,
        message=seen.message,
        step=seen.step_text or "",
        progress=index / count if index is not None and count else None,
        set_weight=seen.set_weight,
        actual_weight=seen.actual_weight,
        **common,
    )


class ArgoFleet:
    """The Rollouts of `contexts` (None: the current context) in `namespaces` (empty:
    every namespace the kubeconfig allows)."""

    kind = "argo"

    def __init__(self, contexts: Sequence[str | None] = (None,),
                 namespaces: Sequence[str] = (), *, kubeconfig: Path | None = None,
                 timeout: float = 10.0, first_retry: float = FIRST_RETRY,
                 max_retry: float = MAX_RETRY, connect: Connect = kube.connect,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.contexts = tuple(dict.fromkeys(contexts)) or (None,)
        self.namespaces = tuple(dict.fromkeys(namespaces))
        self.kubeconfig = kubeconfig
        self.timeout = timeout
        self.first_retry = first_retry
        self.max_retry = max_retry
        self._connect = connect
        self._sleep = sleep

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's columns: the context only when there is more than one."""
        many = len(self.contexts) > 1
        return (*(("context",) if many else ()), "namespace", "name", "phase", "step",
                "weight", "age", "last")

    @property
    def title(self) -> str:
        where = ", ".join(self.namespaces) if self.namespaces else "all namespaces"
        if len(self.contexts) == 1:
            return f"Argo Rollouts · {self.contexts[0] or 'current context'} · {where}"
        return f"Argo Rollouts · {len(self.contexts)} contexts · {where}"

    async def run(self, feed: FleetFeed) -> None:
        """Follow every context until cancelled."""
        async with asyncio.TaskGroup() as group:
            for context in self.contexts:
                group.create_task(self._context(context, feed))

    async def _context(self, context: str | None, feed: FleetFeed) -> None:
        label = context or "current context"
        settings = kube.KubeSettings(kubeconfig=self.kubeconfig, context=context,
                                     timeout=self.timeout)
        try:
            conn = self._connect(settings)
        except kube.KubeError as exc:
            # The kubeconfig itself is wrong: nothing to retry until someone fixes it.
            feed.status(label, str(exc), problem=True)
            return
        except Exception as exc:  # a broken kubeconfig must not end the other contexts
            feed.status(label, f"kubernetes: {type(exc).__name__}: {exc}", problem=True)
            return
        label = context or conn.context
        try:
            scopes = self.namespaces or (kube.ALL_NAMESPACES,)
            async with asyncio.TaskGroup() as group:
                for scope in scopes:
                    key = f"{label}/{scope}" if len(self.namespaces) > 1 else label
                    group.create_task(self._follow(conn, label, context, scope, key, feed))
        finally:
            await conn.aclose()

    async def _follow(self, conn: kube.KubeConnection, label: str, context: str | None,
                      scope: str, status_key: str, feed: FleetFeed) -> None:
        kubeconfig = str(self.kubeconfig) if self.kubeconfig is not None else None

        def row(obj: Mapping[str, Any]) -> FleetRow:
            return rollout_row(obj, context=label, target_context=context,
                               kubeconfig=kubeconfig)

        keys: set[str] = set()  # the rows this scope has put into the feed
        version = ""  # "" lists (again) before watching
        note = ""  # a standing remark for the status line (the namespace fallback)
        failures = 0
        while True:
            verb = "list"
            try:
                if not version:
                    listed = await conn.list(kube.ROLLOUT, namespace=scope)
                    rows = {r.key: r for r in map(row, listed.items)}
                    feed.drop(keys - rows.keys())  # gone while we were not watching
                    feed.put(rows.values())
                    keys = set(rows)
                    version = listed.resource_version
                feed.status(status_key, note)
                verb = "watch"
                async for etype, obj in conn.watch(kube.ROLLOUT, resource_version=version,
                                                   namespace=scope):
                    failures = 0
                    meta = obj.get("metadata") or {}
                    version = str(meta.get("resourceVersion") or version)
                    if etype == "BOOKMARK" or not meta.get("name"):
                        continue
                    new = row(obj)
                    if etype == "DELETED":
                        keys.discard(new.key)
                        feed.drop([new.key])
                    else:
                        keys.add(new.key)
                        feed.put([new])
                continue  # ended cleanly: watch again from where it ended
            except kube.Gone:
                version = ""  # the history is compacted: list again
                continue
            except kube.Forbidden as exc:
                if scope == kube.ALL_NAMESPACES:
                    scope = conn.namespace
                    note = (f"cannot list Rollouts cluster-wide ({_short(exc)}); showing "
                            f"namespace {scope} only")
                    version = ""
                    continue
                problem = _forbidden(exc, verb, scope)
            except kube.KubeError as exc:
                problem = str(exc)
            failures += 1
            if failures == 1:
                # A dropped stream (a proxy's idle timeout) is common: reopen at once,
                # silently; only a second failure in a row is worth a status line.
                continue
            delay = min(self.first_retry * 2 ** (failures - 2), self.max_retry)
            feed.status(status_key, f"{problem} — retrying in {delay:g}s", problem=True)
            await self._sleep(delay)


def _forbidden(exc: kube.Forbidden, verb: str, scope: str) -> str:
    """The server's 403 names the verb and resource; where the client lost that text
    (a refused watch stream), say which request it was."""
    text = str(exc)
    if "cannot" in text:
        return text
    where = "cluster-wide" if scope == kube.ALL_NAMESPACES else f"in namespace {scope}"
    return f"{text}: may not {verb} rollouts.argoproj.io {where}"


def _short(exc: kube.KubeError) -> str:
    return f"HTTP {exc.code}" if exc.code else str(exc)
