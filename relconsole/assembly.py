"""Wiring: from a loaded config (or the built-in demo) to a ready `ReleaseEngine`.

The CLI, the tests and the benchmarks build engines the same way through here, so the
watch-only decision (flag or lease held elsewhere) is made in exactly one place.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from relconsole.clock import Clock, clock_text
from relconsole.commands import run_argv
from relconsole.config import ConfigError, LoadedConfig, load_config
from relconsole.config.analysis_template import TemplateError
from relconsole.config.errors import ConfigProblems
from relconsole.config.gates_from import apply as apply_gates_from
from relconsole.config.load import rolling_steps
from relconsole.config.rules import PLAN_OWNERS
from relconsole.engine.journal import Journal, head_path, journal_path
from relconsole.engine.lease import Lease, LeaseInfo, any_driven, current_holder
from relconsole.engine.migrations import CommandOutcome, MigrationRunner
from relconsole.engine.paths import (
    STATE_DIR_ENV,
    current_actor,
    ensure_private_dir,
    private_state_dir,
    state_dir,
    state_warning,
)
from relconsole.engine.release import ReleaseEngine
from relconsole.model import Actor, Mode, ReleasePlan, Step, TrafficState
from relconsole.notify.bridge import NotifyBridge, open_bridge
from relconsole.providers import registry, strategies
from relconsole.providers.base import (
    BuildContext,
    FlagProvider,
    MetricsProvider,
    ProviderError,
    TrafficProvider,
    owns_steps,
    routes,
)
from relconsole.providers.sim import SCENARIOS
from relconsole.providers.strategies import STRATEGIES

if TYPE_CHECKING:
    from relconsole.providers.argo.lease import KubeLease, KubeLeases

P = TypeVar("P")

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")


@dataclass
class Providers:
    traffic: TrafficProvider
    metrics: MetricsProvider | None = None
    flags: FlagProvider | None = None
    shared: dict[str, Any] = field(default_factory=dict)


def _provider(
    cfg: LoadedConfig, kind: str, build: Callable[[dict[str, Any]], P]
) -> P | None:
    """One configured adapter (None when its block is absent); errors name its line."""
    settings = cfg.providers.get(kind)
    if settings is None:
        return None
    try:
        return build(settings)
    except ProviderError as exc:
        raise cfg.error(
            ("providers", kind), str(exc),
            "Fix this provider block; `relconsole check` tries every provider.",
        ) from None


def build_providers(
    cfg: LoadedConfig, clock: Clock, shared: dict[str, Any] | None = None,
    *, state: Path | None = None,
) -> Providers:
    """Build every configured adapter; a bad block becomes a ConfigError with its line."""
    shared = shared if shared is not None else {}
    shared.setdefault("state_dir", state_dir(state or cfg.state_dir))
    ctx = BuildContext(plan=cfg.plan, clock=clock, versions=dict(cfg.versions), shared=shared)
    # A fixed order: providers that share one world (the simulator) meet it alike each run.
    metrics = _provider(cfg, "metrics", lambda s: registry.build_metrics(s, ctx))
    traffic = _provider(cfg, "traffic", lambda s: registry.build_traffic(s, ctx))
    flags = _provider(cfg, "flags", lambda s: registry.build_flags(s, ctx))
    if traffic is None:
        raise cfg.error(("providers",), "no traffic provider is configured",
                        "Add providers.traffic (for example {type: sim}).")
    _check_plugin_strategy(cfg)
    # A controller that owns the plan (Argo's setMirrorRoute steps) routes by itself.
    if cfg.plan.routed and not routes(traffic) and not owns_steps(traffic):
        raise cfg.error(
            ("release", "strategy"),
            f"strategy {cfg.plan.strategy} routes by more than a weight, and traffic provider "
            f"{cfg.providers['traffic'].get('type')} cannot (it has no set_route)",
            "Traffic providers that can: "
            + (", ".join(strategies.providers_for(cfg.plan.strategy)) or "none built in"))
    if cfg.plan.strategy == "rolling":
        cfg.plan = _with_batches(cfg, traffic)
    return Providers(traffic=traffic, metrics=metrics, flags=flags, shared=ctx.shared)


def _check_plugin_strategy(cfg: LoadedConfig) -> None:
    """A plugin does the strategies its factory says (`strategies`), else canary only;
    the built-in providers are checked with the file (config/rules.check_strategy)."""
    kind = str(cfg.providers["traffic"].get("type"))
    if kind in STRATEGIES:
        return
    table = getattr(registry.factory("traffic", kind), "strategies", None)
    can = strategies.supported(kind, table if isinstance(table, dict) else None)
    if cfg.plan.strategy not in can:
        raise cfg.error(
            ("release", "strategy"),
            f"traffic provider {kind} cannot do strategy {cfg.plan.strategy} (it does "
            f"{', '.join(can)})",
            "Traffic providers that can: "
            + (", ".join(strategies.providers_for(cfg.plan.strategy)) or "none built in"))


def _with_batches(cfg: LoadedConfig, traffic: object) -> ReleasePlan:
    """Strategy rolling: one step per batch of the servers the provider updates."""
    groups = getattr(traffic, "groups", None)
    if not isinstance(groups, tuple) or not groups:
        raise cfg.error(("providers", "traffic"),
                        "strategy rolling: this traffic provider names no servers to update",
                        "List them: servers: [app1, app2, app3]")
    # The provider's own batches, so the steps are exactly the groups it updates.
    return dataclasses.replace(cfg.plan, steps=rolling_steps([len(g) for g in groups],
                                                             cfg.plan.batch_bake))


# How long the start-up read of a Rollout (its plan, its AnalysisTemplate) may take.
CLUSTER_READ_TIMEOUT = 30.0


def _read_cluster(
    cfg: LoadedConfig, clock: Clock
) -> tuple[TrafficState | None, dict[str, Any], list[int] | None]:
    """One read of the Rollout and (if asked for) its AnalysisTemplate, at start-up.

    A provider of its own, on an event loop of its own in a worker thread: this runs
    before (or, in tests, inside) the console's loop, and the console's provider must not
    be bound to a loop that ends here.
    """
    wanted = cfg.gates_from
    settings = cfg.providers["traffic"]

    async def go() -> tuple[TrafficState | None, dict[str, Any], list[int] | None]:
        ctx = BuildContext(plan=cfg.plan, clock=clock, versions=dict(cfg.versions))
        provider = registry.build_traffic(settings, ctx)
        try:
            template: dict[str, Any] = {}
            if wanted is not None:
                fetch = getattr(provider, "analysis_template", None)
                if fetch is None:
                    raise ProviderError(f"traffic provider {settings.get('type')!r} cannot "
                                        "read AnalysisTemplates")
                template = await asyncio.wait_for(
                    fetch(wanted.name, cluster=wanted.kind == "ClusterAnalysisTemplate"),
                    CLUSTER_READ_TIMEOUT)
            read = None
            if cfg.plan.steps or cfg.plan.strategy != "canary":
                read = await asyncio.wait_for(provider.read(), CLUSTER_READ_TIMEOUT)
            mirrors: list[int] | None = None
            if cfg.plan.strategy == "shadow":
                # Which of the Rollout's steps mirror: a shadow release needs one.
                fetch_mirrors = getattr(provider, "plan_mirror_steps", None)
                mirrors = (await asyncio.wait_for(fetch_mirrors(), CLUSTER_READ_TIMEOUT)
                           if fetch_mirrors is not None else [])
            return read, template, mirrors
        except TimeoutError:
            raise ProviderError(f"no answer within {CLUSTER_READ_TIMEOUT:g}s") from None
        finally:
            with contextlib.suppress(Exception):
                await provider.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def plan_disagreement(config_steps: tuple[Step, ...], read: TrafficState) -> str | None:
    """Why `release.steps` and the controller's own plan disagree; None when they agree
    (or the controller reports none). The controller's plan is what runs."""
    c = read.controller
    if c is None or not config_steps:
        return None
    theirs: list[int] = []
    for step in c.plan:
        if step.weight and (not theirs or step.weight != theirs[-1]):
            theirs.append(step.weight)
    if not theirs or theirs[-1] != 100:
        theirs.append(100)
    ours = [s.weight for s in config_steps]
    if ours == theirs:
        return None
    said = ", ".join(f"{w}%" for w in theirs)
    return (f"release.steps ({', '.join(f'{w}%' for w in ours)}) disagree with the plan of "
            f"{c.resource} ({said})")


def strategy_problem(cfg: LoadedConfig, read: TrafficState, mirrors: list[int] | None) -> None:
    """release.strategy must be what the Rollout does: its own strategy runs, whatever
    the file says, and an operator must not believe in a shield that is not there."""
    c = read.controller
    if c is None:
        return
    wanted = cfg.plan.strategy
    theirs = "blue-green" if c.strategy == "BlueGreen" else "canary"
    if (wanted == "blue-green") != (theirs == "blue-green"):
        raise cfg.error(("release", "strategy"),
                        f"release.strategy is {wanted}, but {c.resource} runs a "
                        f"{'blueGreen' if theirs == 'blue-green' else 'canary'} strategy",
                        f"Set release.strategy: {theirs} (the Rollout's own strategy is "
                        "what runs)")
    if wanted == "shadow" and not mirrors:
        raise cfg.error(("release", "strategy"),
                        f"strategy shadow, but {c.resource} has no setMirrorRoute step: it "
                        "would run as a plain canary, with users on the new version",
                        "Add setMirrorRoute steps (and trafficRouting.managedRoutes) to the "
                        "Rollout, or set release.strategy: canary")


def resolve_from_cluster(cfg: LoadedConfig, clock: Clock) -> LoadedConfig:
    """For a controller that owns the plan: import `gates_from`'s AnalysisTemplate from
    the cluster, and refuse `release.steps` that disagree with the Rollout's own steps.

    Errors are ConfigErrors naming the config line, as for any bad input: nothing has
    been changed on the cluster.
    """
    needs_plan = (bool(cfg.plan.steps) or cfg.plan.strategy != "canary") and cfg.providers.get(
        "traffic", {}).get("type") in PLAN_OWNERS
    if cfg.gates_from is None and not needs_plan:
        return cfg
    wanted = cfg.gates_from
    try:
        read, template, mirrors = _read_cluster(cfg, clock)
    except ProviderError as exc:
        if wanted is not None:
            key = "analysis_template" if wanted.kind == "AnalysisTemplate" else (
                "cluster_analysis_template")
            raise cfg.error(("gates_from", key), f"{wanted.reference} cannot be read: {exc}",
                            "Check its name and namespace, and that the console may get "
                            "analysistemplates (RBAC)") from None
        raise cfg.error(("providers", "traffic"), f"the Rollout cannot be read: {exc}",
                        "`relconsole check` tries every provider") from None
    if read is not None:
        problem = plan_disagreement(cfg.plan.steps, read)
        if problem is not None:
            raise cfg.error(("release", "steps"), problem,
                            "The Rollout owns its steps: remove release.steps (or make them "
                            "match spec.strategy.canary.steps)")
        strategy_problem(cfg, read, mirrors)
    if wanted is None:
        return cfg
    try:
        plan = apply_gates_from(cfg.plan, template, wanted)
    except TemplateError as exc:
        key = "analysis_template" if wanted.kind == "AnalysisTemplate" else (
            "cluster_analysis_template")
        raise ConfigProblems([cfg.error(("gates_from", key), problem,
                                        "relconsole imports an AnalysisTemplate's Prometheus "
                                        "metrics only; fix the template or leave that metric "
                                        "to Argo") for problem in exc.problems]) from None
    return dataclasses.replace(cfg, plan=plan, gates_from=None)


@dataclass
class Session:
    """An engine plus what must be released when the console exits."""

    engine: ReleaseEngine
    lease: Lease | KubeLease | None
    providers: Providers
    state_dir: Path
    watch_reason: str = ""  # why this console watches instead of driving
    holder: LeaseInfo | None = None  # who drives instead, when the lease was taken
    actor: Actor | None = None  # who takes the lease, if this watcher takes it (`take`)
    lease_ttl: float = 30.0
    # Said once at start when others on this host will not see this console's driver:
    # the lease and journal fell back to this user's private folder (engine/paths.py).
    state_warning: str = ""
    closed: bool = False
    notify: NotifyBridge | None = None  # sends the driver's events to notify: targets

    def take_over_hint(self) -> str:
        """What to tell an operator who could not drive, and how to take over."""
        now = time.time()  # lease times are wall-clock (see engine/lease.py)
        if self.holder is None and self.watch_reason.startswith("cannot ") \
                and "driver Lease" in self.watch_reason:
            # The Kubernetes Lease could not be read or written: nobody to take it from.
            return (f"{self.watch_reason}; nothing was changed (`relconsole check -c FILE` "
                    "tries the connection)")
        if self.holder is not None and self.holder.expired(now):
            return (
                f"{self.holder.describe(now)} holds the lease but has not renewed it "
                f"for {now - self.holder.expires:.0f}s (hung or stopped?); take it over "
                "with --take-over --take-over-reason TEXT"
            )
        return (f"{self.watch_reason}; --take-over --take-over-reason TEXT takes it "
                "(journalled)")

    async def take(self, reason: str) -> str | None:
        """Take the lease if nobody holds it, and drive from this console from now on.

        Returns why not (someone drives), or None once the engine drives. A live holder's
        lease is never taken here: that stays an explicit `--take-over`.
        """
        engine = self.engine
        if engine.mode is Mode.DRIVE:
            return "this console drives this release already"
        release_id = engine.plan.release_id
        actor = self.actor or current_actor()
        lease: Lease | KubeLease | None
        if "kube_lease" in self.providers.shared:  # open_session put its KubeLeases there
            from relconsole.providers.argo.lease import SHARED_KEY, KubeLeaseError

            kube = self.providers.shared[SHARED_KEY]
            try:
                # On the lease thread: the screen goes on while the API server answers.
                lease = await kube.acquire_async(actor, ttl=self.lease_ttl)
            except KubeLeaseError as exc:
                return str(exc)
            found = kube.cached_holder() if lease is None else None
            who = found.describe() if found else "another console"
        else:
            lease = Lease.acquire(self.state_dir, release_id, actor, ttl=self.lease_ttl)
            holder = current_holder(self.state_dir, release_id) if lease is None else None
            who = holder.describe() if holder else "another console"
        if lease is None:
            return (f"{who} drives this release — taking a live lease is a take-over: "
                    "relconsole run --take-over --take-over-reason TEXT")
        try:
            # A watcher that never saw a journal written has no folder for one yet.
            ensure_private_dir(engine.journal.path.parent)
            await engine.take_drive(
                _heartbeat(lease, self.state_dir, release_id, engine.journal)
                if isinstance(lease, Lease) else lease.beat,
                since=lease.info.since, reason=reason,
                holder={"driver": lease.info.holder, "pid": lease.info.pid},
            )
        except BaseException:
            lease.release()
            raise
        if self.lease is not None:
            self.lease.release()
        self.lease, self.holder, self.watch_reason = lease, None, ""
        return None

    async def close(self) -> None:
        """Close the providers and free the lease; a second call does nothing (a console
        that leaves for the fleet closes its session before the fleet opens)."""
        if self.closed:
            return
        self.closed = True
        if self.notify is not None:
            # A short bounded flush, off the loop; what is left is journalled as lost.
            await asyncio.to_thread(self.notify.close)
        await self.engine.close()
        if self.lease is not None:
            self.lease.release()


def open_session(
    cfg: LoadedConfig,
    *,
    clock: Clock,
    watch: bool = False,
    state: Path | None = None,
    actor: Actor | None = None,
    providers: Providers | None = None,
    lease_ttl: float | None = None,
    take_over: str | None = None,
) -> Session:
    """Build the engine for one release, taking the lease unless asked to watch.

    A console that cannot take the lease runs watch-only and names who drives
    (safety rule 4). With `take_over` (the operator's reason) a live lease is taken from
    its holder, and the journal says who took it from whom and why.
    """
    actor = actor or current_actor()
    if lease_ttl is None:
        # How long a hung driver keeps its claim before others may take over after a
        # confirmation; the driver renews on every poll.
        lease_ttl = float(os.environ.get("RELCONSOLE_LEASE_TTL", "30"))
    sdir = state_dir(state or cfg.state_dir)
    release_id = cfg.plan.release_id
    # With Argo Rollouts the lease is a Kubernetes Lease beside the Rollout, so consoles
    # on every bastion meet one driver (providers/argo/lease.py); else the file lease.
    kube: KubeLeases | None = None
    lease_errors: tuple[type[Exception], ...] = ()  # what taking the lease may fail with
    traffic_block = cfg.providers.get("traffic") or {}
    if traffic_block.get("type") == "argo-rollouts":
        # Imported here: lightkube is loaded only for releases on Kubernetes.
        from relconsole.providers.argo.lease import (
            SHARED_KEY,
            KubeLeaseConfigError,
            KubeLeaseError,
            KubeLeases,
        )

        lease_errors = (KubeLeaseError,)
        try:
            kube = KubeLeases.from_block(traffic_block, base=cfg.path.parent)
        except KubeLeaseConfigError as exc:
            raise cfg.error(("providers", "traffic", exc.key), str(exc),
                            "Name the Rollout this release follows.") from None

    def holder_now() -> LeaseInfo | None:
        if kube is None:
            return current_holder(sdir, release_id)
        found = kube.current_holder()
        return LeaseInfo.from_json(found.to_json()) if found else None

    lease: Lease | KubeLease | None = None
    mode = Mode.WATCH
    driver = "nobody"
    driver_since: float | None = None
    watch_reason = "--watch" if watch else ""
    taken_from: LeaseInfo | None = None
    holder_info: LeaseInfo | None = None
    # The lease keeps to the wall clock whatever `clock` is (a demo's runs --speed times
    # faster): its times are compared with other processes' (see engine/lease.py).
    if not watch:
        try:
            if kube is None:
                lease = Lease.acquire(sdir, release_id, actor, ttl=lease_ttl)
            else:
                lease = kube.acquire(actor, ttl=lease_ttl)
            if lease is None and take_over:
                taken_from = holder_now()
                if kube is None:
                    lease = Lease.take_over(sdir, release_id, actor, ttl=lease_ttl,
                                            reason=take_over)
                else:
                    lease = kube.take_over(actor, ttl=lease_ttl, reason=take_over)
            if lease is not None:
                mode = Mode.DRIVE
                driver, driver_since = "you", lease.info.since
            else:
                holder = holder_now()
                holder_info = holder
                watch_reason = (
                    f"{holder.describe()} drives this release" if holder
                    else "another console holds the lease"
                )
        except lease_errors as exc:
            # No Lease, no driving; the console still shows the release (safety rule 4).
            lease, watch_reason = None, str(exc)
    if mode is Mode.WATCH:
        with contextlib.suppress(*lease_errors):
            holder = holder_now()
            if holder is not None:
                driver, driver_since = holder.holder, holder.since

    def probe() -> tuple[str, float | None]:
        if kube is not None:
            found = kube.cached_holder()  # never waits: this runs on the event loop
            return (found.holder, found.since) if found else ("nobody", None)
        info = current_holder(sdir, release_id)
        return (info.holder, info.since) if info else ("nobody", None)

    built = providers or build_providers(cfg, clock, {"state_dir": sdir})
    if kube is not None:
        built.shared[SHARED_KEY] = kube  # for `Session.take` and `take_over_hint`
    journal = Journal(journal_path(sdir, release_id), clock, actor, release=release_id,
                      read_only=mode is Mode.WATCH)
    engine = ReleaseEngine(
        cfg.plan,
        metrics=built.metrics,
        traffic=built.traffic,
        flags=built.flags,
        clock=clock,
        journal=journal,
        actor=actor,
        mode=mode,
        driver=driver,
        driver_since=driver_since,
        driver_probe=probe,
        heartbeat=(None if lease is None
                   else _heartbeat(lease, sdir, release_id, journal) if isinstance(lease, Lease)
                   else lease.beat),
        migrations=migration_runner(cfg.path.parent) if cfg.plan.migrations else None,
    )
    if lease is not None and take_over:
        previous = taken_from.holder if taken_from else "nobody"
        journal.append(
            "lease.take_over", reason=take_over,
            before={"driver": previous, "pid": taken_from.pid if taken_from else None},
            # Where the release stands, as the journal left it: recovery reads the last
            # record's phase, and a paused release must stay paused under its new driver.
            after={**_release_view(journal), "driver": lease.info.holder,
                   "pid": lease.info.pid},
            outcome="verified",
        )
    # The Kubernetes Lease is seen by every console of the cluster; a file lease only by
    # those that share its folder.
    warning = (state_warning(state or cfg.state_dir) or "") if kube is None else ""
    bridge = open_bridge(engine, cfg.notify)
    if bridge is not None:
        notify = bridge

        def told(name: str, phase: str, outcome: str, command: Any, who: str) -> None:
            notify.migration(name, phase, outcome, command=command, who=who)

        engine.on_migration = told
    return Session(engine, lease, built, sdir, watch_reason, holder_info, actor, lease_ttl,
                   warning, notify=bridge)


def migration_runner(folder: Path) -> MigrationRunner:
    """How the engine runs a migration's commands: argv lists, no shell, in the config's
    folder (so `up: [./migrate.sh]` means the script beside the config), in a process
    group of their own that a timeout kills whole (`relconsole.commands`)."""

    async def run(argv: tuple[str, ...], timeout: float,
                  extra: Mapping[str, str]) -> CommandOutcome:
        env = {**os.environ, **extra}
        try:
            done = await run_argv(argv, timeout=timeout, cwd=str(folder), env=env)
        except OSError as exc:
            return CommandOutcome(None, error=f"cannot run {argv[0]}: {exc.strerror or exc}")
        return CommandOutcome(done.exit_code, done.stdout, done.stderr, done.duration,
                              done.timed_out)

    return run


def _release_view(journal: Journal) -> dict[str, Any]:
    for record in reversed(journal.records()):
        after = record.get("after")
        if isinstance(after, dict) and "phase" in after:
            return {k: after[k] for k in ("phase", "step", "weight", "pause_reason")
                    if k in after}
    return {}


def _heartbeat(
    lease: Lease, sdir: Path, release_id: str, journal: Journal
) -> Callable[[], str | None]:
    # Only a take-over written after this console took the lease can be the one that
    # took it away.
    since = len(journal.records())

    def beat() -> str | None:
        if lease.held:
            # Called every LEASE_CHECK_INTERVAL: the check is two stats; the info file
            # is rewritten only once a third of its ttl is used up.
            if lease.info.expires - time.time() < lease.ttl * 2 / 3:
                lease.renew()
            return None
        return _lost_lease(sdir, release_id, journal, since)

    return beat


def _lost_lease(sdir: Path, release_id: str, journal: Journal, since: int) -> str:
    """Who took the lease, when and why — from the journal, since a one-shot command
    that took it may already have finished and released it again."""
    took = next(
        (r for r in reversed(journal.records()[since:])
         if r.get("intent") == "lease.take_over" and isinstance(r.get("ts"), int | float)),
        None,
    )
    holder = current_holder(sdir, release_id)
    for _ in range(10):
        # Noticed between the taker's lock and its info write: the info file still
        # names this console. The taker writes it next, within milliseconds.
        if holder is None or holder.pid != os.getpid():
            break
        time.sleep(0.02)
        holder = current_holder(sdir, release_id)
    now = f"{holder.describe()} drives now" if holder else "nobody drives now"
    if took is None:
        if holder is None:
            return "lease released — nobody drives"
        why = f": {holder.taken_over}" if holder.taken_over else ""
        return f"{holder.describe()} took over{why}"
    actor = took.get("actor") or {}
    who = f"{actor.get('user', '?')}@{actor.get('host', '?')}"
    pid = (took.get("after") or {}).get("pid")
    return (f"{who}{f' (pid {pid})' if pid else ''} took over at {clock_text(took['ts'])}: "
            f"{took.get('reason') or 'no reason given'}; {now}")


def demo_config(
    scenario: str = "bad-canary", seed: int = 7, *, auto_advance: bool = True
) -> LoadedConfig:
    """The built-in demo release on the simulator."""
    cfg = load_config(DEMO_CONFIG, resolve_secrets=False)
    metrics = dict(cfg.providers["metrics"], scenario=scenario, seed=seed)
    plan = dataclasses.replace(cfg.plan, auto_advance=auto_advance)
    if scenario == "argo":
        # The simulated Rollout owns its plan, as a real one does: no release.steps.
        plan = dataclasses.replace(plan, steps=())
    if scenario not in SCENARIOS:
        raise ConfigError(
            path=DEMO_CONFIG, line=None, key="--scenario",
            problem=f"unknown scenario {scenario!r}",
            hint=f"Choose one of: {', '.join(SCENARIOS)}.",
        )
    return dataclasses.replace(cfg, plan=plan, providers={**cfg.providers, "metrics": metrics})


EARLIER = "earlier"  # under the demo's journal folder: journals of earlier demo runs


@dataclass(frozen=True)
class DemoState:
    """The state folder of a demo run, and the earlier demos' journals it set aside."""

    dir: Path
    kept: tuple[Path, ...] = ()


def demo_state(base: Path | None = None) -> DemoState:
    """A state folder for a demo run: the simulated world restarts every time, but no
    journal is ever deleted — an earlier demo's is moved to `journal/earlier/`, named
    with the time it was last written. `--state-dir` may be a folder that holds real
    releases: only the demo's own world file is removed, nothing else is touched.

    A demo that still drives there is left alone entirely: wiping its folder deleted
    its lease's lock file, so a second demo took a fresh lock and drove too; left
    alone, the second one watches the first.
    """
    # A demo's world is the user's own, even on a host with a shared state folder: two
    # people trying the demo on one bastion must not drive each other's simulation.
    chosen = base if base is not None or os.environ.get(STATE_DIR_ENV) else private_state_dir()
    root = state_dir(chosen) / "demo"
    if any_driven(root):
        return DemoState(state_dir(root))
    sdir = state_dir(root)
    kept = _set_aside_journals(sdir)
    for world in sdir.glob("sim-*.json"):  # the simulator's saved world (sim.py)
        with contextlib.suppress(FileNotFoundError):
            world.unlink()
    return DemoState(sdir, kept)


def demo_state_dir(base: Path | None = None) -> Path:
    return demo_state(base).dir


def _set_aside_journals(sdir: Path) -> tuple[Path, ...]:
    """Move each journal (and its head file) to `journal/earlier/<name>.<time>.jsonl`."""
    folder = sdir / "journal"
    kept: list[Path] = []
    for path in sorted(folder.glob("*.jsonl")):
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(path.stat().st_mtime))
        earlier = folder / EARLIER
        earlier.mkdir(mode=0o700, exist_ok=True)
        target = earlier / f"{path.stem}.{stamp}.jsonl"
        counter = 1
        while target.exists():  # two demos in one second: never overwrite either
            counter += 1
            target = earlier / f"{path.stem}.{stamp}-{counter}.jsonl"
        head = head_path(path)
        path.rename(target)
        if head.exists():
            head.rename(head_path(target))
        kept.append(target)
    return tuple(kept)


def config_for_rollout(
    *, rollout: str, namespace: str, context: str | None, kubeconfig: str | None,
    state: Path | None = None,
) -> LoadedConfig:
    """A release for one Argo Rollout picked in the fleet view, with no config file.

    Its steps and weights are the Rollout's own and it has no metrics or gates of its
    own: the console shows the Rollout, its AnalysisRuns and who did what. The config is
    written as a file (under the state folder's `fleet/`) and loaded like any other, so
    it is checked the same way and `relconsole run -c` can open it again.
    """
    traffic: dict[str, Any] = {"type": "argo-rollouts", "rollout": rollout,
                               "namespace": namespace}
    if context:
        traffic["context"] = context
    if kubeconfig:
        traffic["kubeconfig"] = str(Path(kubeconfig).expanduser().resolve())
    doc = {
        "release": {
            "service": rollout,
            "version": "current",
            "environment": f"{context or 'current-context'}/{namespace}",
            "strategy": "canary",
        },
        "providers": {"traffic": traffic},
    }
    folder = ensure_private_dir(state_dir(state) / "fleet")
    safe = "".join(c if c.isalnum() or c in "-_." else "_"
                   for c in f"{context or 'current'}-{namespace}-{rollout}")
    path = folder / f"{safe}.yaml"
    # JSON is YAML: no YAML writer is needed, and the file reads back exactly.
    path.write_text("# Written by relconsole fleet for one Argo Rollout.\n"
                    + json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return load_config(path, resolve_secrets=False)
